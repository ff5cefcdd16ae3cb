//! The public listener's HTTP/1.1 server loop: hyper's HTTP/1 connection directly, with
//! upgrades (WebSocket) and graceful shutdown.
//!
//! `axum::serve` wraps every connection in hyper-util's HTTP/1-or-2 auto-detecting connection,
//! whose state is sized for HTTP/2 as well. Clients of this server speak HTTP/1.1, and a held
//! long poll or an open stream is a connection that lives for the whole run, so its size is
//! what an idle subscriber costs: this loop keeps it to what HTTP/1.1 needs.

use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::sockets::CountingListener;
use axum::serve::Listener as _;

/// In every request's extensions: cancel it to drop the connection the request came on at
/// once, even while a response is blocked writing to it (a slow consumer's stream).
#[derive(Debug, Clone)]
pub struct ConnectionCloser(pub CancellationToken);

/// Serves `app` on `listener` until `shutdown` fires, then lets open connections finish
/// their current request (streams and held requests end with the run) for up to five seconds.
pub async fn serve(
    mut listener: CountingListener,
    app: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    let connections = TaskTracker::new();
    loop {
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
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
