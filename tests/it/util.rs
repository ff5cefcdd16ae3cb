//! Helpers: tiny scenarios, running them, starting a server in-process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pushpull::api::ResetRequest;
use pushpull::driver::{self, RunOptions};
use pushpull::modes::Mode;
use pushpull::results::{ModeResult, Results};
use pushpull::scenario::Scenario;
use pushpull::server::{self, AppState};
use tokio_util::sync::CancellationToken;

/// The `pushpull` binary cargo built for these tests.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pushpull"))
}

/// A small, fast scenario of one mode; `extra` is appended TOML (tables) that may override
/// the defaults below by adding its own tables.
pub fn tiny(mode: &str, events: &str, extra: &str) -> Scenario {
    let events = if events.is_empty() {
        "rate = 50\ntopics = 2\npayload_bytes = 64"
    } else {
        events
    };
    let text = format!(
        "name = \"tiny\"\nseed = 7\nduration = \"1s\"\nwarmup = \"200ms\"\ndrain = \"3s\"\nmodes = [\"{mode}\"]\n\
         [events]\n{events}\n[clients]\ncount = 10\n{extra}\n"
    );
    Scenario::parse(Path::new("tiny.toml"), &text).unwrap_or_else(|e| panic!("test scenario invalid: {e}"))
}

/// Runs a scenario (every point of its sweep, if it has one) against a fresh server child.
pub async fn run(s: &Scenario) -> Results {
    let opts = RunOptions {
        target: driver::Target::Spawn(exe()),
        progress: false,
        bars: None,
    };
    let results = if s.sweep.is_some() {
        driver::run_sweep(s, &opts).await
    } else {
        driver::run(s, &opts).await
    }
    .expect("run succeeds");
    for m in results
        .modes
        .iter()
        .chain(results.points.iter().flat_map(|p| &p.modes))
    {
        assert_accounting_adds_up(m);
    }
    results
}

/// The loss-accounting identity, whole run and every fault window: on time + late +
/// dead-lettered + lost = expected, where expected is what the driver owed from the
/// generator's counts (the outcomes count it again from the clients' topics).
pub fn assert_accounting_adds_up(m: &ModeResult) {
    let (o, d) = (&m.outcomes, &m.deliveries);
    assert!(o.adds_up(), "{}: outcomes do not add up: {o:?}", m.mode);
    assert_eq!(o.expected, d.expected, "{}: {o:?} vs {d:?}", m.mode);
    for w in &m.fault_windows {
        assert!(w.outcomes.adds_up(), "{}: {}: {:?}", m.mode, w.label, w.outcomes);
    }
}

/// Runs a one-mode scenario and returns that mode's result.
pub async fn run_one(s: &Scenario) -> ModeResult {
    let mut results = run(s).await;
    assert_eq!(results.modes.len(), 1);
    results.modes.remove(0)
}

/// Every owed delivery arrived once, and the histogram holds exactly one sample for each.
pub fn assert_all_delivered(m: &ModeResult) {
    let d = &m.deliveries;
    assert!(d.expected > 0, "{}: nothing was expected: {d:?}", m.mode);
    assert_eq!(d.delivered, d.expected, "{}: {d:?}", m.mode);
    assert_eq!(d.lost, 0, "{}: {d:?}", m.mode);
    assert_eq!(
        d.delivered + d.lost,
        d.expected,
        "{}: accounting does not add up: {d:?}",
        m.mode
    );
    assert_eq!(m.latency.count, d.delivered, "{}: histogram samples", m.mode);
    assert_eq!(
        m.latency_from_emission.count, d.delivered,
        "{}: histogram samples",
        m.mode
    );
    assert_eq!(d.client_errors, 0, "{}: {d:?}", m.mode);
    assert_eq!(d.subscribers_with_loss, 0, "{}: {d:?}", m.mode);
    assert_topics_add_up(m);
}

/// The per-topic accounting sums to the totals.
pub fn assert_topics_add_up(m: &ModeResult) {
    let d = &m.deliveries;
    let sum = |f: fn(&pushpull::results::TopicDeliveries) -> u64| d.by_topic.iter().map(f).sum::<u64>();
    assert_eq!(sum(|t| t.expected), d.expected, "{}: per-topic expected", m.mode);
    assert_eq!(
        sum(|t| t.delivered),
        d.delivered,
        "{}: per-topic delivered",
        m.mode
    );
    assert_eq!(sum(|t| t.lost), d.lost, "{}: per-topic lost", m.mode);
    assert_eq!(
        sum(|t| t.duplicates),
        d.duplicates,
        "{}: per-topic duplicates",
        m.mode
    );
    assert_eq!(
        sum(|t| t.out_of_order),
        d.out_of_order,
        "{}: per-topic reordering",
        m.mode
    );
}

/// An in-process server on 127.0.0.1:0, stopped when the returned guard drops.
pub struct TestServer {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Where the control API listens.
    pub control: SocketAddr,
    pub state: AppState,
    pub http: reqwest::Client,
    stop: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(server::Limits::default()).await
    }

    pub async fn start_with(limits: server::Limits) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let control = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let control_addr = control.local_addr().unwrap();
        let control = server::Control::new(control, None).unwrap();
        let state = AppState::with_limits(Default::default(), limits);
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(server::serve(listener, control, state.clone(), shutdown));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        TestServer {
            addr,
            control: control_addr,
            state,
            http,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `path` on the control listener.
    pub fn control_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.control)
    }

    /// Configures a run of `mode`.
    pub async fn reset(&self, scenario: &Scenario, mode: Mode) {
        let req = ResetRequest {
            scenario: scenario.to_toml(),
            mode,
        };
        let res = self
            .http
            .post(self.control_url("/control/reset"))
            .json(&req)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    }
}
