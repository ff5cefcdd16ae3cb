//! The public listener's HTTP/1.1 server loop: hyper's HTTP/1 connection directly, with
//! upgrades (WebSocket) and graceful shutdown. Past its limit of client connections
//! (`Limits::max_connections`) a new connection is answered 503 with `Retry-After` and
//! closed, so that a client finds out at once rather than waiting in the accept queue of a
//! server out of descriptors.
//!
//! `axum::serve` wraps every connection in hyper-util's HTTP/1-or-2 auto-detecting connection,
//! whose state is sized for HTTP/2 as well. Clients of this server speak HTTP/1.1, and a held
//! long poll or an open stream is a connection that lives for the whole run, so its size is
//! what an idle subscriber costs: this loop keeps it to what HTTP/1.1 needs.

use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::sockets::CountingListener;
use super::{ApiError, AppState};
use axum::response::IntoResponse as _;
use axum::serve::Listener as _;

/// In every request's extensions: cancel it to drop the connection the request came on at
/// once, even while a response is blocked writing to it (a slow consumer's stream).
#[derive(Debug, Clone)]
pub struct ConnectionCloser(pub CancellationToken);

/// Serves `app` on `listener` until `shutdown` fires, then lets open connections finish
/// their current request (streams and held requests end with the run) for up to five seconds.
/// Holds at most `state`'s `max_connections` client connections at once.
pub async fn serve(
    mut listener: CountingListener,
    app: Router,
    state: &AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(crate::api::HEADER_READ_TIMEOUT);
    // A refused connection is answered as soon as its request has come, and closed; one
    // that sends nothing is closed after a few seconds.
    let mut refusing = builder.clone();
    refusing
        .keep_alive(false)
        .header_read_timeout(Duration::from_secs(2));
    let connections = TaskTracker::new();
    let held = Arc::new(AtomicU64::new(0));
    let max = state.limits.max_connections;
    loop {
        let (mut io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        if held.load(Relaxed) >= max {
            state.stats.counters.connections_refused.fetch_add(1, Relaxed);
            let refuse = hyper::service::service_fn(
                move |_req: hyper::Request<hyper::body::Incoming>| async move {
                    let why = format!("this server holds {max} client connections at once, the most it may; try again shortly");
                    let wait = crate::modes::http::BUSY_RETRY_AFTER.as_secs();
                    Ok::<_, std::convert::Infallible>(ApiError::Busy(why, wait).into_response())
                },
            );
            let conn = refusing.serve_connection(TokioIo::new(io), refuse);
            connections.spawn(async move {
                let _ = conn.await;
            });
            continue;
        }
        // The count goes with the socket, which an upgrade (WebSocket) takes along.
        io.hold(&held);
        let closer = CancellationToken::new();
        let service = {
            let (app, closer) = (app.clone(), closer.clone());
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectionCloser(closer.clone()));
                tower_service::Service::call(&mut app.clone(), req.map(axum::body::Body::new))
            })
        };
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut conn = pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                // Dropping the connection closes its socket.
                _ = closer.cancelled() => return,
                _ = shutdown.cancelled() => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    connections.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), connections.wait()).await;
    Ok(())
}
