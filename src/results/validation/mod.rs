//! A simulated run beside a measured run of the same scenario: every headline figure of
//! every mode both ways, their ratio, and whether the model meets the goal set for it.

pub mod fates;

pub use fates::Fate;

use serde::Serialize;

use super::merge::same_scenario;
use super::{Figure, Results};
use crate::event::Mode;

/// How close the model must come to the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Within this share of the measured value (0.1: ±10%).
    Share(f64),
    /// Within this many ms of it.
    Ms(f64),
}

impl Goal {
    /// The goal for `f` of `mode`, where the simulator has one: pollers' median latency,
    /// requests per event and empty share within 10%; CPU and memory within 25%; a push
    /// mode's median latency within half a millisecond.
    pub fn of(mode: Mode, f: Figure) -> Option<Goal> {
        let poller = matches!(mode, Mode::Poll | Mode::ConditionalPoll);
        match f {
            Figure::LatencyP50 if poller => Some(Goal::Share(0.10)),
            Figure::LatencyP50 => Some(Goal::Ms(0.5)),
            Figure::RequestsPerEvent | Figure::EmptyShare if poller => Some(Goal::Share(0.10)),
            Figure::CpuMsPer1k | Figure::MemoryPerClient => Some(Goal::Share(0.25)),
            _ => None,
        }
    }

    /// Whether `simulated` meets it against `measured`.
    pub fn met(self, measured: f64, simulated: f64) -> bool {
        self.beyond(measured, simulated) <= 0.0
    }

    /// How far `simulated` lies outside the goal around `measured`, in the figure's unit
    /// (zero or less inside it).
    pub fn beyond(self, measured: f64, simulated: f64) -> f64 {
        let off = (simulated - measured).abs();
        match self {
            Goal::Share(s) if measured == 0.0 => simulated.abs() - s,
            Goal::Share(s) => off - s * measured.abs(),
            Goal::Ms(ms) => off - ms,
        }
    }
}

/// What became of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Within its goal.
    Met,
    /// Outside its goal by more than three standard errors of the two values' sampling.
    Missed,
    /// Outside its goal, but by less than the noise of the two values (their sampling, or the
    /// measurement's spread over its repetitions): neither met nor missed.
    WithinNoise,
    /// Shown for comparison; no goal is set for it.
    NoGoal,
    /// The model does not produce it.
    NotModelled,
    /// The measurement has no value for it (packets without TCP counters).
    NotMeasured,
}

/// One mode's one figure, measured and simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// The sweep point's label, for a sweep.
    pub point: Option<String>,
    /// The mode.
    pub mode: Mode,
    /// The figure.
    pub figure: Figure,
    /// The measurement's value (the median over repetitions, where there were several).
    pub measured: Option<f64>,
    /// The band of the measurement's repetitions (their 95% interval of the median, or their
    /// smallest and largest), where it was repeated.
    pub measured_band: Option<(f64, f64)>,
    /// The model's value.
    pub simulated: Option<f64>,
    /// The goal, where one is set.
    pub goal: Option<Goal>,
    /// How it came out.
    pub verdict: Verdict,
}

impl Check {
    /// Simulated ÷ measured, where both are finite and the measured is not zero.
    pub fn ratio(&self) -> Option<f64> {
        match (self.measured, self.simulated) {
            (Some(m), Some(s)) if m != 0.0 && m.is_finite() && s.is_finite() => Some(s / m),
            _ => None,
        }
    }
}

/// A model held against a measurement: every figure, and for a sweep each mode's knee.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validation {
    /// Every figure of every mode (at every point of a sweep), in the measured run's order.
    pub checks: Vec<Check>,
    /// For a sweep over one numeric parameter, each mode's knee.
    pub knees: Vec<Knee>,
    /// Where the deliveries went, run and fault windows, for a run without a sweep.
    pub fates: Vec<Fate>,
}

/// Every figure of every mode both runs have (at every point of a sweep both have), in the
/// measured run's order of modes, and a sweep's knees. The runs must be of the same scenario
/// (the seed may differ), one measured and one simulated.
pub fn validate(measured: &Results, simulated: &Results) -> anyhow::Result<Validation> {
    anyhow::ensure!(
        measured.simulated.is_none() && simulated.simulated.is_some(),
        "a side-by-side needs one measured and one simulated results.json"
    );
    anyhow::ensure!(
        same_scenario(&measured.scenario, &simulated.scenario),
        "the measured run is of `{}` and the simulated one of `{}` (or of other settings): only runs of one \
         scenario stand side by side",
        measured.scenario.name,
        simulated.scenario.name
    );
    let pairs: Vec<(Option<&str>, &[super::ModeResult], &[super::ModeResult])> = if measured.points.is_empty()
    {
        vec![(None, &measured.modes, &simulated.modes)]
    } else {
        measured
            .points
            .iter()
            .filter_map(|p| {
                let s = simulated.points.iter().find(|s| s.label == p.label)?;
                Some((Some(p.label.as_str()), p.modes.as_slice(), s.modes.as_slice()))
            })
            .collect()
    };
    let mut out = Vec::new();
    for (point, measured_modes, simulated_modes) in pairs {
        for m in measured_modes {
            let Some(s) = simulated_modes.iter().find(|s| s.mode == m.mode) else {
                continue;
            };
            // A figure neither gives (heartbeats of a mode without streams) has no row, nor one
            // the measurement lacks and the model puts at nothing (a stream's heartbeats in a
            // window none fell in, measured before the server counted them).
            let shown = |f: &Figure| f.of(m).is_some() || f.of(s).is_some_and(|v| v != 0.0);
            for f in Figure::ALL.into_iter().filter(shown) {
                out.push(check(point, m, s, f, simulated.has(f)));
            }
        }
    }
    Ok(Validation {
        checks: out,
        knees: knees(measured, simulated),
        fates: fates::fates(measured, simulated),
    })
}

/// Figure `f` of mode `m` beside its model `s` (`modelled`: whether the model gives `f`).
fn check(
    point: Option<&str>,
    m: &super::ModeResult,
    s: &super::ModeResult,
    f: Figure,
    modelled: bool,
) -> Check {
    let (mv, sv) = (f.headline(m), f.of(s));
    let band = m
        .spread
        .get(&f)
        .filter(|s| s.n > 1)
        .map(|s| s.band())
        .filter(|b| b.low.is_finite() && b.high.is_finite() && b.low <= b.high)
        .map(|b| (b.low, b.high));
    let goal = Goal::of(m.mode, f);
    let verdict = match (mv, sv, goal) {
        _ if !modelled => Verdict::NotModelled,
        (None, ..) => Verdict::NotMeasured,
        (Some(mv), Some(sv), Some(g)) if g.met(mv, sv) => Verdict::Met,
        (Some(mv), Some(sv), Some(g)) => {
            // The sampling error of each run's figure, from its own counts.
            let se = |r: &super::ModeResult| f.sampling_error(r).unwrap_or(0.0);
            let noise = 3.0 * (se(m).powi(2) + se(s).powi(2)).sqrt();
            // The machine's noise, which only repetitions measure: the model would meet its
            // goal around a value inside the measurement's band.
            let in_band = band.is_some_and(|(low, high)| g.met(sv.clamp(low, high), sv));
            if g.beyond(mv, sv) <= noise || in_band {
                Verdict::WithinNoise
            } else {
                Verdict::Missed
            }
        }
        _ => Verdict::NoGoal,
    };
    Check {
        point: point.map(str::to_string),
        mode: m.mode,
        figure: f,
        measured: mv,
        measured_band: band,
        simulated: if modelled { sv } else { None },
        goal,
        verdict,
    }
}

/// Where a sweep's p99 leaves its flat part, for one mode, measured and simulated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Knee {
    /// The mode.
    pub mode: Mode,
    /// The swept parameter.
    pub parameter: String,
    /// The measurement's knee: the first swept value whose p99 (the median of its
    /// repetitions, as the tables show it) is more than [`KNEE_RISE`] times the lowest p99
    /// before it, among the values whose runs each had the deliveries a p99 needs (None: no
    /// knee within the sweep).
    pub measured: Option<f64>,
    /// The knee of each repetition's own p99s, found the same way (empty for a measurement
    /// run once): where the repetitions disagree, the measurement does not pin the knee.
    pub measured_each: Vec<Option<f64>>,
    /// The model's knee, found the same way.
    pub simulated: Option<f64>,
    /// Within [`KNEE_GOAL`] of the measured knee.
    pub goal: Goal,
    /// Met when the model's knee agrees with the measured one (both none, or both within
    /// the goal of the measured value); within noise when it agrees with the knee of one of
    /// the measured repetitions instead; else missed.
    pub verdict: Verdict,
}

/// How far p99 must rise above the flat part for a point to be the knee.
pub const KNEE_RISE: f64 = 2.0;

/// The share of the measured knee the model's must come within.
pub const KNEE_GOAL: f64 = 0.20;

/// The knee of each mode of a sweep over one numeric parameter, both ways; empty for
/// anything else.
pub fn knees(measured: &Results, simulated: &Results) -> Vec<Knee> {
    let Some(first) = measured.points.first() else {
        return Vec::new();
    };
    if first.values.len() != 1 || first.values[0].number.is_none() {
        return Vec::new();
    }
    let agree = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (b - a).abs() <= KNEE_GOAL * a.abs(),
        _ => false,
    };
    first
        .modes
        .iter()
        .map(|m| {
            let (mk, sk) = (knee(measured, m.mode), knee(simulated, m.mode));
            let each = repetition_knees(measured, m.mode);
            Knee {
                mode: m.mode,
                parameter: first.values[0].path.clone(),
                measured: mk,
                simulated: sk,
                goal: Goal::Share(KNEE_GOAL),
                verdict: if agree(mk, sk) {
                    Verdict::Met
                } else if each.iter().any(|&k| agree(k, sk)) {
                    Verdict::WithinNoise
                } else {
                    Verdict::Missed
                },
                measured_each: each,
            }
        })
        .collect()
}

/// The first swept value at which `mode`'s p99 (the median of a measurement's repetitions)
/// exceeds [`KNEE_RISE`] × the lowest p99 of the points before it, in the order of the swept
/// values, over the points whose runs each had the deliveries a p99 needs (100: with fewer,
/// the slowest of a few stands in for it).
pub fn knee(r: &Results, mode: Mode) -> Option<f64> {
    knee_of(
        swept_results(r, mode)
            .filter(|(_, m)| has_a_p99(m))
            .map(|(x, m)| Some((x, Figure::LatencyP99.headline(m)?))),
    )
}

/// Whether each run behind `m`'s p99 (each repetition, or the one run) had the deliveries a
/// p99 needs ([`crate::results::LatencySummary::supports`]): with fewer than 100, what reads
/// as the p99 is the slowest of a few, which a knee would compare with the true p99 of a
/// larger sample at the next point, as the report's charts leave it out.
fn has_a_p99(m: &super::ModeResult) -> bool {
    if m.repetitions.is_empty() {
        m.latency.supports(0.99)
    } else {
        m.repetitions.iter().all(|r| r.latency.supports(0.99))
    }
}

/// The knee of each repetition's own p99s, where every point of the sweep was repeated as
/// often: repetition `i` of each point makes one curve.
fn repetition_knees(r: &Results, mode: Mode) -> Vec<Option<f64>> {
    let runs = swept_results(r, mode)
        .map(|(_, m)| m.repetitions.len())
        .min()
        .unwrap_or(0);
    if runs < 2 || swept_results(r, mode).any(|(_, m)| m.repetitions.len() != runs) {
        return Vec::new();
    }
    (0..runs)
        .map(|i| {
            knee_of(swept_results(r, mode).map(|(x, m)| {
                let run = &m.repetitions[i];
                has_a_p99(run).then_some((x, run.latency.p99_ms))
            }))
        })
        .collect()
}

/// Each point's swept value and `mode`'s result there.
fn swept_results(r: &Results, mode: Mode) -> impl Iterator<Item = (f64, &super::ModeResult)> {
    r.points.iter().filter_map(move |p| {
        let x = p.values.first()?.number?;
        Some((x, p.modes.iter().find(|m| m.mode == mode)?))
    })
}

/// The knee of a curve of (swept value, p99), in any order; a point without a p99 is left
/// out.
fn knee_of(points: impl Iterator<Item = Option<(f64, f64)>>) -> Option<f64> {
    let mut curve: Vec<(f64, f64)> = points.flatten().collect();
    curve.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut flat = f64::INFINITY;
    for (x, p99) in curve {
        if p99 > KNEE_RISE * flat {
            return Some(x);
        }
        flat = flat.min(p99);
    }
    None
}

/// Where a CPU figure's miss points, in the words every mode's text shares, around what the
/// runs were (`$runs`) and what the mode adds (`$more`).
macro_rules! cpu_rests_on {
    ($runs:literal, $more:literal) => {
        concat!(
            "the calibration's CPU per operation and per wake-up, fitted over its runs",
            $runs,
            ": how often a job finds its core idle turns on how the arrivals bunch",
            $more,
            ", and a calibration from another machine or day prices it at that machine's speed then"
        )
    };
}

/// The part of the model a figure rests on: where to look when it misses.
pub fn rests_on(mode: Mode, f: Figure) -> &'static str {
    let poller = matches!(mode, Mode::Poll | Mode::ConditionalPoll);
    match f {
        Figure::LatencyP50 | Figure::LatencyP99 if poller => {
            "the pollers' slots (phase and jitter, one seeded draw per client) and the network's round trip"
        }
        Figure::LatencyP50 | Figure::LatencyP99 => {
            "the network's one way and the server's cores at their calibrated costs, with the clients' \
             reads on the same cores at their average CPU when they share the server's machine \
             (`simulate --clients-beside-server`, as validation has it) and each delivery's handoff to its \
             reader, fitted on the calibration runs' medians as a time per client held: a stand-in for how the \
             machine schedules the two processes' threads against each other, which gives no tail of its own"
        }
        Figure::RequestsPerEvent | Figure::EmptyShare | Figure::RequestsPerSecond => {
            "the clients' schedules against the event schedule (which `run` and the model share)"
        }
        Figure::DeliveriesPerSecond => "the event schedule and the drain",
        Figure::CpuMsPer1k if mode == Mode::Webhook => cpu_rests_on!(
            "",
            ", and what a reply from afar or a receiver that fails costs the sender is priced only by a \
             calibration with runs over a round trip and with failing receivers (those since 2026-12-07), from \
             a few short runs"
        ),
        Figure::CpuMsPer1k => cpu_rests_on!(
            "",
            ", the fit leaves some costs loose (a page of events, a stream write)"
        ),
        Figure::MemoryPerClient if mode == Mode::Webhook => {
            "the calibration's memory, a fixed part and a part per connection fitted over its runs (with a part \
             per endpoint and per attempt a second where it measured the webhook memory runs), for the \
             connections the model's sender pools (and a part per busy one, carrying a few attempts a second \
             or more): the fixed part is fitted on runs whose smallest hold a megabyte or two, which the \
             allocator moves by a tenth from run to run; the pools the model holds may not be the sender's \
             (at thousands of attempts a second over hundreds of hosts it holds up to a fifth more); and \
             the calibration's runs are 4 s windows, where a longer one at thousands of events a second is \
             charged more (the sender holds more as it runs, and some of the event log's bytes stay in)"
        }
        Figure::MemoryPerClient if matches!(mode, Mode::Poll | Mode::ConditionalPoll) => {
            "the calibration's memory, a fixed part and a part per connection fitted over its runs (with a part \
             per byte of the mean page where it measured the page runs): what a client's buffers and queues hold \
             beyond that is not in the model"
        }
        Figure::MemoryPerClient if mode == Mode::Websocket => {
            "the calibration's memory, a fixed part and a part per connection fitted over its runs, and each \
             stream's send buffer at the size its largest batch grew it to (beyond the calibration's one frame): \
             what else a client's larger events or queues leave held is not in the model"
        }
        Figure::MemoryPerClient => {
            "the calibration's memory, a fixed part and a part per connection fitted over its runs: what a \
             client's buffers and queues hold beyond that is not in the model"
        }
        Figure::BytesPerEvent => {
            "the calibration's bytes per request and per delivered event, each event written carrying the \
             scenario's payload in place of the calibration runs'"
        }
        Figure::PacketsPerEvent => {
            "the calibration's TCP segments per request, delivered event and connection opened, fitted over \
             its runs on loopback: an ACK rides on the next message more often at their busy rates than in \
             sparse traffic, and a network's segments smaller than loopback's cut a large message into more"
        }
        Figure::HeartbeatsPerSecond => {
            "the streams' quiet spells against the event schedule: a heartbeat after each interval a stream \
             goes without a write, the first set by the client's id as the server sets it"
        }
    }
}

#[cfg(test)]
mod tests;
