//! The workers: each takes the next delivery off the queue, attempts it (signed, with the
//! timeout), and then lets its endpoint's next delivery in, schedules a retry, or buries the
//! message in the dead letters.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::{Request, StatusCode};
use rand::Rng;
use tokio::sync::mpsc;

use super::{Dead, Inner, Job, Subscription, Waiting};
use crate::api::DeadLetter;
use crate::clock;
use crate::event::Event;

/// What the raw sender sends in place of a signature: `v1,` and 44 characters, as long as
/// one signature by one key, so that its requests are the dispatcher's size.
const RAW_SIGNATURE: &str = "v1,unsigned+stand-in+of+a+signatures+length+AA=";

/// What one attempt came to.
enum Attempt {
    Delivered,
    /// Failed; the receiver may have said when to try again (`Retry-After` on 429/503).
    Failed(String, Option<Duration>),
    Gone,
}

impl Inner {
    /// Queues a delivery for the workers, or in its endpoint's lane when the endpoint has its
    /// share in the queue or under way already.
    pub(super) fn enqueue(&self, job: Job) {
        self.stats.webhook.queued.fetch_add(1, Relaxed);
        let mut lane = job.sub.lane.lock().expect("lane lock");
        if lane.admitted < self.endpoint_cap {
            lane.admitted += 1;
            drop(lane);
            self.send(job);
        } else {
            lane.waiting.push_back(Waiting {
                event: job.event,
                attempts: job.attempts,
            });
        }
    }

    pub(super) fn send(&self, job: Job) {
        if self.queue.send(job).is_err() {
            self.stats.webhook.queued.fetch_sub(1, Relaxed);
        }
    }

    /// One of `sub`'s deliveries is done with (sent, scheduled for a retry, or buried): the
    /// oldest waiting in its lane takes its place.
    fn release(&self, sub: &Arc<Subscription>) {
        let mut lane = sub.lane.lock().expect("lane lock");
        match lane.waiting.pop_front() {
            Some(w) => {
                drop(lane);
                self.send(Job {
                    sub: sub.clone(),
                    event: w.event,
                    attempts: w.attempts,
                });
            }
            None => lane.admitted -= 1,
        }
    }

    /// Gives a message up into the dead letters.
    fn bury(&self, job: Job, error: String) {
        self.stats.webhook.dead_letters.fetch_add(1, Relaxed);
        self.dead.lock().expect("dead letters lock").push(Dead {
            letter: DeadLetter {
                subscription: job.sub.id.clone(),
                message_id: job.event.message_id(),
                topic: job.event.topic,
                seq: job.event.seq,
                attempts: job.attempts,
                last_error: error,
            },
            sub: job.sub,
            event: job.event,
        });
    }

    /// Disables an endpoint (counted once).
    fn disable(&self, sub: &Subscription) {
        if !sub.disabled.swap(true, Relaxed) {
            self.stats.webhook.disabled_endpoints.fetch_add(1, Relaxed);
        }
    }

    /// After a success: the endpoint is healthy again.
    fn after_success(&self, sub: &Subscription) {
        sub.failing_since_ns.store(0, Relaxed);
    }

    /// After a failed attempt: disables an endpoint that has failed for too long, then
    /// schedules the next attempt, or gives up into the dead letters.
    fn after_failure(self: &Arc<Self>, job: Job, error: String, asked_delay: Option<Duration>) {
        let now = self.epoch.elapsed().as_nanos() as u64 + 1;
        let since = match job
            .sub
            .failing_since_ns
            .compare_exchange(0, now, Relaxed, Relaxed)
        {
            Ok(_) => now,
            Err(since) => since,
        };
        if Duration::from_nanos(now.saturating_sub(since)) >= self.params.disable_after() {
            self.disable(&job.sub);
        }
        let next_delay = self.delays.get(job.attempts as usize - 1).copied();
        let Some(delay) = next_delay.filter(|_| !job.sub.disabled.load(Relaxed)) else {
            let error = if job.sub.disabled.load(Relaxed) && next_delay.is_some() {
                format!("{error}; endpoint disabled")
            } else {
                error
            };
            self.bury(job, error);
            return;
        };
        let mut jittered = delay.mul_f64(rand::thread_rng().gen_range(0.8..=1.2));
        if let Some(asked) = asked_delay.filter(|a| *a > jittered) {
            self.stats.webhook.retry_after_obeyed.fetch_add(1, Relaxed);
            jittered = asked;
        }
        self.stats.webhook.waiting.fetch_add(1, Relaxed);
        self.retries.push(tokio::time::Instant::now() + jittered, job);
    }
}

/// Takes jobs off the queue one at a time until the run is cancelled.
pub(super) async fn worker(inner: Arc<Inner>, jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let next = async { jobs.lock().await.recv().await };
        let mut job = tokio::select! {
            job = next => match job { Some(job) => job, None => return },
            _ = inner.cancel.cancelled() => return,
        };
        inner.stats.webhook.queued.fetch_sub(1, Relaxed);
        if inner.raw {
            let outcome = tokio::select! {
                outcome = attempt(&inner, &job.sub, &job.event, false) => outcome,
                _ = inner.cancel.cancelled() => return,
            };
            job.attempts += 1;
            match outcome {
                Attempt::Delivered => {}
                Attempt::Gone => inner.bury(job, "answered 410 Gone (the raw sender does not retry)".into()),
                Attempt::Failed(error, _) => {
                    inner.bury(job, format!("{error} (the raw sender does not retry)"))
                }
            }
            continue;
        }
        let sub = job.sub.clone();
        if sub.disabled.load(Relaxed) {
            inner.bury(job, "endpoint disabled: not sent".into());
            inner.release(&sub);
            continue;
        }
        let outcome = tokio::select! {
            outcome = attempt(&inner, &job.sub, &job.event, job.attempts > 0) => outcome,
            _ = inner.cancel.cancelled() => return,
        };
        job.attempts += 1;
        match outcome {
            Attempt::Delivered => inner.after_success(&job.sub),
            Attempt::Gone => {
                inner.disable(&job.sub);
                inner.after_failure(job, "answered 410 Gone".to_string(), None);
            }
            Attempt::Failed(error, asked) => inner.after_failure(job, error, asked),
        }
        inner.release(&sub);
    }
}

async fn attempt(inner: &Inner, sub: &Subscription, event: &Arc<Event>, retry: bool) -> Attempt {
    let id = event.message_id_on_stack();
    let message_id = id.as_str();
    let w = &inner.stats.webhook;
    w.attempts.fetch_add(1, Relaxed);
    if retry {
        w.retries.fetch_add(1, Relaxed);
    }
    w.in_flight.fetch_add(1, Relaxed);
    let timestamp = clock::unix_seconds();
    let mut req = Request::post(sub.uri.clone())
        .header(hyper::header::HOST, sub.host.clone())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", message_id)
        .header("webhook-timestamp", timestamp);
    if inner.raw {
        req = req.header("webhook-signature", RAW_SIGNATURE);
    } else if let Some(signature) = sub.sign(message_id, timestamp, &event.json) {
        req = req.header("webhook-signature", signature);
    }
    let req = req.body(Full::new(event.json_bytes())).expect("valid request");
    let result = tokio::time::timeout(inner.params.timeout, inner.transport.send(req)).await;
    w.in_flight.fetch_sub(1, Relaxed);
    let outcome = match result {
        Ok(Ok((status, _))) if status.is_success() => Attempt::Delivered,
        Ok(Ok((StatusCode::GONE, _))) => Attempt::Gone,
        Ok(Ok((status, asked))) => Attempt::Failed(format!("answered {status}"), asked),
        Ok(Err(e)) => Attempt::Failed(format!("request failed: {e}"), None),
        Err(_) => {
            w.timeouts.fetch_add(1, Relaxed);
            Attempt::Failed(format!("no answer within {:?}", inner.params.timeout), None)
        }
    };
    match outcome {
        Attempt::Delivered => {
            if event.measured {
                sub.delivered.fetch_add(1, Relaxed);
            }
            w.successes.fetch_add(1, Relaxed)
        }
        _ => w.failures.fetch_add(1, Relaxed),
    };
    outcome
}
