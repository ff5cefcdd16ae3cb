//! The webhook dispatcher: POSTs each event to each subscribed URL, signed, with a timeout,
//! retries on the scenario's schedule with ±20% jitter, and a dead-letter list when retries
//! run out. It uses hyper-util's pooled client directly (one pool per endpoint), as Svix does;
//! redirects are never followed.
//!
//! Deliveries wait in one queue served by `concurrency` workers. A task per delivery waiting
//! on a semaphore did the same job, but under overload every waiting delivery was a live task:
//! memory grew with the backlog and the server spent its time allocating them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::signature::Secret;
use crate::clock;
use crate::event::{Event, TopicId};
use crate::scenario::WebhookParams;
use crate::server::sockets::CountingConnector;
use crate::server::stats::Stats;

/// One registered endpoint.
#[derive(Debug)]
pub struct Subscription {
    /// `ep_<n>`.
    pub id: String,
    /// Where deliveries go.
    pub uri: Uri,
    /// Topics it receives.
    pub topics: Vec<TopicId>,
    /// Signing key (absent when the scenario turns signing off).
    pub secret: Option<Secret>,
    /// Set when the endpoint answered 410 Gone; nothing more is sent.
    pub disabled: AtomicBool,
}

/// A message that was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The endpoint.
    pub subscription: String,
    /// The `webhook-id`.
    pub message_id: String,
    /// The event's topic.
    pub topic: TopicId,
    /// The event's seq in its topic.
    pub seq: u64,
    /// Attempts made.
    pub attempts: u32,
    /// What the last attempt came to.
    pub last_error: String,
}

/// See the module doc.
#[derive(Clone)]
pub struct Dispatcher(Arc<Inner>);

struct Inner {
    client: Client<CountingConnector, Full<Bytes>>,
    by_topic: RwLock<Vec<Vec<Arc<Subscription>>>>,
    count: AtomicU64,
    params: WebhookParams,
    delays: Vec<Duration>,
    queue: mpsc::UnboundedSender<Job>,
    stats: Arc<Stats>,
    dead: Mutex<Vec<DeadLetter>>,
    cancel: CancellationToken,
}

/// One message for one endpoint, waiting for a worker.
struct Job {
    sub: Arc<Subscription>,
    event: Arc<Event>,
    message_id: Arc<str>,
    /// Attempts made so far.
    attempts: u32,
}

/// Most subscriptions one server holds.
pub const MAX_SUBSCRIPTIONS: u64 = 100_000;

impl Dispatcher {
    /// A dispatcher with no subscriptions and its workers; `cancel` ends every delivery under
    /// way. Must be called within a tokio runtime.
    pub fn new(params: &WebhookParams, topics: u32, stats: Arc<Stats>, cancel: CancellationToken) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(CountingConnector::new(stats.clone()));
        let (queue, jobs) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            client,
            by_topic: RwLock::new(vec![Vec::new(); topics as usize]),
            count: AtomicU64::new(0),
            delays: params.retry.delays(params.time_scale),
            params: params.clone(),
            queue,
            stats,
            dead: Mutex::new(Vec::new()),
            cancel,
        });
        let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        for _ in 0..params.concurrency {
            tokio::spawn(worker(inner.clone(), jobs.clone()));
        }
        Dispatcher(inner)
    }

    /// Registers an endpoint; the caller has checked the URL against the allowlist.
    pub fn subscribe(
        &self,
        uri: Uri,
        topics: Vec<TopicId>,
        secret: Option<Secret>,
    ) -> Result<Arc<Subscription>, String> {
        let n = self.0.count.fetch_add(1, Relaxed);
        if n >= MAX_SUBSCRIPTIONS {
            self.0.count.fetch_sub(1, Relaxed);
            return Err(format!("at most {MAX_SUBSCRIPTIONS} subscriptions"));
        }
        let sub = Arc::new(Subscription {
            id: format!("ep_{}", n + 1),
            uri,
            topics,
            secret,
            disabled: AtomicBool::new(false),
        });
        let mut by_topic = self.0.by_topic.write().expect("subscriptions lock");
        for t in &sub.topics {
            by_topic[*t as usize].push(sub.clone());
        }
        Ok(sub)
    }

    /// Whether deliveries are signed.
    pub fn signing(&self) -> bool {
        self.0.params.signing
    }

    /// Queues `event` for every endpoint following its topic.
    pub fn dispatch(&self, event: &Arc<Event>) {
        let by_topic = self.0.by_topic.read().expect("subscriptions lock");
        let subs = &by_topic[event.topic as usize];
        if subs.is_empty() {
            return;
        }
        let message_id: Arc<str> = event.message_id().into();
        for sub in subs {
            if sub.disabled.load(Relaxed) {
                continue;
            }
            self.0.enqueue(Job {
                sub: sub.clone(),
                event: event.clone(),
                message_id: message_id.clone(),
                attempts: 0,
            });
        }
    }

    /// Messages that were given up on.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.0.dead.lock().expect("dead letters lock").clone()
    }
}

/// What one attempt came to.
enum Attempt {
    Delivered,
    Failed(String),
    Gone,
}

impl Inner {
    fn enqueue(&self, job: Job) {
        self.stats.webhook.queued.fetch_add(1, Relaxed);
        if self.queue.send(job).is_err() {
            self.stats.webhook.queued.fetch_sub(1, Relaxed);
        }
    }

    /// After a failed attempt: schedules the next one, or gives up into the dead letters.
    fn after_failure(self: &Arc<Self>, job: Job, error: String) {
        let next_delay = self.delays.get(job.attempts as usize - 1).copied();
        let Some(delay) = next_delay.filter(|_| !job.sub.disabled.load(Relaxed)) else {
            self.stats.webhook.dead_letters.fetch_add(1, Relaxed);
            self.dead.lock().expect("dead letters lock").push(DeadLetter {
                subscription: job.sub.id.clone(),
                message_id: job.message_id.to_string(),
                topic: job.event.topic,
                seq: job.event.seq,
                attempts: job.attempts,
                last_error: error,
            });
            return;
        };
        let jittered = delay.mul_f64(rand::thread_rng().gen_range(0.8..=1.2));
        let inner = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(jittered) => inner.enqueue(job),
                _ = inner.cancel.cancelled() => {}
            }
        });
    }
}

/// Takes jobs off the queue one at a time until the run is cancelled.
async fn worker(inner: Arc<Inner>, jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>) {
    loop {
        let next = async { jobs.lock().await.recv().await };
        let mut job = tokio::select! {
            job = next => match job { Some(job) => job, None => return },
            _ = inner.cancel.cancelled() => return,
        };
        inner.stats.webhook.queued.fetch_sub(1, Relaxed);
        let outcome = tokio::select! {
            outcome = attempt(&inner, &job.sub, &job.event, &job.message_id, job.attempts > 0) => outcome,
            _ = inner.cancel.cancelled() => return,
        };
        job.attempts += 1;
        match outcome {
            Attempt::Delivered => {}
            Attempt::Gone => {
                job.sub.disabled.store(true, Relaxed);
                inner.after_failure(job, "410 Gone: endpoint disabled".to_string());
            }
            Attempt::Failed(error) => inner.after_failure(job, error),
        }
    }
}

async fn attempt(inner: &Inner, sub: &Subscription, event: &Event, message_id: &str, retry: bool) -> Attempt {
    let w = &inner.stats.webhook;
    w.attempts.fetch_add(1, Relaxed);
    if retry {
        w.retries.fetch_add(1, Relaxed);
    }
    w.in_flight.fetch_add(1, Relaxed);
    let timestamp = clock::unix_seconds();
    let mut req = Request::post(sub.uri.clone())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", message_id)
        .header("webhook-timestamp", timestamp);
    if let Some(secret) = &sub.secret {
        req = req.header(
            "webhook-signature",
            secret.sign(message_id, timestamp, &event.json),
        );
    }
    let req = req.body(Full::new(event.json.clone())).expect("valid request");
    let result = tokio::time::timeout(inner.params.timeout, async {
        let res = inner.client.request(req).await?;
        let status = res.status();
        // Read the answer to the end so the connection goes back to the pool.
        res.into_body().collect().await?;
        anyhow::Ok(status)
    })
    .await;
    w.in_flight.fetch_sub(1, Relaxed);
    let outcome = match result {
        Ok(Ok(status)) if status.is_success() => Attempt::Delivered,
        Ok(Ok(StatusCode::GONE)) => Attempt::Gone,
        Ok(Ok(status)) => Attempt::Failed(format!("answered {status}")),
        Ok(Err(e)) => Attempt::Failed(format!("request failed: {e}")),
        Err(_) => {
            w.timeouts.fetch_add(1, Relaxed);
            Attempt::Failed(format!("no answer within {:?}", inner.params.timeout))
        }
    };
    match outcome {
        Attempt::Delivered => w.successes.fetch_add(1, Relaxed),
        _ => w.failures.fetch_add(1, Relaxed),
    };
    outcome
}
