//! The results schema: what `pushpull run` writes to `results.json`, versioned, shared by every
//! producer (measured runs today; predictions and merges later) so reports can lay them side by
//! side. Each mode carries its measured figures and, beside them, its theory.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::Mode;
use crate::scenario::Scenario;

pub mod compare;
mod cost;
mod figure;
mod finite_or_null;
pub mod histogram;
mod latency;
mod merge;
mod outcomes;
mod prediction;
pub mod spread;
pub mod throughput;
pub mod validation;

pub use crate::api::tcp::{TcpReading, TcpTraffic};
pub use cost::{
    cpu_calibration_error_of_difference, ClientCost, DrainCost, MachineSample, Sample, ServerCost,
};
pub use figure::{Better, Figure};
pub use latency::{LatencyPoint, LatencySummary};
pub use merge::{merge, pool};
pub use outcomes::{missing_warnings, refused_warning, Deliveries, FaultWindow, Outcomes, TopicDeliveries};
pub use prediction::{Given, Prediction};
pub use spread::{FigureSpread, Interval};

/// Bumped whenever a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// The scenario as run, every default resolved and every command-line override applied.
    pub scenario: Scenario,
    /// Where and when it ran.
    pub environment: Environment,
    /// One entry per mode, in the order run.
    pub modes: Vec<ModeResult>,
    /// For a merge of several runs: each source's environment, in the order merged (the
    /// `source` of a time-series sample indexes this list). Empty for a single run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Environment>,
    /// For a sweep: one entry per point, each with its own modes (`modes` above is then empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<SweepPoint>,
    /// Present when the figures come from `pushpull simulate`, not from measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated: Option<Simulated>,
}

/// How a simulated run was modelled, and which figures the model does not give.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Simulated {
    /// The network's round trip the model used, ms.
    pub round_trip_ms: f64,
    /// How far the model let a round trip stray either way, ms.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub jitter_ms: f64,
    /// The bandwidth each message was sent at, Mbit/s (None: no time per byte).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbps: Option<f64>,
    /// Headline figures the model does not produce (the results hold zero for them, and
    /// reports leave them out).
    pub not_modelled: Vec<Figure>,
    /// The model's server: its cores and where its costs per operation were measured (None
    /// in results of a model that had no server costs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ModelServer>,
    /// With `[server] p99_target`: for each mode, the cores that keep it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity: Vec<Capacity>,
}

/// The server a mode needs to keep the scenario's p99 target, found by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// The mode.
    pub mode: Mode,
    /// The target, ms.
    pub p99_target_ms: f64,
    /// The fewest cores whose p99 is within the target with nothing lost; None
    /// when not even the most cores searched (`most_cores`) do it.
    pub cores: Option<u32>,
    /// The most cores the search would try.
    pub most_cores: u32,
    /// p99 at `cores` (or at `most_cores` when none did), ms.
    pub p99_ms: f64,
    /// The clients' memory on the server at the calibration's rates, bytes.
    pub memory_bytes: f64,
    /// Models run to find it.
    pub probes: u32,
    /// Deliveries lost at `most_cores` when none kept the target: what no core count mends
    /// (clients the server turns away, a fault's losses).
    #[serde(default, skip_serializing_if = "is_zero_count")]
    pub lost: u64,
    /// The fewest cores again with the mode's CPU one standard error of the calibration's
    /// costs cheaper and dearer; absent when no count kept the target, or the calibration
    /// carries no error (or the results were written before it was searched for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_error: Option<CoresWithinError>,
}

/// A capacity's cores within the calibration's error: the search run again with every cost
/// scaled alike, so that the mode's CPU moves by one standard error of it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CoresWithinError {
    /// The standard error, relative to the mode's CPU where its cores were found.
    pub cpu_error: f64,
    /// The fewest cores with every cost that much cheaper.
    pub cheaper: Option<u32>,
    /// The fewest with every cost that much dearer; None when not even the most do.
    pub dearer: Option<u32>,
}

fn is_zero_count(n: &u64) -> bool {
    *n == 0
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// The server a simulation modelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelServer {
    /// Cores serving the operations.
    pub cores: u32,
    /// The machine the costs were calibrated on: host, CPU model and cores.
    pub calibrated_on: String,
    /// When the calibration was measured (RFC 3339).
    pub calibrated_at: String,
    /// Whether that machine is the one the simulation ran on (same host and CPU model).
    pub same_machine: bool,
    /// Whether the clients were modelled on the server's machine, their own CPU served on
    /// its cores, as `run` has them (`simulate --clients-beside-server`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clients_beside: bool,
    /// How long a core idle takes to fall asleep on average, ns, so that a job finding it idle
    /// for t paid 1 − e^(−t / this) of a wake-up (the calibration's; none in older results,
    /// whose `wake_after_idle_ns` was a threshold instead and is not read).
    #[serde(default, skip_serializing_if = "is_zero_count")]
    pub falls_asleep_ns: u64,
    /// The times the calibration's runs fit alike, that one among them, ns (none in older
    /// results).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub falls_asleep_alike_ns: Vec<u64>,
    /// The clients held from which a request or a push paid all of the calibration's cost of crowding
    /// (`calibration::Op::Crowded`), fewer their share; 0 where it had none (and in older
    /// results).
    #[serde(default, skip_serializing_if = "is_zero_count")]
    pub crowded_at: u64,
    /// The calibration's cost of that crowding, ns: what a request or a push among `crowded_at`
    /// clients or more paid beyond its own (none in older results).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub crowded_ns: f64,
}

/// Idle thresholds in words, joined by `and` or `or` ("2, 3, 5 and 10 ms"); none for none.
pub fn thresholds_in_words(ns: &[u64], join: &str) -> Option<String> {
    let ms: Vec<String> = ns.iter().map(|&n| format!("{}", n as f64 / 1e6)).collect();
    match ms.as_slice() {
        [] => None,
        [one] => Some(format!("{one} ms")),
        [head @ .., last] => Some(format!("{} {join} {last} ms", head.join(", "))),
    }
}

impl Results {
    /// Whether `f` means something in these results: always for a measured run; for a
    /// simulated one, unless the model does not produce it.
    pub fn has(&self, f: Figure) -> bool {
        self.simulated
            .as_ref()
            .is_none_or(|s| !s.not_modelled.contains(&f))
    }
}

/// One point of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// `poll.interval=1s, clients.count=100`.
    pub label: String,
    /// The swept values, in the scenario's order.
    pub values: Vec<SweptValue>,
    /// The scenario of this point.
    pub scenario: Scenario,
    /// Its results, one per mode.
    pub modes: Vec<ModeResult>,
}

/// One swept parameter's value at a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweptValue {
    /// Dotted path, e.g. `poll.interval`.
    pub path: String,
    /// As written, e.g. `1s`.
    pub value: String,
    /// As a number for charts: durations in ms, numbers as they are.
    pub number: Option<f64>,
}

impl Results {
    /// One point of a sweep as a plain run's results, so tables and charts of a run apply.
    pub fn point_view(&self, point: &SweepPoint) -> Results {
        Results {
            schema_version: self.schema_version,
            scenario: point.scenario.clone(),
            environment: self.environment.clone(),
            modes: point.modes.clone(),
            sources: Vec::new(),
            points: Vec::new(),
            simulated: self.simulated.clone(),
        }
    }
}

/// The machine and software a run happened on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Host name.
    pub hostname: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Cores available to the processes.
    pub cores: usize,
    /// Memory of the machine, bytes.
    pub memory_bytes: u64,
    /// Memory available for new work when the run started (MemAvailable), bytes (0 in older
    /// results).
    #[serde(default)]
    pub memory_available_bytes: u64,
    /// Open files one process may hold (RLIMIT_NOFILE, soft), which bounds its connections;
    /// None when unlimited or unknown.
    #[serde(default)]
    pub open_files_limit: Option<u64>,
    /// Operating system and kernel.
    pub os: String,
    /// pushpull's version.
    pub pushpull_version: String,
    /// The git commit of the working directory, when it is a checkout.
    pub git_commit: Option<String>,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// How latency timestamps were taken.
    pub clock: String,
    /// How CPU time was read, with the clock's resolution (empty in results written before
    /// it was recorded, when CPU came in 10 ms ticks).
    #[serde(default)]
    pub cpu_clock: String,
    /// For a remote server: its clock minus the driver's, ns, as last estimated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_ns: Option<i64>,
    /// How far the offset estimate may be off (half the fastest round trip), ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_uncertainty_ns: Option<u64>,
}

/// One mode's measured figures and its theory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeResult {
    /// The mode.
    pub mode: Mode,
    /// What theory predicted.
    pub theory: Prediction,
    /// Receive time − scheduled time, over measured first deliveries (only those that
    /// arrived: see [`ModeResult::covered`] and [`ModeResult::owed_latency_ms`]).
    pub latency: LatencySummary,
    /// Receive time − actual emission time: the same without generator lag.
    pub latency_from_emission: LatencySummary,
    /// Exact delivery accounting.
    pub deliveries: Deliveries,
    /// How well the generator kept its schedule over the measured events (emitted −
    /// scheduled); zero in results written before it was recorded.
    #[serde(default)]
    pub generator: crate::clock::Lateness,
    /// For pollers on a fixed schedule: how late each poll left against its slot (zero for
    /// other modes and in older results).
    #[serde(default)]
    pub poll_sends: crate::clock::Lateness,
    /// What it cost the server over the measured window: from the end of the warm-up to the
    /// end of the schedule, the period that produced the events its costs are divided by.
    pub server: ServerCost,
    /// What it cost the simulated clients (the driver).
    pub client: ClientCost,
    /// Where every owed delivery ended up (zero in results written before it existed).
    #[serde(default)]
    pub outcomes: Outcomes,
    /// A delivery slower than this counted as late, ms.
    #[serde(default)]
    pub late_after_ms: f64,
    /// The same accounting for the events scheduled in each fault window that applies to
    /// this mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fault_windows: Vec<FaultWindow>,
    /// Latency percentiles by the second the events were scheduled in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_over_time: Vec<LatencyPoint>,
    /// Sampled once a second from start to the end of the drain.
    pub timeseries: Vec<Sample>,
    /// Seconds from the end of the warm-up to the end of the schedule, read by the server's
    /// generator at both ends: the span every cost and rate covers.
    pub measured_seconds: f64,
    /// First deliveries of the measured events per second of `measured_seconds`.
    pub deliveries_per_second: f64,
    /// Seconds the drain took.
    pub drain_seconds: f64,
    /// What the drain cost, apart from the measured window (zero in older results).
    #[serde(default)]
    pub drain: DrainCost,
    /// Anything that makes these numbers less trustworthy, in words.
    pub warnings: Vec<String>,
    /// With `repeat` > 1: every repetition, in the order run; this result then pools them
    /// (histograms added, counts summed, rates over the summed time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repetitions: Vec<ModeResult>,
    /// With `repeat` > 1: each headline figure's median and spread over the repetitions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spread: BTreeMap<Figure, FigureSpread>,
}

impl ModeResult {
    /// The deliveries the window's costs divide by: those that arrived inside it, or, in
    /// results written before they were recorded, the window's events' (see
    /// [`ServerCost::deliveries_in_window`]).
    pub fn window_deliveries(&self) -> u64 {
        self.server
            .deliveries_in_window
            .unwrap_or(self.deliveries.delivered)
    }

    /// Share of the owed deliveries that arrived: what the delivered-only percentiles of
    /// `latency` cover.
    pub fn covered(&self) -> f64 {
        if self.deliveries.expected == 0 {
            1.0
        } else {
            self.deliveries.delivered as f64 / self.deliveries.expected as f64
        }
    }

    /// The `q` quantile of latency over every owed delivery, ms, counting those that never
    /// arrived as slower than anything that did (as wrk2 counts timeouts): None when the
    /// quantile falls among the undelivered, i.e. beyond the end of the drain.
    pub fn owed_latency_ms(&self, q: f64) -> Option<f64> {
        let delivered = self.deliveries.delivered;
        let owed = self.deliveries.expected.max(delivered);
        if delivered == owed {
            return Some(self.latency_at(q));
        }
        let rank = q * owed as f64;
        (rank <= delivered as f64).then(|| self.latency_at(rank / delivered as f64))
    }

    fn latency_at(&self, q: f64) -> f64 {
        match self.latency.decode_histogram() {
            Ok(h) if !h.is_empty() => h.value_at_quantile(q) as f64 / 1000.0,
            _ => match q {
                q if q <= 0.5 => self.latency.p50_ms,
                q if q <= 0.9 => self.latency.p90_ms,
                _ => self.latency.p99_ms,
            },
        }
    }
}

/// A run of every mode, once, to bend in tests: a quickstart run kept in `tests/fixtures/`
/// (not the gallery's, which may be repeated and changes with every regeneration).
#[cfg(test)]
pub(crate) fn one_run_fixture() -> Results {
    serde_json::from_str(include_str!("../../tests/fixtures/quickstart-one-run.json"))
        .expect("the fixture parses")
}

impl Results {
    /// Reads a results file, refusing versions this build does not understand.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Results> {
        use anyhow::Context as _;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
        let version = value.get("schema_version").and_then(|v| v.as_u64()).unwrap_or(0);
        anyhow::ensure!(
            version == u64::from(SCHEMA_VERSION),
            "{} has schema version {version}; this pushpull reads version {SCHEMA_VERSION}",
            path.display()
        );
        serde_json::from_value(value)
            .with_context(|| format!("{} does not match the results schema", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owed_percentiles_count_the_undelivered_as_slowest() {
        let mut h = crate::results::histogram::new_histogram();
        for us in 1..=90 {
            h.record(us * 1000).unwrap();
        }
        let mut m = one_run_fixture().modes[0].clone();
        m.latency = LatencySummary::from_histogram(&h);
        m.deliveries.delivered = 90;
        m.deliveries.expected = 100;
        assert!((m.covered() - 0.9).abs() < 1e-12);
        // 50 of 100 owed is the 50th of 90 arrived: 50 ms. 99 of 100 never arrived.
        assert!(
            (m.owed_latency_ms(0.5).unwrap() - 50.0).abs() < 0.1,
            "{:?}",
            m.owed_latency_ms(0.5)
        );
        assert_eq!(m.owed_latency_ms(0.99), None);
        m.deliveries.delivered = 100;
        m.deliveries.expected = 100;
        assert!(m.owed_latency_ms(0.99).is_some());
    }
}
