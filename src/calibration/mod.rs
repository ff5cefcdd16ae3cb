//! What the server's work costs, per operation, fitted from measured runs: the CPU of an
//! empty poll, a page, an event in a page, a 304, a long poll, an event written to a stream,
//! a signed webhook delivery, a connection opened, an event published and a second of the
//! process running, a wake-up; the memory a connection holds per mode; the bytes each request and delivery
//! puts on the wire. The simulator charges these to what its model does.
//!
//! `pushpull calibrate` runs [`SCENARIO`] (short runs whose operation counts differ from one
//! point to the next) and fits CPU on the operation counts by the utilization law (CPU =
//! Σ operations × cost each), with least squares that keeps every cost at zero or above,
//! each run weighted by its own CPU so that small and large runs count alike. A calibration
//! measured on the reference machine ships as [`Calibration::reference`].

mod census;
mod clients;
pub mod fit;
mod ops;
mod packets;
mod per_mode;
mod rounds;
mod runs;
mod uncertainty;

pub use clients::{ClientCpu, Handoff, Latency, HANDOFF_NS_PER_CLIENT};
pub use ops::{asleep, crowding, Counts, Op};
pub use packets::PacketCost;
pub use per_mode::{ByteCost, Held, MemoryCost, BUSY_AT};
use runs::{for_memory_alone, measured_runs, without_cpu_alone};
pub use runs::{
    CPU_SCENARIOS, FAILURES_SCENARIO, FAILURES_SCENARIO_NAME, MEMORY_SCENARIO, MEMORY_SCENARIOS,
    MEMORY_SCENARIO_NAME, PAGES_SCENARIO, PAGES_SCENARIO_NAME, ROUND_TRIP_SCENARIO, ROUND_TRIP_SCENARIO_NAME,
    SCENARIO,
};
use std::collections::BTreeMap;
use std::path::Path;
pub use uncertainty::cholesky;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::event::Mode;
use crate::results::{Environment, ModeResult, Results};
use crate::scenario::Scenario;

/// The calibration measured on the reference machine, shipped with pushpull: fitted from
/// `pushpull calibrate` run there three times within an hour (2026-12-07 from 06:01, 06:22
/// and 07:00 UTC, a 2-core AMD EPYC, the machine most of the validation pages were measured
/// on; the calibration runs, the webhook memory runs, the page runs, the failing receivers'
/// runs and the runs over a round trip of each), kept in `reference-runs/` (`pushpull
/// calibrate` with `--from` each of its fifteen files gives it again). The one it replaced
/// (the same machine's, three hours earlier) had no run over a round trip, and so no price for
/// a reply from afar.
const REFERENCE: &str = include_str!("reference.json");

/// Version of the calibration file's layout.
pub const SCHEMA_VERSION: u32 = 3;

/// The wake-ups the model charges a measured run's jobs that reach an idle core, for the run's
/// scenario and mode at a calibration's costs, each job the share of one that its core had
/// fallen asleep ([`asleep`]): the counts of [`Op::Wake`] and [`Op::RequestWake`], and of the
/// replies from afar that found a core idle ([`Op::ReplyWake`]), which the simulator gives
/// (the calibration does not depend on it).
pub type Wakes<'a> = &'a (dyn Fn(&Scenario, &ModeResult, &Calibration) -> [f64; 3] + Sync);

/// At most this many rounds of counting the wake-ups and fitting again.
const WAKE_ROUNDS: usize = 6;

/// The mean times a fit tries for a core idle to fall asleep, ns: a worker thread (and its
/// core) idle for a moment is likely still awake, and the longer the idle the likelier it has
/// parked and its core gone to sleep, so that the next job pays to wake them
/// ([`asleep`]). The first, none, has every idle core asleep.
pub const FALLS_ASLEEP_NS: [u64; 9] = [
    0, 250_000, 500_000, 1_000_000, 2_000_000, 3_000_000, 5_000_000, 10_000_000, 20_000_000,
];

/// The clients held past which a request or a push pays all of its crowding ([`Op::Crowded`])
/// that a fit tries, the first none: what a request or a push costs beyond its own grows with
/// the clients held up to one of these and stays the same past it.
pub const CROWDED_AT: [u32; 8] = [0, 500, 1_000, 2_000, 3_000, 5_000, 10_000, 15_000];

/// The rounds stop once no run's wake-ups moved by more than this share.
const WAKES_SETTLED: f64 = 0.01;

/// One operation's CPU cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// The operation.
    pub op: Op,
    /// CPU per operation, ns.
    pub cpu_ns: f64,
    /// The fit's standard error of it, ns.
    pub std_error_ns: f64,
}

/// One measured run the costs were fitted from, with what the fit says it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The sweep point's label.
    pub point: String,
    /// The mode.
    pub mode: Mode,
    /// The operations it carried out.
    pub counts: BTreeMap<Op, f64>,
    /// The server's CPU over the measured window, s.
    pub cpu_seconds: f64,
    /// Σ counts × fitted costs, s.
    pub fitted_cpu_seconds: f64,
}

/// The server's costs on one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// [`SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// The machine it was measured on.
    pub environment: Environment,
    /// CPU per operation.
    pub cpu: Vec<Cost>,
    /// The costs' covariance as the fit leaves them, ns², row and column `i` those of
    /// `cpu[i]` (its diagonal the squares of their standard errors): what the CPU the model
    /// charges at these costs is uncertain by (`cpu_loadings`). None in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_covariance: Vec<Vec<f64>>,
    /// Memory per mode.
    pub memory: Vec<MemoryCost>,
    /// Bytes per mode.
    pub bytes: Vec<ByteCost>,
    /// TCP segments per mode, fitted on the runs whose TCP counters were read (none in files
    /// written before they were fitted: the model then leaves packets out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packets: Vec<PacketCost>,
    /// How long a core idle takes to fall asleep on average, ns: a job that finds its core
    /// idle for t pays 1 − e^(−t / this) of a wake-up ([`Op::Wake`], [`Op::RequestWake`]),
    /// the chance that the core fell asleep meanwhile ([`asleep`]), and a
    /// job that finds it busy none. Fitted: of [`FALLS_ASLEEP_NS`], the one whose fit leaves
    /// the least error over the runs.
    pub falls_asleep_ns: u64,
    /// The times of [`FALLS_ASLEEP_NS`] whose fits the runs do not tell from the chosen
    /// one's (their errors within noise of its; the chosen one among them), ns: a sparse
    /// load's wake-ups, and so its CPU, rest on a choice the runs leave open among these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub falls_asleep_alike_ns: Vec<u64>,
    /// The clients held past which a request or a push pays all of [`Op::Crowded`]'s cost, fewer paying
    /// their share of it ([`crowding`]). Fitted: of [`CROWDED_AT`], the one whose fit leaves
    /// the least error over the runs; 0, no such cost, in files written before it was fitted.
    #[serde(default)]
    pub crowded_at: u32,
    /// The crowdings of [`CROWDED_AT`] whose fits the runs do not tell from the chosen one's
    /// (the chosen one among them). None in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crowded_at_alike: Vec<u32>,
    /// The longest round trip its runs measured, ns (none in older files): whether a worker
    /// parks for a reply and pays to be woken by it was fitted over round trips up to this, and
    /// the model charges a reply awaited longer as though it had come then
    /// (`simulate::Server::replied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_round_trip_ns: Option<u64>,
    /// Whether its runs had replies from afar (those of [`ROUND_TRIP_SCENARIO`]) and so price
    /// the wake-up of one ([`Op::ReplyWake`]); without, the model charges a reply later than
    /// its runs waited as though it came at their longest wait (none in older files).
    #[serde(default)]
    pub prices_replies_from_afar: bool,
    /// What the clients of `run` cost the machine they share with the server, fitted on the
    /// driver's CPU of the same runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientCpu>,
    /// How long each delivery waits for its reader beyond their CPU when the clients share
    /// the server's machine, fitted on the same runs' latency (none in older files).
    #[serde(default)]
    pub clients_handoff: Handoff,
    /// The measured runs, each with its fitted CPU.
    pub runs: Vec<Run>,
    /// What makes these costs less trustworthy, in words (none in older files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Calibration {
    /// The calibration shipped with pushpull, measured on the reference machine.
    pub fn reference() -> Calibration {
        serde_json::from_str(REFERENCE).expect("the shipped calibration parses")
    }

    /// A calibration file written by `pushpull calibrate`.
    pub fn load(path: &Path) -> anyhow::Result<Calibration> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let not_one = || format!("{} is not a calibration file", path.display());
        // The version first (of a file with costs in it): an older layout would not read as
        // this one.
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
            #[allow(dead_code)]
            cpu: serde::de::IgnoredAny,
        }
        let v: Version = serde_json::from_str(&text).with_context(not_one)?;
        anyhow::ensure!(
            v.schema_version == SCHEMA_VERSION,
            "{} has calibration schema {}, this pushpull reads {SCHEMA_VERSION}: run `pushpull calibrate` again",
            path.display(),
            v.schema_version
        );
        serde_json::from_str(&text).with_context(not_one)
    }

    /// Fits the costs from the calibration scenario's measured results (every point and mode).
    ///
    /// The clients' CPU is fitted first, on the driver's alone. Every count but the wake-ups
    /// is read off the measurement, and a page's cost is kept at an empty poll's or above
    /// (`pages_above_empty`). The wake-ups are the model's (`wakes`: how many of a run's jobs
    /// reached an idle core, for the run's scenario and mode, at the costs of a calibration
    /// that carries the clients' CPU, since the runs had their clients beside the server),
    /// and depend on the costs, since a dearer job keeps its core busy longer: so the costs
    /// are fitted without them, the wake-ups counted at those costs, the costs fitted again
    /// with them, until the counts settle. That is done for each time a core idle takes to
    /// fall asleep of [`FALLS_ASLEEP_NS`], and the fit with the least
    /// [`Calibration::fit_error`] kept; then, at that time, for each crowding of
    /// [`CROWDED_AT`] ([`Op::Crowded`]), and the least kept; then, at that crowding, for each
    /// time again.
    /// Then the clients' handoff ([`Handoff`]) is fitted on the push modes' latency as
    /// `latency` models it.
    ///
    /// Runs of [`MEMORY_SCENARIOS`] among them go into memory only, and runs of
    /// [`CPU_SCENARIOS`] into the CPU only.
    pub fn fit(results: &Results, wakes: Wakes, latency: Latency) -> anyhow::Result<Calibration> {
        let everything = without_cpu_alone(results);
        let mut for_cpu = results.clone();
        for_cpu.points.retain(|p| !for_memory_alone(&p.scenario.name));
        if for_memory_alone(&for_cpu.scenario.name) {
            for_cpu.modes.clear();
        }
        let results = &without_cpu_alone(&for_cpu);
        let clients = ClientCpu::fit_each_mode(results);
        // Each fit is single-threaded and apart from the others: they go on the cores side by side.
        let at_each_idle = |crowded_at: u32| {
            crate::environment::in_parallel(&FALLS_ASLEEP_NS, |&idle| {
                Calibration::fit_waking_after(&for_cpu, wakes, idle, crowded_at, &clients)
            })
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()
        };
        // The time to fall asleep without crowding first, then the crowding at that time, then
        // the time again at that crowding.
        let uncrowded = at_each_idle(0)?;
        let idle = least_of(&uncrowded).falls_asleep_ns;
        let crowdings = crate::environment::in_parallel(&CROWDED_AT, |&at| match at {
            0 => Ok(least_of(&uncrowded).clone()),
            at => Calibration::fit_waking_after(&for_cpu, wakes, idle, at, &clients),
        })
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
        let crowded = least_of(&crowdings);
        let crowded_at_alike = alike(&crowdings, crowded, |c| c.crowded_at);
        let fits = match crowded.crowded_at {
            0 => uncrowded,
            at => at_each_idle(at)?,
        };
        let least = least_of(&fits);
        let mut best = least.clone();
        best.falls_asleep_alike_ns = alike(&fits, least, |c| c.falls_asleep_ns);
        best.crowded_at_alike = crowded_at_alike;
        best.memory = memory_costs(&everything);
        best.packets = PacketCost::fit_each_mode(&everything);
        best.clients_handoff = Handoff::fit(results, &best, latency).unwrap_or_default();
        best.warnings.extend(runs::heartbeats_warning(results));
        if census::mixed(&everything) {
            best.warnings.push(
                "these runs pool measurements made before pushpull kept its read of the TCP counters out of the \
                 server's CPU (theirs carry a few milliseconds of it a run, more with more connections) with \
                 measurements made since: their costs are not alike, and a client held a second comes out between \
                 the two; measure the older ones again"
                    .into(),
            );
        }
        Ok(best)
    }

    /// Whether this fit's runs are not worse fitted than `other`'s by more than their noise:
    /// the mean over the runs of the difference of their squared errors within two of its
    /// standard errors (the same runs fitted both ways, so the difference is paired).
    fn fits_within_noise_of(&self, other: &Calibration) -> bool {
        let d: Vec<f64> = self
            .errors()
            .iter()
            .zip(other.errors())
            .map(|(a, b)| a * a - b * b)
            .collect();
        if d.len() < 2 {
            return d.iter().all(|x| *x <= 0.0);
        }
        let n = d.len() as f64;
        let mean = d.iter().sum::<f64>() / n;
        let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        mean <= 2.0 * (var / n).sqrt()
    }

    /// The fit's error over its runs: the root mean square of their [`Calibration::errors`]
    /// (shares of the measured CPU, as the fit weighs them).
    pub fn fit_error(&self) -> f64 {
        let errors = self.errors();
        (errors.iter().map(|e| e * e).sum::<f64>() / errors.len().max(1) as f64).sqrt()
    }

    /// CPU seconds of `counts` at these costs.
    pub fn cpu_seconds(&self, counts: &Counts) -> f64 {
        self.cpu.iter().map(|c| counts.get(c.op) * c.cpu_ns).sum::<f64>() / 1e9
    }

    /// CPU ns of one `op`.
    pub fn cpu_ns(&self, op: Op) -> f64 {
        self.cpu.iter().find(|c| c.op == op).map_or(0.0, |c| c.cpu_ns)
    }

    /// Whether any of the runs fitted carried out `op` (a webhook retry is not measured by
    /// runs whose receivers never fail, and is priced at nothing by them).
    pub fn measured(&self, op: Op) -> bool {
        self.runs
            .iter()
            .any(|r| r.counts.get(&op).is_some_and(|&n| n > 0.0))
    }

    /// `mode`'s memory, if calibrated.
    pub fn memory(&self, mode: Mode) -> Option<MemoryCost> {
        self.memory.iter().find(|m| m.mode == mode).copied()
    }

    /// `mode`'s bytes, if calibrated.
    pub fn bytes(&self, mode: Mode) -> Option<ByteCost> {
        self.bytes.iter().find(|b| b.mode == mode).copied()
    }

    /// `mode`'s TCP segments, if calibrated.
    pub fn packets(&self, mode: Mode) -> Option<PacketCost> {
        self.packets.iter().find(|p| p.mode == mode).copied()
    }

    /// Each run's |fitted − measured| / measured CPU.
    pub fn errors(&self) -> Vec<f64> {
        self.runs
            .iter()
            .map(|r| (r.fitted_cpu_seconds / r.cpu_seconds.max(1e-9) - 1.0).abs())
            .collect()
    }
}

/// Of `fits`, the one with the least [`Calibration::fit_error`] (the first of those alike).
fn least_of(fits: &[Calibration]) -> &Calibration {
    fits.iter()
        .min_by(|a, b| a.fit_error().total_cmp(&b.fit_error()))
        .expect("at least one fit")
}

/// The `key`s of those of `fits` whose runs are not fitted worse than `least`'s by more than
/// their noise ([`Calibration::fits_within_noise_of`]).
fn alike<T>(fits: &[Calibration], least: &Calibration, key: impl Fn(&Calibration) -> T) -> Vec<T> {
    fits.iter()
        .filter(|c| c.fits_within_noise_of(least))
        .map(key)
        .collect()
}

/// Each mode's memory, fitted on its runs among `results`.
fn memory_costs(results: &Results) -> Vec<MemoryCost> {
    let runs = measured_runs(results);
    Mode::ALL
        .into_iter()
        .filter_map(|mode| {
            let of: Vec<(&Scenario, &ModeResult)> = runs
                .iter()
                .filter(|(_, _, m)| m.mode == mode)
                .map(|(_, s, m)| (*s, *m))
                .collect();
            (!of.is_empty()).then(|| per_mode::memory(mode, &of))
        })
        .collect()
}

/// The fit's columns with a page's cost as an empty poll's and what it costs beyond one (both
/// at zero or above): a page does all that an empty answer does and writes its events
/// besides. Fitted as a cost of its own, a page came out below an empty poll on six of the
/// eight days' runs in `reports/validation/calibrations` (7 to 30 µs against 32 to 53): few of
/// the runs' answers are pages, and the fit left their price loose.
fn pages_above_empty(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|r| {
            let mut r = r.clone();
            r[Op::EmptyPoll as usize] += r[Op::Page as usize];
            r
        })
        .collect()
}

#[cfg(test)]
mod tests;
