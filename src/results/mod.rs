//! The results schema: what `pushpull run` writes to `results.json`, versioned, shared by every
//! producer (measured runs today; predictions and merges later) so reports can lay them side by
//! side. Each mode carries its measured figures and, beside them, its theory.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::api::WebhookSnapshot;
use crate::event::Mode;
use crate::scenario::Scenario;

pub mod compare;
mod figure;
pub mod histogram;
mod merge;
mod prediction;
pub mod spread;

pub use crate::api::tcp::{TcpReading, TcpTraffic};
pub use figure::{Better, Figure};
pub use merge::{merge, pool};
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

/// Where the owed deliveries ended up: `on_time + late + dead_lettered + lost = expected`,
/// always (a run where they do not add up is an error, not a report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Deliveries owed: each event to each client following its topic.
    pub expected: u64,
    /// Arrived within `late_after`.
    pub on_time: u64,
    /// Arrived, later than `late_after`.
    pub late: u64,
    /// Did not arrive, and sit in the server's dead-letter list (replayable).
    pub dead_lettered: u64,
    /// Did not arrive, and nothing records them: lost.
    pub lost: u64,
    /// Arrivals of an event already had.
    pub duplicates: u64,
    /// Arrivals after a later event of the same topic.
    pub out_of_order: u64,
    /// Median latency of the late deliveries, ms.
    pub late_p50_ms: f64,
    /// 99th percentile latency of the late deliveries, ms.
    pub late_p99_ms: f64,
    /// Slowest late delivery, ms.
    pub late_max_ms: f64,
}

impl Outcomes {
    /// Deliveries that arrived.
    pub fn delivered(&self) -> u64 {
        self.on_time + self.late
    }

    /// Adds another run's outcomes (a merge). Counts add up exactly; the late percentiles
    /// become the larger of the two, an upper bound.
    pub fn absorb(&mut self, o: &Outcomes) {
        self.expected += o.expected;
        self.on_time += o.on_time;
        self.late += o.late;
        self.dead_lettered += o.dead_lettered;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.late_p50_ms = self.late_p50_ms.max(o.late_p50_ms);
        self.late_p99_ms = self.late_p99_ms.max(o.late_p99_ms);
        self.late_max_ms = self.late_max_ms.max(o.late_max_ms);
    }

    /// Whether the four outcomes add up to what was owed.
    pub fn adds_up(&self) -> bool {
        self.on_time + self.late + self.dead_lettered + self.lost == self.expected
    }
}

/// The accounting of the events scheduled during one fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// The fault, as the scenario gives it.
    pub fault: crate::scenario::Fault,
    /// `receiver_down 20% 2s–5s`.
    pub label: String,
    /// Clients it hit.
    pub clients_hit: u64,
    /// What became of the deliveries owed for events scheduled in the window (every client,
    /// hit or not).
    pub outcomes: Outcomes,
}

/// Latency of the events scheduled in one second of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyPoint {
    /// Start of the second, since the generator started.
    pub t_s: f64,
    /// Deliveries.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

/// Percentiles of a latency histogram, in milliseconds, and the histogram itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// The histogram (microseconds), HdrHistogram V2 encoding in base64, for merging runs.
    pub histogram: String,
}

impl LatencySummary {
    /// Samples a p99.9 (and the maximum, the tail's last word) needs before it is shown.
    pub const TAIL_SAMPLES: u64 = 1_000;

    /// Whether the sample is large enough to show the `q` quantile: at least `1 / (1 − q)`
    /// samples, so that some stand beyond it (100 for a p99, 1,000 for a p99.9).
    pub fn supports(&self, q: f64) -> bool {
        q <= 0.5 || self.count as f64 >= (1.0 / (1.0 - q)).round()
    }

    /// Summarizes a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1000.0;
        let q = |p: f64| {
            if h.is_empty() {
                0.0
            } else {
                ms(h.value_at_quantile(p))
            }
        };
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(h, &mut bytes)
            .expect("serializing to memory");
        LatencySummary {
            count: h.len(),
            mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
            histogram: B64.encode(bytes),
        }
    }

    /// Decodes the stored histogram.
    pub fn decode_histogram(&self) -> anyhow::Result<Histogram<u64>> {
        let bytes = B64.decode(&self.histogram)?;
        Ok(Deserializer::new().deserialize(&mut bytes.as_slice())?)
    }
}

/// Exact counts of what was expected and what arrived.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deliveries {
    /// Events the generator emitted after the warm-up.
    pub events_measured: u64,
    /// Deliveries owed: each measured event to each client following its topic.
    pub expected: u64,
    /// Deliveries that arrived (first arrivals only).
    pub delivered: u64,
    /// Never arrived by the end of the drain, and not in the dead-letter list either.
    pub lost: u64,
    /// Arrivals of an event a client already had.
    pub duplicates: u64,
    /// Arrivals after a later event of the same topic.
    pub out_of_order: u64,
    /// Events the server reported as gone (expired cursor) when a client asked for them.
    pub gap_events: u64,
    /// Times clients had to connect again.
    pub reconnects: u64,
    /// Stream connections the server closed because the client fell behind.
    pub slow_disconnects: u64,
    /// Events the server dropped from full send queues (`drop_oldest`).
    pub dropped_oldest: u64,
    /// Stream connections the server closed for a `stream_cut` fault.
    #[serde(default)]
    pub stream_cuts: u64,
    /// Webhook messages the server gave up on (its own count: warm-up events included, and
    /// messages whose late answer arrived after the sender stopped waiting).
    pub dead_letters: u64,
    /// Webhook requests the receivers refused (bad signature, stale timestamp, missing header).
    pub rejected: u64,
    /// Client requests or connections that failed.
    pub client_errors: u64,
    /// Largest delay between an event's scheduled and actual emission, ms.
    pub generator_max_lag_ms: f64,
    /// Clients that missed at least one delivery owed to them.
    pub subscribers_with_loss: u64,
    /// Measured events the server counted handing to the clients (webhooks: 2xx answers),
    /// on its own side of the wire: the independent count the clients' arrivals are checked
    /// against (0 in older results).
    #[serde(default)]
    pub handed_by_server: u64,
    /// The same accounting per topic (summed over the clients following it).
    pub by_topic: Vec<TopicDeliveries>,
}

/// Delivery accounting for one topic, over every client that follows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDeliveries {
    /// The topic.
    pub topic: u32,
    /// Clients following it.
    pub subscribers: u64,
    /// Measured events emitted on it.
    pub events: u64,
    /// `events × subscribers`.
    pub expected: u64,
    /// First arrivals.
    pub delivered: u64,
    /// Not arrived, in the dead-letter list.
    #[serde(default)]
    pub dead_lettered: u64,
    /// `expected − delivered − dead_lettered`.
    pub lost: u64,
    /// Arrivals of an event already had.
    pub duplicates: u64,
    /// Arrivals after a later event of the topic.
    pub out_of_order: u64,
}

/// What a mode cost the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerCost {
    /// Requests handled (a stream or WebSocket counts once, when opened).
    pub requests: u64,
    /// Requests per delivered event.
    pub requests_per_delivery: f64,
    /// Requests per second over the measured period.
    pub requests_per_second: f64,
    /// Requests by route, then by status.
    pub requests_by_route: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Responses that carried no event (empty pages, 304s, long polls that timed out).
    pub empty_responses: u64,
    /// `empty_responses / requests` (0 for pushed modes).
    pub empty_share: f64,
    /// Bytes the server read from its sockets.
    pub bytes_read: u64,
    /// Bytes the server wrote to its sockets.
    pub bytes_written: u64,
    /// (Read + written) / delivered events.
    pub bytes_per_delivery: f64,
    /// CPU seconds the server process used (from its nanosecond CPU clock), without the
    /// generator's timing spin.
    pub cpu_seconds: f64,
    /// CPU seconds per 1,000 delivered events.
    pub cpu_seconds_per_1k_deliveries: f64,
    /// CPU seconds the generator spent spinning toward its deadlines in the window: the
    /// instrument's, left out of `cpu_seconds`.
    #[serde(default)]
    pub generator_spin_cpu_seconds: f64,
    /// Peak resident memory of the server process (the kernel's VmHWM at the end of the
    /// drain), bytes.
    pub peak_rss_bytes: u64,
    /// Most client connections open at once.
    pub peak_connections: u64,
    /// Resident memory before any client connected, bytes.
    #[serde(default)]
    pub rss_baseline_bytes: u64,
    /// Resident memory at the end of the window, when every client holds what it holds
    /// (pollers their keep-alive connection, streams their subscription, receivers their
    /// pooled connections), bytes.
    #[serde(default)]
    pub rss_steady_bytes: u64,
    /// Bytes the event log held then (shared by all clients, so left out per client).
    #[serde(default)]
    pub log_bytes: u64,
    /// `(rss_steady − rss_baseline − log_bytes) / clients`, bytes: what one subscriber costs
    /// the server (each mode runs on a fresh server, so nothing is inherited).
    pub memory_per_client_bytes: f64,
    /// The webhook dispatcher's counters (zero for other modes), from the end of the warm-up
    /// to the end of the drain: every retry and dead letter, in the window or after it.
    pub webhook: WebhookSnapshot,
    /// What TCP itself counted on the server's connections over the measured window.
    #[serde(default)]
    pub tcp: TcpReading,
}

/// What the drain cost: from the end of the schedule until every owed delivery was in (or the
/// grace period ran out). No events are made in it, so its costs are not divided by any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrainCost {
    /// Deliveries of measured events that arrived during the drain.
    pub deliveries: u64,
    /// Requests the server handled or, for webhooks, made.
    pub requests: u64,
    /// Bytes read and written on the server's sockets.
    pub bytes: u64,
    /// Server CPU seconds (the generator's timing spin left out).
    pub server_cpu_seconds: f64,
    /// Driver CPU seconds.
    pub driver_cpu_seconds: f64,
}

/// What a mode cost the simulated clients, i.e. the driver process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientCost {
    /// Requests the clients made (webhooks: requests the receivers answered).
    pub requests: u64,
    /// CPU seconds the driver used.
    pub cpu_seconds: f64,
    /// The driver's CPU use as a share of one core.
    pub cpu_share_of_core: f64,
    /// The driver's peak resident memory, bytes.
    pub peak_rss_bytes: u64,
    /// True when the driver may have been the bottleneck.
    pub saturated: bool,
}

/// One sample of the time series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Which run of a merge the sample came from (0 for a single run).
    #[serde(default)]
    pub source: u32,
    /// Seconds since the generator started.
    pub t_s: f64,
    /// Measured deliveries so far.
    pub delivered: u64,
    /// Server requests so far.
    pub requests: u64,
    /// Server CPU seconds so far (since the mode began).
    pub server_cpu_seconds: f64,
    /// Server resident memory, bytes.
    pub server_rss_bytes: u64,
    /// Client connections open.
    pub open_connections: u64,
    /// Long polls being held.
    pub held_long_polls: u64,
    /// Webhook attempts under way.
    pub webhook_in_flight: u64,
    /// Webhook retries so far.
    #[serde(default)]
    pub webhook_retries: u64,
    /// Driver CPU seconds so far (since the mode began).
    pub driver_cpu_seconds: f64,
    /// The machine in the interval since the previous sample: what else was running.
    #[serde(default)]
    pub machine: MachineSample,
}

/// What the whole machine did over one sample's interval, from `/proc/stat` (in clock ticks,
/// 10 ms on most kernels) and `/proc/loadavg`: the noise a run's figures carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineSample {
    /// Seconds the interval spans.
    pub interval_s: f64,
    /// Cores available.
    pub cores: f64,
    /// CPU seconds every process on the machine used in it (all cores together).
    pub busy_seconds: f64,
    /// Of those, what neither the server nor the driver used (never below zero).
    pub others_seconds: f64,
    /// CPU seconds a hypervisor took from this machine (steal).
    pub steal_seconds: f64,
    /// The 1-minute load average at the sample.
    pub load_1m: f64,
    /// Driver CPU seconds in the interval.
    pub driver_seconds: f64,
}

impl MachineSample {
    /// Other processes at this share of the machine or more make a second's figures noisy.
    pub const NOISY_OTHERS: f64 = 0.2;

    /// Share of the whole machine (every core) other processes used.
    pub fn others_share(&self) -> f64 {
        if self.interval_s > 0.0 && self.cores > 0.0 {
            self.others_seconds / (self.interval_s * self.cores)
        } else {
            0.0
        }
    }

    /// Share of one core the driver used.
    pub fn driver_share(&self) -> f64 {
        if self.interval_s > 0.0 {
            self.driver_seconds / self.interval_s
        } else {
            0.0
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

    #[test]
    fn latency_summary_round_trips_its_histogram() {
        let mut h = crate::results::histogram::new_histogram();
        for us in [100, 200, 300, 400, 100_000] {
            h.record(us).unwrap();
        }
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 5);
        assert!((s.p50_ms - 0.3).abs() < 0.001, "{}", s.p50_ms);
        assert!((s.max_ms - 100.0).abs() < 0.1);
        let back = s.decode_histogram().unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
    }
}
