//! The event server as a child process, and the control client the driver steers it with.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::modes::webhook::{Register, Registered};
use crate::server::generator::Emitted;
use crate::server::stats::StatsSnapshot;
use crate::server::{ResetRequest, StartResponse};

/// The line `pushpull serve` prints once it listens; the driver reads the address from it.
pub const LISTENING_PREFIX: &str = "pushpull server listening on http://";

/// A running `pushpull serve` child, killed if dropped.
pub struct ServerProcess {
    child: Child,
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Where the driver's control calls go (uncounted).
    pub control: SocketAddr,
}

/// Reads `pushpull server listening on http://A control http://B`.
pub fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.strip_prefix(LISTENING_PREFIX)?;
    let (public, control) = rest.split_once(" control http://")?;
    Some((public.trim().parse().ok()?, control.trim().parse().ok()?))
}

impl ServerProcess {
    /// Starts `exe serve` on loopback port 0 and waits for its addresses.
    pub async fn spawn(exe: &Path) -> anyhow::Result<ServerProcess> {
        let mut child = Command::new(exe)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the event server ({})", exe.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .context("the event server did not report its address within 15 s")??
            .context("the event server exited before listening")?;
        let Some((addr, control)) = parse_listening(&line) else {
            bail!("unexpected first line from the event server: {line:?}");
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerProcess { child, addr, control })
    }

    /// Asks the server to shut down, and kills it if it has not within five seconds.
    pub async fn shutdown(mut self, control: &Control) {
        let _ = control
            .post::<_, serde_json::Value>("/control/shutdown", &())
            .await;
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The driver's client for the control API (reqwest: off the hot path).
#[derive(Clone)]
pub struct Control {
    http: reqwest::Client,
    base: String,
}

impl Control {
    /// A client for the server at `addr`.
    pub fn new(addr: SocketAddr) -> Control {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("building an HTTP client");
        Control {
            http,
            base: format!("http://{addr}"),
        }
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        Self::parse(path, res).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        Self::parse(path, res).await
    }

    async fn parse<T: DeserializeOwned>(path: &str, res: reqwest::Response) -> anyhow::Result<T> {
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() {
            bail!("{path} answered {status}: {text}");
        }
        let text = if text.is_empty() { "null" } else { &text };
        serde_json::from_str(text).with_context(|| format!("{path} answered something unexpected: {text}"))
    }

    /// Configures a fresh run of one mode.
    pub async fn reset(&self, req: &ResetRequest) -> anyhow::Result<()> {
        self.post::<_, serde_json::Value>("/control/reset", req)
            .await
            .map(drop)
    }

    /// Starts the generator.
    pub async fn start(&self) -> anyhow::Result<StartResponse> {
        self.post("/control/start", &()).await
    }

    /// Waits for the generator to finish and returns what it emitted.
    pub async fn stop(&self) -> anyhow::Result<Emitted> {
        self.post("/control/stop", &()).await
    }

    /// The server's counters.
    pub async fn stats(&self) -> anyhow::Result<StatsSnapshot> {
        self.get("/stats").await
    }

    /// Registers a webhook endpoint.
    pub async fn register(&self, req: &Register) -> anyhow::Result<Registered> {
        self.post("/webhooks", req).await
    }
}
