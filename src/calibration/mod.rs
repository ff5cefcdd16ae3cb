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
mod runs;
mod uncertainty;

pub use clients::{ClientCpu, Handoff, Latency, HANDOFF_NS_PER_CLIENT};
pub use ops::{Counts, Op};
pub use packets::PacketCost;
pub use per_mode::{ByteCost, Held, MemoryCost, BUSY_AT};
use runs::{for_cpu_alone, for_memory_alone, measured_runs, without_cpu_alone};
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
pub const SCHEMA_VERSION: u32 = 2;

/// How many of a measured run's jobs the model finds reaching an idle core, for the run's
/// scenario and mode at a calibration's costs: the counts of [`Op::Wake`] and
/// [`Op::RequestWake`], and of the replies from afar that did ([`Op::ReplyWake`]), which the
/// simulator gives (the calibration does not depend on it).
pub type Wakes<'a> = &'a dyn Fn(&Scenario, &ModeResult, &Calibration) -> [f64; 3];

/// At most this many rounds of counting the wake-ups and fitting again.
const WAKE_ROUNDS: usize = 6;

/// The idle times a fit tries as the threshold past which a job pays a wake-up, ns: a worker
/// thread (and its core) idle for a moment is still awake, and only after a longer idle has
/// it parked and its core gone to sleep, so that the next job pays to wake them.
pub const WAKE_AFTER_IDLE_NS: [u64; 8] = [
    0, 250_000, 500_000, 1_000_000, 2_000_000, 3_000_000, 5_000_000, 10_000_000,
];

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
    /// How long a core must have been idle for a job to pay a wake-up ([`Op::Wake`],
    /// [`Op::RequestWake`]), ns: a worker idle for less is still awake, and a job that finds
    /// it so costs no more than one that finds it busy. Fitted: of [`WAKE_AFTER_IDLE_NS`],
    /// the one whose fit leaves the least error over the runs (0, every idle core woken, in
    /// files written before it was fitted, whose costs were fitted so).
    #[serde(default)]
    pub wake_after_idle_ns: u64,
    /// The thresholds of [`WAKE_AFTER_IDLE_NS`] whose fits the runs do not tell from the
    /// chosen one's (their errors within noise of its; the chosen one among them), ns: a
    /// sparse load's wake-ups, and so its CPU, rest on a choice the runs leave open among
    /// these. None in older files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wake_after_idle_alike_ns: Vec<u64>,
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
    /// with them, until the counts settle. That is done for each idle threshold of
    /// [`WAKE_AFTER_IDLE_NS`], and the fit with the least [`Calibration::fit_error`] kept.
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
        let fits = WAKE_AFTER_IDLE_NS
            .into_iter()
            .map(|idle| Calibration::fit_waking_after(&for_cpu, wakes, idle, &clients))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let least = fits
            .iter()
            .min_by(|a, b| a.fit_error().total_cmp(&b.fit_error()))
            .expect("at least one threshold");
        let alike: Vec<u64> = fits
            .iter()
            .filter(|c| c.fits_within_noise_of(least))
            .map(|c| c.wake_after_idle_ns)
            .collect();
        let mut best = least.clone();
        best.wake_after_idle_alike_ns = alike;
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

    /// [`Calibration::fit`] with wake-ups paid after an idle of more than `idle` ns.
    fn fit_waking_after(
        results: &Results,
        wakes: Wakes,
        idle: u64,
        clients: &[ClientCpu],
    ) -> anyhow::Result<Calibration> {
        let measured = measured_runs(results);
        anyhow::ensure!(
            measured.len() > Op::ALL.len(),
            "{} measured runs cannot tell {} costs apart",
            measured.len(),
            Op::ALL.len()
        );
        let mut rows: Vec<Vec<f64>> = measured
            .iter()
            .map(|(_, s, m)| Counts::measured(m, f64::from(s.clients.count)).0.to_vec())
            .collect();
        let cpu: Vec<f64> = measured.iter().map(|(_, _, m)| m.server.cpu_seconds).collect();
        let weights: Vec<f64> = cpu.iter().map(|c| 1.0 / c.max(1e-6)).collect();
        let modes: Vec<Mode> = Mode::ALL
            .into_iter()
            .filter(|mode| measured.iter().any(|(_, _, m)| m.mode == *mode))
            .collect();
        // The bytes from the runs on loopback whose receivers do not fail (a 503 answers with
        // fewer).
        let of = |mode: Mode| -> Vec<(&Scenario, &ModeResult)> {
            measured
                .iter()
                .filter(|(_, s, m)| m.mode == mode && !for_cpu_alone(&s.name))
                .map(|(_, s, m)| (*s, *m))
                .collect()
        };
        let memory = memory_costs(results);
        let prices_replies_from_afar = measured
            .iter()
            .any(|(_, s, _)| s.name == ROUND_TRIP_SCENARIO_NAME);
        let longest_round_trip_ns = measured
            .iter()
            .map(|(_, _, m)| (m.theory.given.round_trip_ms.max(0.0) * 1e6).round() as u64)
            .max();
        let bytes: Vec<ByteCost> = modes
            .iter()
            .map(|&mode| per_mode::bytes(mode, &of(mode)))
            .collect();
        let assemble = |rows: &[Vec<f64>]| {
            let f = fit::nonnegative_least_squares(&pages_above_empty(rows), &cpu, &weights);
            let (empty, page) = (Op::EmptyPoll as usize, Op::Page as usize);
            let costs: Vec<Cost> = Op::ALL
                .iter()
                .enumerate()
                .map(|(j, &op)| {
                    let (cpu_ns, std_error_ns) = if j == page {
                        (
                            f.coefficients[empty] + f.coefficients[page],
                            f.std_error_of_sum(empty, page),
                        )
                    } else {
                        (f.coefficients[j], f.std_errors[j])
                    };
                    Cost {
                        op,
                        cpu_ns: cpu_ns * 1e9,
                        std_error_ns: std_error_ns * 1e9,
                    }
                })
                .collect();
            let runs = measured
                .iter()
                .zip(rows)
                .map(|((point, _, m), row)| Run {
                    point: point.clone(),
                    mode: m.mode,
                    counts: Op::ALL
                        .iter()
                        .zip(row)
                        .filter(|(_, &n)| n > 0.0)
                        .map(|(&op, &n)| (op, n))
                        .collect(),
                    cpu_seconds: m.server.cpu_seconds,
                    fitted_cpu_seconds: Op::ALL
                        .iter()
                        .zip(row)
                        .map(|(&op, n)| n * costs[op as usize].cpu_ns / 1e9)
                        .sum(),
                })
                .collect();
            Calibration {
                schema_version: SCHEMA_VERSION,
                environment: results.environment.clone(),
                cpu: costs,
                cpu_covariance: uncertainty::cost_covariance(&f),
                memory: memory.clone(),
                bytes: bytes.clone(),
                packets: Vec::new(),
                wake_after_idle_ns: idle,
                wake_after_idle_alike_ns: Vec::new(),
                longest_round_trip_ns,
                prices_replies_from_afar,
                clients: clients.to_vec(),
                clients_handoff: Handoff::default(),
                runs,
                warnings: Vec::new(),
            }
        };
        let mut calibration = assemble(&rows);
        let mut moved = f64::INFINITY;
        for _ in 0..WAKE_ROUNDS {
            moved = 0.0;
            for (row, (_, s, m)) in rows.iter_mut().zip(&measured) {
                for (op, n) in
                    [Op::Wake, Op::RequestWake, Op::ReplyWake]
                        .into_iter()
                        .zip(wakes(s, m, &calibration))
                {
                    let was = row[op as usize];
                    moved = moved.max((n - was).abs() / n.max(was).max(1.0));
                    row[op as usize] = n;
                }
            }
            calibration = assemble(&rows);
            if moved < WAKES_SETTLED {
                break;
            }
        }
        if moved >= WAKES_SETTLED {
            calibration.warnings.push(format!(
                "the model's wake-up counts still moved by up to {:.0}% in the last of {WAKE_ROUNDS} rounds of \
                 counting them and fitting again: the wake-ups' costs, and the costs they trade off against, may be \
                 off",
                moved * 100.0
            ));
        }
        Ok(calibration)
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

/// Every measured run of `results`: its point's label (empty without a sweep), its scenario
/// and its mode's result.
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
