//! The simulated application: an event generator, a log per topic, every delivery mode's
//! routes, a control API for the driver, and counters of its own cost.
//!
//! `app(state)` builds the public router, every mode's routes (tests call it without a
//! socket); `control_app(state, token)` the control listener's, which alone can reset, start,
//! stop or shut down a run. `serve` runs both on real sockets, the public one with
//! byte-counting connections.

mod control;
mod error;
pub mod extract;
pub mod generator;
pub mod http1;
pub mod log;
mod sock_diag;
pub mod sockets;
pub mod stats;
pub mod tcpinfo;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::Handed;
use crate::clock;
use crate::event::{Event, TopicId, WireEvent};
use crate::modes::stream::StreamHub;
use crate::modes::webhook::{Allowlist, Dispatcher};
use crate::modes::{self, Mode};
use crate::scenario::Scenario;
pub use error::{error_response, ApiError, ErrorBody};

use log::EventLog;
use stats::Stats;

/// Everything the handlers share: counters that live as long as the process, and the state of
/// the run the driver configured last.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// See [`AppState`].
pub struct Shared {
    /// The server's counters.
    pub stats: Arc<Stats>,
    /// Which webhook targets may be registered.
    pub allowlist: Allowlist,
    /// Resource limits.
    pub limits: Limits,
    run: RwLock<Option<Arc<RunState>>>,
    shutdown: CancellationToken,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What the server refuses to hold more of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Long polls held at once; more get 503 with Retry-After.
    pub max_held_long_polls: u64,
    /// Largest request body, bytes; larger get 413.
    pub max_body_bytes: usize,
    /// Webhook subscriptions one run holds; more get 409.
    pub max_subscriptions: u64,
    /// Streams and held long polls one client (`?client=`) has open at once; more get 429
    /// with Retry-After.
    pub max_streams_per_client: u32,
    /// Client connections held at once; more are answered 503 with Retry-After and closed.
    pub max_connections: u64,
}

impl Default for Limits {
    /// 15,000 held long polls (a process may hold about 20,000 descriptors here), 64 KiB
    /// bodies, 100,000 subscriptions, 4 streams per client, connections unbounded (`serve`
    /// bounds them by its open-file limit).
    fn default() -> Self {
        Limits {
            max_held_long_polls: crate::scenario::DEFAULT_MAX_HELD_LONG_POLLS,
            max_body_bytes: 64 * 1024,
            max_subscriptions: crate::scenario::DEFAULT_MAX_SUBSCRIPTIONS,
            max_streams_per_client: 4,
            max_connections: u64::MAX,
        }
    }
}

impl AppState {
    /// A server with no run configured, accepting webhook targets in `allowlist`.
    pub fn new(allowlist: Allowlist) -> Self {
        AppState::with_limits(allowlist, Limits::default())
    }

    /// The same with explicit limits.
    pub fn with_limits(allowlist: Allowlist, limits: Limits) -> Self {
        AppState(Arc::new(Shared {
            stats: Arc::new(Stats::default()),
            allowlist,
            limits,
            run: RwLock::new(None),
            shutdown: CancellationToken::new(),
        }))
    }

    /// The configured run, or a 409 telling the caller to reset first.
    pub fn run(&self) -> Result<Arc<RunState>, ApiError> {
        self.run
            .read()
            .expect("run lock")
            .clone()
            .ok_or_else(|| ApiError::Conflict("no run configured: POST /control/reset first".into()))
    }

    /// Replaces the current run, ending everything the old one had going.
    fn replace_run(&self, new: Option<Arc<RunState>>) {
        let old = std::mem::replace(&mut *self.run.write().expect("run lock"), new);
        if let Some(old) = old {
            old.cancel.cancel();
        }
    }

    /// Fires when the server is asked to shut down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// One configured run of one mode: its log, its subscribers and its generator.
pub struct RunState {
    /// The scenario being run.
    pub scenario: Scenario,
    /// The mode being run.
    pub mode: Mode,
    /// Events per topic.
    pub log: EventLog,
    /// SSE and WebSocket subscribers.
    pub streams: StreamHub,
    /// Webhook subscriptions and deliveries.
    pub webhooks: Dispatcher,
    /// Fires when the run is replaced or the server shuts down.
    pub cancel: CancellationToken,
    /// Which clients the scenario's faults hit.
    pub faults: crate::scenario::FaultPlan,
    /// Fires when the generator starts; `start_ns` is then set.
    pub started: CancellationToken,
    /// CLOCK_MONOTONIC ns the schedule counts from (0 until it starts).
    pub start_ns: AtomicU64,
    /// Measured events the server handed to each client (`?client=` id): stream frames queued
    /// for writing, events in poll and long-poll pages. The driver checks what its clients saw
    /// against these, counted on this side of the wire.
    handed: Vec<AtomicU64>,
    /// Streams and held long polls open per client id.
    open_per_client: std::sync::Mutex<std::collections::HashMap<u32, u32>>,
    max_streams_per_client: u32,
    next_id: AtomicU64,
    generator: tokio::sync::Mutex<control::GeneratorState>,
}

impl RunState {
    fn new(
        scenario: Scenario,
        mode: Mode,
        stats: Arc<Stats>,
        limits: &Limits,
        parent: &CancellationToken,
    ) -> Self {
        let cancel = parent.child_token();
        RunState {
            open_per_client: Default::default(),
            handed: (0..scenario.clients.count).map(|_| AtomicU64::new(0)).collect(),
            max_streams_per_client: limits.max_streams_per_client,
            log: EventLog::new(scenario.events.topics, &scenario.events.retention),
            streams: StreamHub::new(scenario.events.topics, stats.clone()),
            webhooks: Dispatcher::new(
                &scenario.webhook,
                scenario.events.topics,
                limits.max_subscriptions,
                stats,
                cancel.clone(),
            ),
            cancel,
            faults: crate::scenario::FaultPlan::new(&scenario.faults, scenario.clients.count, scenario.seed),
            started: CancellationToken::new(),
            start_ns: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            generator: tokio::sync::Mutex::new(control::GeneratorState::Idle),
            scenario,
            mode,
        }
    }

    /// The `stream_cut` window hitting `client` now or next, `[from, to)` in CLOCK_MONOTONIC
    /// ns; None when none is ahead, the generator has not started, or the client is unknown.
    pub fn stream_cut(&self, client: Option<u32>) -> Option<(u64, u64)> {
        let client = client?;
        if !self.started.is_cancelled() {
            return None;
        }
        let start = self.start_ns.load(Relaxed);
        let now = clock::now_ns();
        self.faults
            .faults()
            .iter()
            .enumerate()
            .filter(|(i, f)| f.kind == crate::scenario::FaultKind::StreamCut && self.faults.hits(*i, client))
            .map(|(_, f)| f.window_ns(start))
            .filter(|(_, to)| *to > now)
            .min()
    }

    /// Counts the measured ones of `events` as handed to `client` (ids outside the scenario's
    /// clients, or none, are not counted).
    pub fn handed<'a>(&self, client: Option<u32>, events: impl IntoIterator<Item = &'a Arc<Event>>) {
        if let Some(n) = client.and_then(|c| self.handed.get(c as usize)) {
            let measured = events.into_iter().filter(|e| e.measured).count() as u64;
            if measured > 0 {
                n.fetch_add(measured, Relaxed);
            }
        }
    }

    /// What [`RunState::handed`] counted, and each webhook subscription's measured 2xx.
    pub fn handed_out(&self) -> Handed {
        Handed {
            by_client: self.handed.iter().map(|n| n.load(Relaxed)).collect(),
            by_subscription: self.webhooks.delivered_by_subscription(),
        }
    }

    /// Counts one more open stream or held long poll for `client` (released when the guard
    /// drops), or a 429 with `Retry-After` when the client already has its most.
    pub fn open_for(self: &Arc<Self>, client: Option<u32>) -> Result<ClientSlot, ApiError> {
        let Some(client) = client else {
            return Ok(ClientSlot(None));
        };
        let mut open = self.open_per_client.lock().expect("per-client lock");
        let n = open.entry(client).or_default();
        if *n >= self.max_streams_per_client {
            return Err(ApiError::TooMany(
                format!(
                    "client {client} already has {n} streams or long polls open, the most one client may hold"
                ),
                1,
            ));
        }
        *n += 1;
        Ok(ClientSlot(Some((self.clone(), client))))
    }

    /// A 503 with `Retry-After` when a `stream_cut` keeps `client` out right now.
    pub fn refuse_if_cut(&self, client: Option<u32>) -> Result<(), ApiError> {
        match self.stream_cut(client) {
            Some((from, to)) if from <= clock::now_ns() => {
                let seconds = (to - clock::now_ns()).div_ceil(1_000_000_000);
                Err(ApiError::Busy(
                    "streams are cut for a while (fault `stream_cut`); reconnect later".into(),
                    seconds,
                ))
            }
            _ => Ok(()),
        }
    }

    /// Emits one event: appends it to its topic's log, pushes it to stream subscribers and
    /// hands it to the webhook dispatcher.
    pub fn publish(&self, topic: TopicId, scheduled_ns: u64, measured: bool) -> Arc<Event> {
        let id = self.next_id.fetch_add(1, Relaxed) + 1;
        let emitted_ns = clock::now_ns();
        let payload = self.scenario.events.payload_bytes;
        let event = self.log.append(topic, |seq| {
            Event::new(
                WireEvent {
                    id,
                    topic,
                    seq,
                    scheduled_ns,
                    emitted_ns,
                    measured,
                },
                payload,
            )
        });
        self.streams.publish(&event);
        self.webhooks.dispatch(&event);
        event
    }
}

/// One open stream or held long poll of a client, counted while it lives.
pub struct ClientSlot(Option<(Arc<RunState>, u32)>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Some((run, client)) = &self.0 {
            let mut open = run.open_per_client.lock().expect("per-client lock");
            if let Some(n) = open.get_mut(client) {
                *n -= 1;
                if *n == 0 {
                    open.remove(client);
                }
            }
        }
    }
}

/// Answers routes that do not exist and methods a route does not take, in JSON.
fn with_fallbacks(router: Router<AppState>) -> Router<AppState> {
    router
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async {
            error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "this route does not take that method",
            )
        })
}

/// The public listener's routes, each request counted in the stats: every mode's routes and
/// `/healthz`; nothing that can reset, start, stop or shut down a run.
pub fn app(state: AppState) -> Router {
    let body_limit = axum::extract::DefaultBodyLimit::max(state.limits.max_body_bytes);
    with_fallbacks(modes::router().merge(control::public_router()))
        .layer(body_limit)
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .with_state(state)
}

/// The control listener's routes, uncounted, so the driver's own calls (reset, stats,
/// registration) never show up in the cost it measures: the control API and every mode's
/// routes. With a `token`, each request must carry `Authorization: Bearer <token>`.
pub fn control_app(state: AppState, token: Option<String>) -> Router {
    let body_limit = axum::extract::DefaultBodyLimit::max(state.limits.max_body_bytes);
    let router = with_fallbacks(control::router().merge(modes::router())).layer(body_limit);
    let router = match token {
        Some(token) => router.layer(middleware::from_fn_with_state(
            std::sync::Arc::<str>::from(token),
            require_token,
        )),
        None => router,
    };
    router.with_state(state)
}

/// Refuses a control request without the listener's token.
async fn require_token(State(token): State<Arc<str>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if same_secret(given.as_bytes(), token.as_bytes()) => next.run(req).await,
        Some(_) => error_response(StatusCode::UNAUTHORIZED, "wrong control token"),
        None => error_response(
            StatusCode::UNAUTHORIZED,
            "the control API needs `Authorization: Bearer <token>` (printed by `pushpull serve`)",
        ),
    }
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where the control API listens, and the token it asks for, if any.
pub struct Control {
    /// The listener.
    pub listener: TcpListener,
    /// Required as `Authorization: Bearer <token>` when set.
    pub token: Option<String>,
}

impl Control {
    /// A control listener on `listener`, with `token`; when it listens beyond loopback and no
    /// token is given, one is generated (the caller prints it), so that only who started the
    /// server can steer it.
    pub fn new(listener: TcpListener, token: Option<String>) -> std::io::Result<Control> {
        let token = token_for(listener.local_addr()?.ip(), token);
        Ok(Control { listener, token })
    }
}

/// The token a control listener on `ip` asks for: the one `given`, else, beyond loopback, a
/// fresh one (32 random bytes, hex).
pub fn token_for(ip: std::net::IpAddr, given: Option<String>) -> Option<String> {
    use rand::Rng as _;
    given.or_else(|| {
        (!ip.is_loopback()).then(|| {
            let bytes: [u8; 32] = rand::thread_rng().gen();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        })
    })
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // MatchedPath is a shared string: cloning it costs no allocation per request.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    state.stats.count_request(
        route.as_ref().map_or("(unmatched)", MatchedPath::as_str),
        response.status().as_u16(),
    );
    response
}

/// Serves `app(state)` on `public` (byte-counting connections) and `control_app(state)` on
/// `control`, until `shutdown` completes or the control API asks.
pub async fn serve(
    public: TcpListener,
    control: Control,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = state.shutdown.clone();
    let ending = state.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown => {}
            _ = token.cancelled() => {}
        }
        // End every stream and held request so the graceful shutdown can finish.
        ending.replace_run(None);
        ending.shutdown.cancel();
    });
    let control_server = {
        let app = control_app(state.clone(), control.token);
        let token = state.shutdown.clone();
        tokio::spawn(async move {
            axum::serve(control.listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await
        })
    };
    let listener = sockets::CountingListener::new(public, state.stats.clone());
    let token = state.shutdown.clone();
    let result = http1::serve(listener, app(state.clone()), &state, token).await;
    let _ = control_server.await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_listener_beyond_loopback_always_has_a_token() {
        let lan: std::net::IpAddr = "10.1.2.3".parse().unwrap();
        let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let generated = token_for(lan, None).expect("generated");
        assert_eq!(generated.len(), 64);
        assert_ne!(Some(generated), token_for(lan, None), "fresh each time");
        assert_eq!(token_for(lan, Some("mine".into())).as_deref(), Some("mine"));
        assert_eq!(token_for(loopback, None), None);
        assert_eq!(token_for(loopback, Some("mine".into())).as_deref(), Some("mine"));
        assert!(same_secret(b"abc", b"abc") && !same_secret(b"abc", b"abd") && !same_secret(b"ab", b"abc"));
    }
}
