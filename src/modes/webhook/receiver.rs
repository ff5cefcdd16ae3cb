//! The driver's webhook receivers: HTTP servers on distinct loopback addresses (127.0.0.x),
//! so the dispatcher keeps one connection pool per endpoint as it would against separate
//! hosts. Each verifies the signature and timestamp, dedupes by `webhook-id` (through the
//! client's ledger: an id names one event, and the ledger knows every event seen) and records
//! the delivery.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::signature::Secret;
use crate::clock;
use crate::driver::recorder::Ledger;
use crate::event::decode;
use crate::server::error_response;

/// One client's receiving end.
pub struct Inbox {
    /// What the client has seen; taken when the run is collected.
    pub ledger: Option<Ledger>,
    /// The key its deliveries are signed with (None when signing is off).
    pub secret: Option<Secret>,
    /// Attempts seen per `webhook-id`, to fail the first few on purpose.
    attempts: HashMap<String, u32>,
}

struct Shared {
    inboxes: Vec<Mutex<Inbox>>,
    fail_attempts: u32,
}

/// Running receivers for every client of a run.
pub struct Receivers {
    addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
    servers: Vec<JoinHandle<()>>,
    stop: CancellationToken,
}

/// The loopback address of receiver host `h` (127.0.0.2, 127.0.0.3, ...; the server has .1).
pub fn host_addr(h: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + h as u8)
}

impl Receivers {
    /// Starts `hosts` receiver servers for these inboxes, each on port 0 of its own 127.0.0.x,
    /// or all on `ip` when given (a server on another host cannot reach loopback); each
    /// receiver answers 503 to the first `fail_attempts` attempts of every message.
    pub async fn start(
        ip: Option<std::net::IpAddr>,
        hosts: u32,
        inboxes: Vec<(Ledger, Option<Secret>)>,
        fail_attempts: u32,
    ) -> anyhow::Result<Receivers> {
        let shared = Arc::new(Shared {
            inboxes: inboxes
                .into_iter()
                .map(|(ledger, secret)| {
                    Mutex::new(Inbox {
                        ledger: Some(ledger),
                        secret,
                        attempts: HashMap::new(),
                    })
                })
                .collect(),
            fail_attempts,
        });
        let stop = CancellationToken::new();
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
            let listener = listener.tap_io(|s| {
                let _ = s.set_nodelay(true);
            });
            let (app, stop) = (app.clone(), stop.clone());
            servers.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app.into_make_service())
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
            }));
        }
        Ok(Receivers {
            addrs,
            shared,
            servers,
            stop,
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
        self.stop.cancel();
        let ledgers = self
            .shared
            .inboxes
            .iter()
            .map(|m| {
                m.lock()
                    .expect("inbox lock")
                    .ledger
                    .take()
                    .expect("ledgers are taken once")
            })
            .collect();
        for s in self.servers {
            if tokio::time::timeout(std::time::Duration::from_secs(2), s)
                .await
                .is_err()
            {
                tracing::debug!("a webhook receiver was still busy when the run ended");
            }
        }
        ledgers
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(client): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(inbox) = shared.inboxes.get(client) else {
        return error_response(StatusCode::NOT_FOUND, "no such receiver");
    };
    let now = clock::unix_seconds();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut guard = inbox.lock().expect("inbox lock");
    let Inbox {
        ledger,
        secret,
        attempts,
    } = &mut *guard;
    let Some(ledger) = ledger else {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "the run is over");
    };
    ledger.counts.requests += 1;
    if let Some(secret) = secret {
        if let Err(e) = secret.verify(
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            &body,
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
    if shared.fail_attempts > 0 {
        let seen = attempts.entry(id.to_string()).or_default();
        *seen += 1;
        if *seen <= shared.fail_attempts {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "failing on purpose (receiver_fail_attempts)",
            );
        }
    }
    match decode(&body) {
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
