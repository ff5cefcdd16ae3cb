//! The driver's webhook receivers: HTTP servers on distinct loopback addresses (127.0.0.x),
//! so the dispatcher keeps one connection pool per endpoint as it would against separate
//! hosts. Each verifies the signature and timestamp, dedupes by `webhook-id` (through the
//! client's ledger: an id names one event, and the ledger knows every event seen) and records
//! the delivery.
//!
//! Receivers also live through the scenario's faults: down (503, or a hang-up), slow (the
//! event is processed, the answer comes after the sender stopped waiting), flaky, gone (410),
//! and added network latency.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::signature::Secret;
use crate::clock;
use crate::clock::{sleep_closely_or_stop, sleep_or_stop};
use crate::event::decode;
use crate::recorder::{Ledger, Recorder};
use crate::scenario::faults::ClientFaults;
use crate::scenario::{DownAnswer, FaultKind};
use crate::server::error_response;

/// What one client's receiver starts with.
pub struct ReceiverClient {
    /// What the client has seen.
    pub ledger: Ledger,
    /// The key its deliveries are signed with (None when signing is off).
    pub secret: Option<Secret>,
    /// The faults it lives through.
    pub faults: ClientFaults,
}

/// One client's receiving end.
struct Inbox {
    /// What the client has seen; taken when the run is collected.
    ledger: Option<Ledger>,
    /// Attempts seen per `webhook-id`, to fail the first few on purpose.
    attempts: HashMap<String, u32>,
}

/// One client, with what does not change behind no lock.
struct Client {
    inbox: Mutex<Inbox>,
    secret: Option<Secret>,
    faults: ClientFaults,
    recorder: Arc<Recorder>,
}

struct Shared {
    clients: Vec<Client>,
    fail_attempts: u32,
    stop: CancellationToken,
}

/// Running receivers for every client of a run.
pub struct Receivers {
    addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    servers: Vec<JoinHandle<()>>,
}

/// The loopback address of receiver host `h` (127.0.0.2, 127.0.0.3, ...; the server has .1).
pub fn host_addr(h: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + h as u8)
}

/// Marks a response that must not be sent: the connection is closed instead.
#[derive(Debug, Clone, Copy)]
struct HangUp;

impl std::fmt::Display for HangUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the receiver hung up (receiver_down, answer = \"close\")")
    }
}

impl std::error::Error for HangUp {}

impl Receivers {
    /// Starts `hosts` receiver servers for these clients, each on port 0 of its own 127.0.0.x,
    /// or all on `ip` when given (a server on another host cannot reach loopback); each
    /// receiver answers 503 to the first `fail_attempts` attempts of every message.
    pub async fn start(
        ip: Option<std::net::IpAddr>,
        hosts: u32,
        clients: Vec<ReceiverClient>,
        fail_attempts: u32,
    ) -> anyhow::Result<Receivers> {
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            clients: clients
                .into_iter()
                .map(|c| Client {
                    recorder: c.ledger.recorder().clone(),
                    inbox: Mutex::new(Inbox {
                        ledger: Some(c.ledger),
                        attempts: HashMap::new(),
                    }),
                    secret: c.secret,
                    faults: c.faults,
                })
                .collect(),
            fail_attempts,
            stop: stop.clone(),
        });
        let app = Router::new()
            .route("/hook/{client}", post(receive))
            .with_state(shared.clone());
        let mut addrs = Vec::new();
        let mut servers = Vec::new();
        for h in 0..hosts.clamp(1, 250) {
            let at = ip.unwrap_or(std::net::IpAddr::V4(host_addr(h)));
            let listener = TcpListener::bind((at, 0))
                .await
                .with_context(|| format!("binding a webhook receiver on {at}"))?;
            addrs.push(listener.local_addr()?);
            servers.push(tokio::spawn(serve(listener, app.clone(), stop.clone())));
        }
        Ok(Receivers {
            addrs,
            shared,
            servers,
        })
    }

    /// The URL client `i` registers.
    pub fn url(&self, client: u32) -> String {
        format!(
            "http://{}/hook/{client}",
            self.addrs[client as usize % self.addrs.len()]
        )
    }

    /// Stops the servers and hands back every client's ledger. Requests still arriving (the
    /// dispatcher may be retrying) find no ledger and are turned away.
    pub async fn finish(self) -> Vec<Ledger> {
        self.shared.stop.cancel();
        let ledgers = self
            .shared
            .clients
            .iter()
            .map(|c| {
                c.inbox
                    .lock()
                    .expect("inbox lock")
                    .ledger
                    .take()
                    .expect("ledgers are taken once")
            })
            .collect();
        for s in self.servers {
            if tokio::time::timeout(Duration::from_secs(2), s).await.is_err() {
                tracing::debug!("a webhook receiver was still busy when the run ended");
            }
        }
        ledgers
    }
}

/// One receiver host's HTTP/1.1 loop: `app` answers, except that a response marked
/// [`HangUp`] closes the connection unanswered.
async fn serve(listener: TcpListener, app: Router, stop: CancellationToken) {
    let connections = TaskTracker::new();
    loop {
        let io = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((io, _)) => io,
                Err(_) => continue,
            },
            _ = stop.cancelled() => break,
        };
        let _ = io.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let mut app = app.clone();
            async move {
                let res = tower_service::Service::call(&mut app, req.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|never| match never {});
                match res.extensions().get::<HangUp>() {
                    Some(h) => Err(*h),
                    None => Ok(res),
                }
            }
        });
        let stop = stop.clone();
        connections.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
            let mut conn = pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    connections.close();
    let _ = tokio::time::timeout(Duration::from_secs(2), connections.wait()).await;
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(client): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(c) = shared.clients.get(client) else {
        return error_response(StatusCode::NOT_FOUND, "no such receiver");
    };
    let t = c.recorder.since_start();
    let (one_way, refusal, slow) = {
        let mut rng = rand::thread_rng();
        let one_way = c.faults.one_way_delay(t, &mut rng);
        let mut refusal = None;
        let mut slow = Duration::ZERO;
        for f in c.faults.active(t) {
            match &f.kind {
                FaultKind::ReceiverGone => {
                    refusal = Some(error_response(StatusCode::GONE, "gone (receiver_gone)"))
                }
                FaultKind::ReceiverDown { answer, retry_after } => {
                    refusal = Some(down(*answer, *retry_after))
                }
                FaultKind::ReceiverFlaky { probability } if rng.gen_bool(*probability) => {
                    refusal = Some(error_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "failing by chance (receiver_flaky)",
                    ))
                }
                FaultKind::ReceiverSlow { delay } => slow = slow.max(*delay),
                _ => {}
            }
        }
        (one_way, refusal, slow)
    };
    // The request's trip, then the receiver's work, then the answer's trip (each to some
    // tens of microseconds: see `sleep_closely_or_stop`).
    sleep_closely_or_stop(one_way, &shared.stop).await;
    let answer = match refusal {
        Some(refusal) => {
            if let Some(ledger) = &mut c.inbox.lock().expect("inbox lock").ledger {
                ledger.counts.requests += 1;
            }
            refusal
        }
        None => {
            let answer = handle(c, shared.fail_attempts, &headers, &body);
            // A slow receiver has done the work; its answer comes late.
            sleep_or_stop(slow, &shared.stop).await;
            answer
        }
    };
    sleep_closely_or_stop(one_way, &shared.stop).await;
    answer
}

/// How a downed receiver refuses.
fn down(answer: DownAnswer, retry_after: Option<Duration>) -> Response {
    match answer {
        DownAnswer::Close => {
            let mut res = StatusCode::SERVICE_UNAVAILABLE.into_response();
            res.extensions_mut().insert(HangUp);
            res
        }
        DownAnswer::Unavailable => {
            let mut res = error_response(StatusCode::SERVICE_UNAVAILABLE, "down (receiver_down)");
            if let Some(after) = retry_after {
                let seconds = after.as_secs_f64().ceil() as u64;
                res.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, seconds.into());
            }
            res
        }
    }
}

/// Verifies, dedupes and records one delivery.
fn handle(c: &Client, fail_attempts: u32, headers: &HeaderMap, body: &[u8]) -> Response {
    let now = clock::unix_seconds();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut guard = c.inbox.lock().expect("inbox lock");
    let Inbox { ledger, attempts } = &mut *guard;
    let Some(ledger) = ledger else {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "the run is over");
    };
    ledger.counts.requests += 1;
    if let Some(secret) = &c.secret {
        if let Err(e) = secret.verify(
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            body,
            now,
        ) {
            ledger.counts.rejected += 1;
            return error_response(StatusCode::UNAUTHORIZED, &e.to_string());
        }
    }
    let Some(id) = header("webhook-id") else {
        ledger.counts.rejected += 1;
        return error_response(StatusCode::BAD_REQUEST, "missing header `webhook-id`");
    };
    if fail_attempts > 0 {
        let seen = attempts.entry(id.to_string()).or_default();
        *seen += 1;
        if *seen <= fail_attempts {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "failing on purpose (receiver_fail_attempts)",
            );
        }
    }
    match decode(body) {
        Ok(ev) => {
            ledger.observe(&ev);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            ledger.counts.errors += 1;
            error_response(StatusCode::BAD_REQUEST, &format!("body is not an event: {e}"))
        }
    }
}
