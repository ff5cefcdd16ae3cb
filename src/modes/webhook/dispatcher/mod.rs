//! The webhook dispatcher: POSTs each event to each subscribed URL, signed, with a timeout,
//! retries on the scenario's schedule with ±20% jitter, and a dead-letter list when retries
//! run out. It uses hyper-util's pooled client directly (one pool per endpoint), as Svix does;
//! redirects are never followed.
//!
//! A `Retry-After` on a 429 or 503 puts the next attempt off at least that long. An endpoint
//! that answers 410, or fails without a success for `disable_after`, is disabled: what it
//! was owed then goes to the dead letters, never silently away, and a replay re-enables it.
//!
//! Deliveries wait in one queue served by `concurrency` workers. A task per delivery waiting
//! on a semaphore did the same job, but under overload every waiting delivery was a live task:
//! memory grew with the backlog and the server spent its time allocating them.
//!
//! One endpoint has at most `endpoint_concurrency` deliveries in that queue or under way; the
//! rest of its deliveries wait in its own lane, and each attempt that ends lets the next one
//! in. A slow or failing endpoint thus holds only its share of the workers, and the others'
//! deliveries go on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use http_body_util::Full;
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::Rng;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::signature::Secret;
use crate::api::DeadLetter;
use crate::clock;
use crate::event::{Event, TopicId};
use crate::scenario::WebhookParams;
use crate::server::sockets::CountingConnector;
use crate::server::stats::Stats;
use transport::Transport;

/// One registered endpoint.
#[derive(Debug)]
pub struct Subscription {
    /// `ep_<n>`.
    pub id: String,
    /// Where deliveries go, pinned to the address the registration resolved.
    pub uri: Uri,
    /// The `Host` header: the authority as registered (a name stays a name).
    pub host: hyper::header::HeaderValue,
    /// Topics it receives.
    pub topics: Vec<TopicId>,
    /// Signing keys (none when the scenario turns signing off).
    signing: RwLock<Signing>,
    /// Set when the endpoint answered 410 Gone or kept failing; nothing more is sent.
    pub disabled: AtomicBool,
    /// When the first failure since the last success came, in ns after the dispatcher's
    /// epoch, plus one (0: healthy).
    failing_since_ns: AtomicU64,
    /// Measured events this endpoint answered 2xx for.
    delivered: AtomicU64,
    /// Its deliveries in the workers' queue or under way, and those waiting for a turn.
    lane: Mutex<Lane>,
}

/// An endpoint's deliveries beyond its share of the workers, waiting their turn.
#[derive(Debug, Default)]
struct Lane {
    /// Its deliveries in the workers' queue or under way.
    admitted: usize,
    /// The rest, oldest first (without the endpoint itself, which holds them).
    waiting: VecDeque<Waiting>,
}

/// A delivery waiting in its endpoint's lane.
#[derive(Debug)]
struct Waiting {
    event: Arc<Event>,
    message_id: Arc<str>,
    attempts: u32,
}

/// An endpoint's signing keys: the current one and, while a rotation's grace lasts, the one
/// before it. Both sign each message, so receivers that know either accept it.
#[derive(Default)]
struct Signing {
    current: Option<Secret>,
    previous: Option<(Secret, u64)>,
}

impl std::fmt::Debug for Signing {
    /// Never the keys themselves.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing")
            .field("current", &self.current.is_some())
            .field("previous_until_ns", &self.previous.as_ref().map(|p| p.1))
            .finish()
    }
}

impl Subscription {
    /// The `webhook-signature` header value for one attempt, or None when signing is off.
    fn sign(&self, message_id: &str, timestamp: u64, body: &[u8]) -> Option<String> {
        let keys = self.signing.read().expect("signing lock");
        let mut header = keys.current.as_ref()?.sign(message_id, timestamp, body);
        if let Some((old, until_ns)) = &keys.previous {
            if clock::now_ns() < *until_ns {
                header.push(' ');
                header.push_str(&old.sign(message_id, timestamp, body));
            }
        }
        Some(header)
    }
}

/// See the module doc.
#[derive(Clone)]
pub struct Dispatcher(Arc<Inner>);

struct Inner {
    transport: Transport,
    by_topic: RwLock<Vec<Vec<Arc<Subscription>>>>,
    /// Every subscription, `ep_<n>` at index n − 1.
    all: RwLock<Vec<Arc<Subscription>>>,
    max_subscriptions: u64,
    params: WebhookParams,
    /// Deliveries one endpoint may have in the queue or under way.
    endpoint_cap: usize,
    delays: Vec<Duration>,
    queue: mpsc::UnboundedSender<Job>,
    stats: Arc<Stats>,
    dead: Mutex<Vec<Dead>>,
    cancel: CancellationToken,
    /// What endpoints' failing times count from (tokio's clock, which tests can pause).
    epoch: tokio::time::Instant,
}

/// A dead letter with what it takes to send it again.
struct Dead {
    letter: DeadLetter,
    sub: Arc<Subscription>,
    event: Arc<Event>,
}

/// One message for one endpoint, waiting for a worker.
struct Job {
    sub: Arc<Subscription>,
    event: Arc<Event>,
    message_id: Arc<str>,
    /// Attempts made so far.
    attempts: u32,
}

impl Dispatcher {
    /// A dispatcher with no subscriptions and its workers; `cancel` ends every delivery under
    /// way. Must be called within a tokio runtime.
    pub fn new(
        params: &WebhookParams,
        topics: u32,
        max_subscriptions: u64,
        stats: Arc<Stats>,
        cancel: CancellationToken,
    ) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(90))
            .build(CountingConnector::new(stats.clone()));
        let transport = Transport::Http(client);
        Self::with_transport(transport, params, topics, max_subscriptions, stats, cancel)
    }

    pub(super) fn with_transport(
        transport: Transport,
        params: &WebhookParams,
        topics: u32,
        max_subscriptions: u64,
        stats: Arc<Stats>,
        cancel: CancellationToken,
    ) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            transport,
            by_topic: RwLock::new(vec![Vec::new(); topics as usize]),
            all: RwLock::new(Vec::new()),
            max_subscriptions,
            delays: params.retry.delays(params.time_scale),
            endpoint_cap: params.endpoint_concurrency(),
            params: params.clone(),
            queue,
            stats,
            dead: Mutex::new(Vec::new()),
            cancel,
            epoch: tokio::time::Instant::now(),
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
        host: String,
        topics: Vec<TopicId>,
        secret: Option<Secret>,
    ) -> Result<Arc<Subscription>, String> {
        let host = hyper::header::HeaderValue::from_str(&host).map_err(|e| format!("host: {e}"))?;
        // Ids are handed out under the lock that keeps the list, so `ep_<n>` is at n − 1.
        let mut all = self.0.all.write().expect("subscriptions lock");
        if all.len() as u64 >= self.0.max_subscriptions {
            return Err(format!(
                "this server holds at most {} subscriptions, and has them all",
                self.0.max_subscriptions
            ));
        }
        let sub = Arc::new(Subscription {
            id: format!("ep_{}", all.len() + 1),
            uri,
            host,
            topics,
            signing: RwLock::new(Signing {
                current: secret,
                previous: None,
            }),
            disabled: AtomicBool::new(false),
            failing_since_ns: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            lane: Mutex::new(Lane::default()),
        });
        all.push(sub.clone());
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
            let job = Job {
                sub: sub.clone(),
                event: event.clone(),
                message_id: message_id.clone(),
                attempts: 0,
            };
            // A disabled endpoint's messages go through the queue too: the worker buries them.
            self.0.enqueue(job);
        }
    }

    /// Measured events each endpoint answered 2xx for, by its id.
    pub fn delivered_by_subscription(&self) -> std::collections::BTreeMap<String, u64> {
        let all = self.0.all.read().expect("subscriptions lock");
        all.iter()
            .map(|s| (s.id.clone(), s.delivered.load(Relaxed)))
            .collect()
    }

    /// Messages that were given up on.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        let dead = self.0.dead.lock().expect("dead letters lock");
        dead.iter().map(|d| d.letter.clone()).collect()
    }

    /// The endpoint `id` names, if registered.
    fn find(&self, id: &str) -> Option<Arc<Subscription>> {
        let n = id.strip_prefix("ep_")?.parse::<usize>().ok()?;
        self.0
            .all
            .read()
            .expect("subscriptions lock")
            .get(n.checked_sub(1)?)
            .cloned()
    }

    /// Whether `id` names a registered endpoint.
    pub fn knows(&self, id: &str) -> bool {
        self.find(id).is_some()
    }

    /// Rotates endpoint `id`'s signing secret to `new`: for `grace`, messages carry signatures
    /// by both the new and the old secret (receivers accept a header when one matches).
    pub fn rotate(&self, id: &str, new: Secret, grace: Duration) -> Result<(), String> {
        let sub = self
            .find(id)
            .ok_or_else(|| format!("no endpoint `{id}` is registered"))?;
        let mut keys = sub.signing.write().expect("signing lock");
        let old = keys.current.replace(new).ok_or("signing is off in this run")?;
        keys.previous = Some((old, clock::now_ns().saturating_add(grace.as_nanos() as u64)));
        Ok(())
    }

    /// Sends the dead letters of `subscription` (of every endpoint when None) again, as new
    /// messages with a fresh retry schedule, after re-enabling their endpoints; returns how
    /// many were queued.
    pub fn replay(&self, subscription: Option<&str>) -> usize {
        let replay: Vec<Dead> = {
            let mut dead = self.0.dead.lock().expect("dead letters lock");
            let (replay, keep) = std::mem::take(&mut *dead)
                .into_iter()
                .partition(|d| subscription.is_none_or(|s| d.letter.subscription == s));
            *dead = keep;
            replay
        };
        for d in &replay {
            d.sub.failing_since_ns.store(0, Relaxed);
            d.sub.disabled.store(false, Relaxed);
        }
        let n = replay.len();
        self.0.stats.webhook.replayed.fetch_add(n as u64, Relaxed);
        for d in replay {
            self.0.enqueue(Job {
                message_id: d.letter.message_id.into(),
                sub: d.sub,
                event: d.event,
                attempts: 0,
            });
        }
        n
    }
}

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
    fn enqueue(&self, job: Job) {
        self.stats.webhook.queued.fetch_add(1, Relaxed);
        let mut lane = job.sub.lane.lock().expect("lane lock");
        if lane.admitted < self.endpoint_cap {
            lane.admitted += 1;
            drop(lane);
            self.send(job);
        } else {
            lane.waiting.push_back(Waiting {
                event: job.event,
                message_id: job.message_id,
                attempts: job.attempts,
            });
        }
    }

    fn send(&self, job: Job) {
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
                    message_id: w.message_id,
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
                message_id: job.message_id.to_string(),
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
        let inner = self.clone();
        self.stats.webhook.waiting.fetch_add(1, Relaxed);
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(jittered) => {
                    inner.stats.webhook.waiting.fetch_sub(1, Relaxed);
                    inner.enqueue(job);
                }
                _ = inner.cancel.cancelled() => {
                    inner.stats.webhook.waiting.fetch_sub(1, Relaxed);
                }
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
        let sub = job.sub.clone();
        if sub.disabled.load(Relaxed) {
            inner.bury(job, "endpoint disabled: not sent".into());
            inner.release(&sub);
            continue;
        }
        let outcome = tokio::select! {
            outcome = attempt(&inner, &job.sub, &job.event, &job.message_id, job.attempts > 0) => outcome,
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

async fn attempt(inner: &Inner, sub: &Subscription, event: &Event, message_id: &str, retry: bool) -> Attempt {
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
    if let Some(signature) = sub.sign(message_id, timestamp, &event.json) {
        req = req.header("webhook-signature", signature);
    }
    let req = req.body(Full::new(event.json.clone())).expect("valid request");
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

#[cfg(test)]
mod tests;
mod transport;
