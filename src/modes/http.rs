//! One simulated client's own HTTP/1.1 connection, built on hyper's connection API.
//!
//! Every simulated client holds its own keep-alive connection, as separate real clients would,
//! so the server's connection count is honest; hyper directly, because it costs the driver
//! a third less per request than reqwest (see DESIGN.md).

use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

/// A lazily (re)connected HTTP/1.1 connection to one server.
pub struct HttpConn {
    addr: SocketAddr,
    host: String,
    recv_buffer: Option<u32>,
    sender: Option<SendRequest<Empty<Bytes>>>,
    /// Connections made so far.
    pub connects: u64,
}

impl HttpConn {
    /// A connection to `addr`, opened on first use.
    pub fn new(addr: SocketAddr) -> Self {
        HttpConn {
            addr,
            host: addr.to_string(),
            recv_buffer: None,
            sender: None,
            connects: 0,
        }
    }

    /// Caps the socket's receive buffer (a slow reader then pushes back on the server sooner).
    pub fn with_recv_buffer(mut self, bytes: u32) -> Self {
        self.recv_buffer = Some(bytes);
        self
    }

    /// A GET request for `path_and_query` with the Host header set.
    pub fn get(&self, path_and_query: &str) -> hyper::http::request::Builder {
        Request::get(path_and_query).header(hyper::header::HOST, &self.host)
    }

    /// Sends a request, connecting first if there is no live connection.
    pub async fn send(&mut self, req: Request<Empty<Bytes>>) -> anyhow::Result<Response<Incoming>> {
        let sender = match &mut self.sender {
            Some(s) if !s.is_closed() => s,
            _ => {
                let stream = connect(self.addr, self.recv_buffer).await?;
                let (sender, conn) = http1::handshake(TokioIo::new(stream))
                    .await
                    .context("HTTP handshake")?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                self.connects += 1;
                self.sender.insert(sender)
            }
        };
        sender.ready().await.context("connection not ready")?;
        let res = sender.send_request(req).await;
        if res.is_err() {
            self.sender = None;
        }
        Ok(res?)
    }

    /// Drops the connection; the next request opens a new one.
    pub fn close(&mut self) {
        self.sender = None;
    }
}

/// Opens a TCP connection with TCP_NODELAY and, if asked, a capped receive buffer.
pub async fn connect(addr: SocketAddr, recv_buffer: Option<u32>) -> anyhow::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    let stream = socket
        .connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads a whole response body.
pub async fn body_bytes(res: Response<Incoming>) -> anyhow::Result<Bytes> {
    Ok(res
        .into_body()
        .collect()
        .await
        .context("reading body")?
        .to_bytes())
}

/// What the server's 503s ask a client to wait (`Retry-After`) when one of its limits is
/// reached (held long polls, client connections).
pub const BUSY_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Longest `Retry-After` obeyed: a server cannot park a client for longer than a day.
const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3), at most a day.
pub fn retry_after(value: &hyper::header::HeaderValue) -> Option<std::time::Duration> {
    let text = value.to_str().ok()?.trim();
    let after = match text.parse::<u64>() {
        Ok(seconds) => std::time::Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(text)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    };
    Some(after.min(MAX_RETRY_AFTER))
}

/// How long a stream client waits before reconnecting: the server's `retry` hint after a
/// clean close, doubling with each failed attempt in a row (at most 32 times the hint), and
/// never less than a `Retry-After` it was given.
pub fn reconnect_delay(
    retry: std::time::Duration,
    failures: u32,
    retry_after: Option<std::time::Duration>,
) -> std::time::Duration {
    let backoff = retry * (1u32 << failures.saturating_sub(1).min(5));
    backoff.max(retry_after.unwrap_or_default())
}

/// A stream client's reconnections: how many attempts in a row failed, what the server last
/// asked for, and the wait before the next attempt ([`reconnect_delay`]).
#[derive(Debug, Clone)]
pub struct Reconnect {
    /// The server's hint (SSE's `retry:` field may change it).
    pub retry: std::time::Duration,
    failures: u32,
    asked: Option<std::time::Duration>,
}

impl Reconnect {
    /// No failures yet; waits start from `retry`.
    pub fn new(retry: std::time::Duration) -> Self {
        Reconnect {
            retry,
            failures: 0,
            asked: None,
        }
    }

    /// The attempt connected: the backoff starts over.
    pub fn connected(&mut self) {
        self.failures = 0;
    }

    /// The attempt failed; `asked` is the server's `Retry-After`, if it sent one.
    pub fn failed(&mut self, asked: Option<std::time::Duration>) {
        self.failures += 1;
        self.asked = asked;
    }

    /// Waits before the next attempt; true when `stop` fired first.
    pub async fn wait(&mut self, stop: &tokio_util::sync::CancellationToken) -> bool {
        let delay = reconnect_delay(self.retry, self.failures, self.asked.take());
        crate::clock::sleep_or_stop(delay, stop).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_backoff_doubles() {
        let v = |s: &str| hyper::header::HeaderValue::from_str(s).unwrap();
        assert_eq!(retry_after(&v("3")), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after(&v("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&v("99999999")), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&v("soon")), None);
        let r = Duration::from_millis(100);
        assert_eq!(reconnect_delay(r, 0, None), r);
        assert_eq!(reconnect_delay(r, 1, None), r);
        assert_eq!(reconnect_delay(r, 3, None), r * 4);
        assert_eq!(reconnect_delay(r, 30, None), r * 32);
        assert_eq!(
            reconnect_delay(r, 1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reconnects_back_off_while_attempts_fail_and_start_over_after_one_succeeds() {
        let stop = tokio_util::sync::CancellationToken::new();
        let mut r = Reconnect::new(Duration::from_millis(500));
        // A clean close waits the hint; then failures in a row: 0.5, 1, 2, 4 s, the third
        // answered 503 with Retry-After: 10, which is waited in full, once; after a success,
        // the hint again.
        let mut waits = Vec::new();
        for outcome in [
            None,
            Some(None),
            Some(None),
            Some(Some(10)),
            Some(None),
            Some(None),
        ] {
            match outcome {
                Some(asked) => r.failed(asked.map(Duration::from_secs)),
                None => r.connected(),
            }
            let t0 = tokio::time::Instant::now();
            assert!(!r.wait(&stop).await);
            waits.push(t0.elapsed().as_millis());
        }
        r.connected();
        let t0 = tokio::time::Instant::now();
        assert!(!r.wait(&stop).await);
        waits.push(t0.elapsed().as_millis());
        assert_eq!(waits, [500, 500, 1000, 10_000, 4000, 8000, 500]);
        // A stop ends a wait at once.
        stop.cancel();
        let t0 = tokio::time::Instant::now();
        assert!(r.wait(&stop).await);
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }
}
