//! Sockets that count: the server's accepted connections and the webhook dispatcher's
//! outgoing ones add the bytes they carry to the server's counters and set TCP_NODELAY, so
//! byte and connection figures come from the sockets themselves.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::stats::Stats;
use super::tcpinfo::ConnId;

/// Wraps a bound listener; see the module doc.
pub struct CountingListener {
    inner: TcpListener,
    stats: Arc<Stats>,
}

impl CountingListener {
    /// Counts into `stats` for every connection `inner` accepts.
    pub fn new(inner: TcpListener, stats: Arc<Stats>) -> Self {
        CountingListener { inner, stats }
    }
}

impl axum::serve::Listener for CountingListener {
    type Io = CountingStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Small pushes (one event) must not wait for Nagle's algorithm.
                    let _ = stream.set_nodelay(true);
                    return (CountingStream::new(stream, self.stats.clone()), addr);
                }
                // Out of descriptors or a connection reset before accept: back off and go on,
                // as axum's own listener does.
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection that adds what it reads and writes to the server's counters, and counts
/// itself as open until dropped.
pub struct CountingStream {
    inner: TcpStream,
    stats: Arc<Stats>,
    /// Its two ends, by which the TCP census finds it; `None` if the kernel could not say.
    id: Option<ConnId>,
    /// The count of connections held it is one of, if any: one less when it closes.
    held: Option<Arc<AtomicU64>>,
}

impl CountingStream {
    /// Starts counting `inner`.
    pub fn new(inner: TcpStream, stats: Arc<Stats>) -> Self {
        let id = inner.local_addr().and_then(|l| Ok((l, inner.peer_addr()?))).ok();
        stats.connection_opened(id);
        CountingStream {
            inner,
            stats,
            id,
            held: None,
        }
    }

    /// Counts it in `held` until it closes.
    pub fn hold(&mut self, held: &Arc<AtomicU64>) {
        held.fetch_add(1, Relaxed);
        self.held = Some(held.clone());
    }
}

impl Connection for CountingStream {
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}

/// The webhook dispatcher's connector: hyper-util's, with every connection counted.
#[derive(Clone)]
pub struct CountingConnector {
    inner: HttpConnector,
    stats: Arc<Stats>,
}

impl CountingConnector {
    /// An HTTP connector with TCP_NODELAY whose connections count into `stats`.
    pub fn new(stats: Arc<Stats>) -> Self {
        let mut inner = HttpConnector::new();
        inner.set_nodelay(true);
        inner.enforce_http(true);
        CountingConnector { inner, stats }
    }
}

impl tower_service::Service<Uri> for CountingConnector {
    type Response = TokioIo<CountingStream>;
    type Error = <HttpConnector as tower_service::Service<Uri>>::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let stats = self.stats.clone();
        Box::pin(async move {
            let io = connecting.await?;
            Ok(TokioIo::new(CountingStream::new(io.into_inner(), stats)))
        })
    }
}

impl Drop for CountingStream {
    fn drop(&mut self) {
        self.stats.connection_closed(self.id.as_ref());
        if let Some(held) = &self.held {
            held.fetch_sub(1, Relaxed);
        }
    }
}

impl AsyncRead for CountingStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            this.stats.counters.bytes_read.fetch_add(n as u64, Relaxed);
        }
        res
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            this.stats.counters.bytes_written.fetch_add(n as u64, Relaxed);
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = res {
            this.stats.counters.bytes_written.fetch_add(n as u64, Relaxed);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
