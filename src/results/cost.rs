//! What a mode cost: the server (requests, bytes, CPU, memory, connections, TCP), the drain
//! after the schedule, the simulated clients (the driver process), and the once-a-second
//! samples of all of it with the machine's own noise.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::{TcpReading, WebhookSnapshot};

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
    /// For a simulated run: `cpu_seconds` as loadings on the uncertainty of the calibration's
    /// costs, s, one entry per independent part of it (the model's count of each operation
    /// times a Cholesky factor of the fitted costs' covariance): the figure's standard error
    /// from the calibration is their norm, and that of the difference between two modes
    /// priced by one calibration is the norm of their loadings' difference (the errors the
    /// modes share cancel). Empty for a measured run, and where the calibration had no
    /// covariance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_calibration_loadings: Vec<f64>,
    /// CPU seconds the generator spent spinning toward its deadlines in the window: the
    /// instrument's, left out of `cpu_seconds`.
    #[serde(default)]
    pub generator_spin_cpu_seconds: f64,
    /// CPU seconds the TCP census spent reading the connections' counters in the window (its
    /// read at the window's start): the instrument's, left out of `cpu_seconds` (none in
    /// results written before it was, whose `cpu_seconds` hold it).
    #[serde(default)]
    pub census_cpu_seconds: f64,
    /// Peak resident memory of the server process (the kernel's VmHWM at the end of the
    /// drain), bytes.
    pub peak_rss_bytes: u64,
    /// Most client connections open at once.
    pub peak_connections: u64,
    /// Client connections the server answered 503 and closed because it held its most
    /// (`[server] max_connections`), from the end of the warm-up to the end of the drain.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub connections_refused: u64,
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
    /// the server. `run` gives each mode a fresh server, so nothing is inherited; under
    /// `drive` the modes share one server, and only the first mode's figure is exact.
    pub memory_per_client_bytes: f64,
    /// The webhook dispatcher's counters (zero for other modes), from the end of the warm-up
    /// to the end of the drain: every retry and dead letter, in the window or after it.
    pub webhook: WebhookSnapshot,
    /// What TCP itself counted on the server's connections over the measured window.
    #[serde(default)]
    pub tcp: TcpReading,
    /// The first deliveries that arrived inside the measured window, whatever event they
    /// were of (the warm-up's too): what the window's requests, bytes and CPU were spent on,
    /// and so what the ratios divide by. A sender that fell behind delivers in the window
    /// fewer than its events owe, and the rest in the drain, whose costs are counted apart.
    /// `None` in results written before it was recorded, whose ratios divide by the
    /// deliveries of the window's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries_in_window: Option<u64>,
    /// Heartbeats the server wrote to streams left quiet for their interval (SSE comments,
    /// WebSocket pings) over the measured window: each a write, a timer's wake-up and a
    /// segment or two that no event accounts for. `None` for modes without streams, and in
    /// results written before they were counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeats: Option<u64>,
    /// How often the server's threads ran out of work, blocked and were woken again over the
    /// measured window (their voluntary context switches): the wake-ups its idle moments
    /// cost. `None` where it was not measured: the model's results and those written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voluntary_switches: Option<u64>,
    /// How often, over the measured window, the scheduler took a core from the server's
    /// threads while they could still run (involuntary context switches): the preemptions
    /// that other processes on its machine cost it. `None` as above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub involuntary_switches: Option<u64>,
}

impl ServerCost {
    /// The cost with its ratios worked out from its counts: requests, bytes and CPU per
    /// delivery (over `deliveries`, those the window's costs were spent on; at least one),
    /// and the share of responses that carried no event.
    pub fn with_ratios(self, deliveries: u64) -> ServerCost {
        let per = deliveries.max(1) as f64;
        ServerCost {
            requests_per_delivery: self.requests as f64 / per,
            empty_share: if self.requests > 0 {
                self.empty_responses as f64 / self.requests as f64
            } else {
                0.0
            },
            bytes_per_delivery: (self.bytes_read + self.bytes_written) as f64 / per,
            cpu_seconds_per_1k_deliveries: self.cpu_seconds / per * 1000.0,
            ..self
        }
    }
}

impl ServerCost {
    /// `cpu_calibration_loadings` per 1,000 deliveries (those `cpu_seconds_per_1k_deliveries`
    /// divides by), ms; None without them.
    fn calibration_loadings_per_1k(&self) -> Option<Vec<f64>> {
        let per_second = self.cpu_seconds_per_1k_deliveries / self.cpu_seconds;
        (!self.cpu_calibration_loadings.is_empty() && per_second.is_finite()).then(|| {
            self.cpu_calibration_loadings
                .iter()
                .map(|l| l * per_second * 1000.0)
                .collect()
        })
    }

    /// One standard error of CPU per 1,000 deliveries from the calibration's costs, ms: how
    /// far the costs it was priced at leave a simulated figure (None for a measured run, or
    /// a calibration without their covariance).
    pub fn cpu_calibration_error_ms_per_1k(&self) -> Option<f64> {
        self.calibration_loadings_per_1k()
            .map(|l| l.iter().map(|x| x * x).sum::<f64>().sqrt())
    }
}

/// One standard error, from the calibration's costs, of the difference between two modes'
/// CPU per 1,000 deliveries priced by one calibration, ms: smaller than their errors added
/// in quadrature where they share operations (the process's second, the clients held, the
/// events published), whose errors cancel. None unless both carry loadings of one shape.
pub fn cpu_calibration_error_of_difference(a: &ServerCost, b: &ServerCost) -> Option<f64> {
    let (x, y) = (a.calibration_loadings_per_1k()?, b.calibration_loadings_per_1k()?);
    (x.len() == y.len()).then(|| x.iter().zip(&y).map(|(p, q)| (p - q).powi(2)).sum::<f64>().sqrt())
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
    /// Webhook attempts so far (first tries and retries).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub webhook_attempts: u64,
    /// Webhook deliveries waiting for a worker now (the queue and the endpoints' lanes): the
    /// sender's backlog.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub webhook_queued: u64,
    /// Driver CPU seconds so far (since the mode began).
    pub driver_cpu_seconds: f64,
    /// The machine in the interval since the previous sample: what else was running.
    #[serde(default)]
    pub machine: MachineSample,
}

impl Sample {
    /// `timeseries` split by source (each repetition, or each run of a merge, on its own
    /// clock), in source order.
    pub fn by_source(timeseries: &[Sample]) -> Vec<Vec<&Sample>> {
        let mut sources: Vec<u32> = timeseries.iter().map(|s| s.source).collect();
        sources.sort_unstable();
        sources.dedup();
        sources
            .into_iter()
            .map(|source| timeseries.iter().filter(|s| s.source == source).collect())
            .collect()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
