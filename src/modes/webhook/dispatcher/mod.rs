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
//! With `sender = "raw"` the same workers are the raw sender instead: they POST each delivery
//! as it comes off the queue, the same size (an unsigned stand-in of the signature's length),
//! over the same pools, and do nothing else: no signing, no lanes, no retries (a failure is
//! a dead letter at once). The dispatcher's throughput is then read against theirs.
//!
//! The backlog is bounded: deliveries waiting for a worker or for their retry number at most
//! `backlog`. Past it, the dispatcher holds the event generator's thread until workers have
//! taken enough off, so intake slows to what the sender delivers; the time held is counted,
//! and the events' lateness shows in the generator's. A waiting delivery holds 24 bytes in
//! the queue or 16 in its endpoint's lane (the event itself is shared by every endpoint it
//! is owed to), a waiting retry 48 in one heap of them all.
//!
//! One endpoint has at most `endpoint_concurrency` deliveries in that queue or under way; the
//! rest of its deliveries wait in its own lane, and each attempt that ends lets the next one
//! in. A slow or failing endpoint thus holds only its share of the workers, and the others'
//! deliveries go on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::signature::Secret;
use crate::api::DeadLetter;
use crate::clock;
use crate::event::{Event, TopicId};
use crate::scenario::{Sender, WebhookParams};
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
    /// The raw sender rather than the dispatcher (see the module doc).
    raw: bool,
    /// Deliveries one endpoint may have in the queue or under way.
    endpoint_cap: usize,
    delays: Vec<Duration>,
    queue: mpsc::UnboundedSender<Job>,
    stats: Arc<Stats>,
    dead: Mutex<Vec<Dead>>,
    /// Retries waiting for their time.
    retries: retries::Retries,
    cancel: CancellationToken,
    /// What endpoints' failing times count from (tokio's clock, which tests can pause).
    epoch: tokio::time::Instant,
}

impl Inner {
    /// Blocks the calling thread while `incoming` more deliveries would take the backlog
    /// (waiting for a worker or for a retry) past its bound, and counts the time held. A
    /// fan-out larger than the bound waits for an empty backlog.
    fn hold_intake(&self, incoming: u64) {
        let w = &self.stats.webhook;
        let full = || {
            let backlog = w.queued.load(Relaxed) + w.waiting.load(Relaxed);
            backlog > 0 && backlog + incoming > self.params.backlog
        };
        if !full() {
            return;
        }
        let held = std::time::Instant::now();
        while full() && !self.cancel.is_cancelled() {
            std::thread::sleep(Duration::from_micros(200));
        }
        w.intake_held_ns
            .fetch_add(held.elapsed().as_nanos() as u64, Relaxed);
    }
}

/// A dead letter with what it takes to send it again.
struct Dead {
    letter: DeadLetter,
    sub: Arc<Subscription>,
    event: Arc<Event>,
}

/// One message for one endpoint, waiting for a worker: 24 bytes, the event shared with every
/// endpoint it is owed to (its message id is written again for each attempt).
struct Job {
    sub: Arc<Subscription>,
    event: Arc<Event>,
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
            raw: params.sender == Sender::Raw,
            params: params.clone(),
            queue,
            stats,
            dead: Mutex::new(Vec::new()),
            retries: retries::Retries::default(),
            cancel,
            epoch: tokio::time::Instant::now(),
        });
        let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        for _ in 0..params.concurrency {
            tokio::spawn(work::worker(inner.clone(), jobs.clone()));
        }
        tokio::spawn(retries::serve(inner.clone()));
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

    /// Queues `event` for every endpoint following its topic; called on the generator's
    /// thread, which it holds while the backlog is full.
    pub fn dispatch(&self, event: &Arc<Event>) {
        let followers = self.0.by_topic.read().expect("subscriptions lock")[event.topic as usize].len();
        if followers == 0 {
            return;
        }
        // Held without the subscriptions' lock, so that registering is never held with it.
        self.0.hold_intake(followers as u64);
        let by_topic = self.0.by_topic.read().expect("subscriptions lock");
        let subs = &by_topic[event.topic as usize];
        for sub in subs {
            let job = Job {
                sub: sub.clone(),
                event: event.clone(),
                attempts: 0,
            };
            if self.0.raw {
                self.0.stats.webhook.queued.fetch_add(1, Relaxed);
                self.0.send(job);
            } else {
                // A disabled endpoint's messages go through the queue too: the worker buries them.
                self.0.enqueue(job);
            }
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
                sub: d.sub,
                event: d.event,
                attempts: 0,
            });
        }
        n
    }
}

mod retries;
#[cfg(test)]
mod tests;
mod transport;
mod work;
