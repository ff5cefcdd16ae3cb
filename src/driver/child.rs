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

use crate::api::{
    DeadLetter, Handed, Health, Register, Registered, ResetRequest, StartRequest, StartResponse,
    StatsSnapshot, Window,
};
use crate::clock;

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
    /// Starts `exe serve` on loopback port 0 as the scenario's `[server]` has it (its cores
    /// as worker threads, else one per core; its limits) and waits for its addresses.
    pub async fn spawn(exe: &Path, server: &crate::scenario::ServerParams) -> anyhow::Result<ServerProcess> {
        let mut command = Command::new(exe);
        if let Some(n) = server.cores {
            // The runtime's own setting for its worker threads (tokio reads it at start).
            command.env("TOKIO_WORKER_THREADS", n.to_string());
        }
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        if let Some(n) = server.max_held_long_polls {
            command.args(["--max-held-long-polls", &n.to_string()]);
        }
        if let Some(n) = server.max_subscriptions {
            command.args(["--max-subscriptions", &n.to_string()]);
        }
        if let Some(n) = server.max_connections {
            command.args(["--max-connections", &n.to_string()]);
        }
        let mut child = command
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

/// The offset between the server's clock and the driver's, from one round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSync {
    /// Server clock − driver clock, ns.
    pub offset_ns: i64,
    /// Half the round trip: the server read its clock somewhere within it.
    pub uncertainty_ns: u64,
}

impl ClockSync {
    /// The server read `server_ns` between the driver's `sent_ns` and `received_ns`; assume
    /// the midpoint (Cristian's algorithm).
    pub fn from_round_trip(sent_ns: u64, server_ns: u64, received_ns: u64) -> ClockSync {
        let half = received_ns.saturating_sub(sent_ns) / 2;
        ClockSync {
            offset_ns: server_ns as i64 - (sent_ns + half) as i64,
            uncertainty_ns: half,
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
    /// A client for the control API at `addr`, sending `token` if the server asks for one.
    pub fn new(addr: SocketAddr, token: Option<&str>) -> anyhow::Result<Control> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .context("the control token must be printable ASCII")?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .default_headers(headers)
            .build()
            .context("building an HTTP client")?;
        Ok(Control {
            http,
            base: format!("http://{addr}"),
        })
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

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
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

    /// Starts the generator with its schedule counting from `start_ns` (server clock).
    pub async fn start(&self, start_ns: u64) -> anyhow::Result<StartResponse> {
        self.post("/control/start", &StartRequest { start_ns }).await
    }

    /// Waits for the generator to finish and returns what it emitted, with the server's
    /// counters at both ends of the measured window.
    pub async fn stop(&self) -> anyhow::Result<Window> {
        self.post("/control/stop", &()).await
    }

    /// What the server counted handing out to each client.
    pub async fn handed(&self) -> anyhow::Result<Handed> {
        self.get("/control/handed").await
    }

    /// The webhook messages the server gave up on.
    pub async fn dead_letters(&self) -> anyhow::Result<Vec<DeadLetter>> {
        self.get("/webhooks/dead-letters").await
    }

    /// The server's counters.
    pub async fn stats(&self) -> anyhow::Result<StatsSnapshot> {
        self.get("/stats").await
    }

    /// Estimates the server's CLOCK_MONOTONIC minus the driver's from several /healthz round
    /// trips, keeping the fastest (its midpoint is the least uncertain).
    pub async fn clock_offset(&self) -> anyhow::Result<ClockSync> {
        let mut best: Option<ClockSync> = None;
        for _ in 0..9 {
            let t0 = clock::now_ns();
            let health: Health = self.get("/healthz").await?;
            let t1 = clock::now_ns();
            let sync = ClockSync::from_round_trip(t0, health.now_ns, t1);
            if best.is_none_or(|b| sync.uncertainty_ns < b.uncertainty_ns) {
                best = Some(sync);
            }
        }
        Ok(best.expect("nine samples"))
    }

    /// Registers a webhook endpoint.
    pub async fn register(&self, req: &Register) -> anyhow::Result<Registered> {
        self.post("/webhooks", req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_assumes_the_server_read_its_clock_mid_trip() {
        // Sent at 1,000, answered at 1,400; the server's clock read 51,200 in between.
        let s = ClockSync::from_round_trip(1_000, 51_200, 1_400);
        assert_eq!(
            s,
            ClockSync {
                offset_ns: 50_000,
                uncertainty_ns: 200
            }
        );
        let behind = ClockSync::from_round_trip(90_000, 10_050, 90_100);
        assert_eq!(behind.offset_ns, -80_000);
    }

    #[test]
    fn listening_line_parses() {
        let line = format!("{LISTENING_PREFIX}127.0.0.1:4000 control http://127.0.0.1:4001");
        let (a, b) = parse_listening(&line).unwrap();
        assert_eq!((a.port(), b.port()), (4000, 4001));
        assert!(parse_listening("something else").is_none());
    }
}
