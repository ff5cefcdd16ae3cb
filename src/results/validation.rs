//! A simulated run beside a measured run of the same scenario: every headline figure of
//! every mode both ways, their ratio, and whether the model meets the goal set for it.

use super::merge::same_scenario;
use super::{Figure, Results};
use crate::event::Mode;

/// How close the model must come to the measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within its goal.
    Met,
    /// Outside its goal by more than three standard errors of the two values' sampling.
    Missed,
    /// Outside its goal, but by less than the sampling noise of the two values: neither met
    /// nor missed.
    WithinNoise,
    /// Shown for comparison; no goal is set for it.
    NoGoal,
    /// The model does not produce it.
    NotModelled,
    /// The measurement has no value for it (packets without TCP counters).
    NotMeasured,
}

/// One mode's one figure, measured and simulated.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The mode.
    pub mode: Mode,
    /// The figure.
    pub figure: Figure,
    /// The measurement's value (the median over repetitions, where there were several).
    pub measured: Option<f64>,
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

/// Every figure of every mode both runs have, in the measured run's order of modes. The
/// runs must be of the same scenario (the seed may differ), one measured and one simulated.
pub fn validate(measured: &Results, simulated: &Results) -> anyhow::Result<Vec<Check>> {
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
    let mut out = Vec::new();
    for m in &measured.modes {
        let Some(s) = simulated.modes.iter().find(|s| s.mode == m.mode) else {
            continue;
        };
        for f in Figure::ALL {
            let (mv, sv) = (f.headline(m), f.of(s));
            let goal = Goal::of(m.mode, f);
            let verdict = match (mv, sv, goal) {
                _ if !simulated.has(f) => Verdict::NotModelled,
                (None, ..) => Verdict::NotMeasured,
                (Some(mv), Some(sv), Some(g)) if g.met(mv, sv) => Verdict::Met,
                (Some(mv), Some(sv), Some(g)) => {
                    // The sampling error of each run's figure, from its own counts.
                    let se = |r: &super::ModeResult| f.sampling_error(r).unwrap_or(0.0);
                    let noise = 3.0 * (se(m).powi(2) + se(s).powi(2)).sqrt();
                    if g.beyond(mv, sv) <= noise {
                        Verdict::WithinNoise
                    } else {
                        Verdict::Missed
                    }
                }
                _ => Verdict::NoGoal,
            };
            out.push(Check {
                mode: m.mode,
                figure: f,
                measured: mv,
                simulated: if simulated.has(f) { sv } else { None },
                goal,
                verdict,
            });
        }
    }
    Ok(out)
}

/// The part of the model a figure rests on: where to look when it misses.
pub fn rests_on(mode: Mode, f: Figure) -> &'static str {
    let poller = matches!(mode, Mode::Poll | Mode::ConditionalPoll);
    match f {
        Figure::LatencyP50 | Figure::LatencyP99 if poller => {
            "the pollers' slots (phase and jitter, one seeded draw per client) and the network's round trip"
        }
        Figure::LatencyP50 | Figure::LatencyP99 => {
            "the network's one way and the server's cores at their calibrated costs: the client's own \
             processing (wake-ups, reads, parsing) is not in the model"
        }
        Figure::RequestsPerEvent | Figure::EmptyShare | Figure::RequestsPerSecond => {
            "the clients' schedules against the event schedule (which `run` and the model share)"
        }
        Figure::DeliveriesPerSecond => "the event schedule and the drain",
        Figure::CpuMsPer1k => {
            "the calibration's CPU per operation, a straight-line fit over its runs: an operation costs more \
             at low load (a wake-up each) than at high (batched), and a calibration from another machine \
             prices it at that machine's speed"
        }
        Figure::MemoryPerClient => {
            "the calibration's memory, a fixed part and a part per client fitted over its runs: the webhook \
             sender's memory follows its backlog rather than its clients"
        }
        Figure::BytesPerEvent => "the calibration's bytes per request and per delivered event",
        Figure::PacketsPerEvent => "not modelled: TCP's own segmenting is not in the model",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miss_smaller_than_the_noise_is_not_called_a_miss() {
        let measured = crate::results::one_run_fixture();
        let mut simulated = measured.clone();
        simulated.simulated = Some(crate::results::Simulated {
            round_trip_ms: 0.3,
            not_modelled: Vec::new(),
            server: None,
        });
        // Requests per event 11% high: outside the 10% goal by 1% of the value.
        let poll = simulated.modes.iter_mut().find(|m| m.mode == Mode::Poll).unwrap();
        poll.server.requests_per_delivery *= 1.11;
        // Judged on `n` requests for as many deliveries in each run.
        let verdict = |n: u64| {
            let (mut m, mut s) = (measured.clone(), simulated.clone());
            for r in [&mut m, &mut s] {
                let poll = r.modes.iter_mut().find(|m| m.mode == Mode::Poll).unwrap();
                poll.server.requests = n;
                poll.deliveries.delivered = n;
            }
            let checks = validate(&m, &s).unwrap();
            let c = checks
                .iter()
                .find(|c| c.mode == Mode::Poll && c.figure == Figure::RequestsPerEvent);
            c.unwrap().verdict
        };
        // Thirty requests (a standard error of 18%): no verdict. A million (0.1%): a miss.
        assert_eq!(verdict(30), Verdict::WithinNoise);
        assert_eq!(verdict(1_000_000), Verdict::Missed);
    }

    #[test]
    fn goals_are_shares_or_milliseconds() {
        assert_eq!(Goal::of(Mode::Poll, Figure::LatencyP50), Some(Goal::Share(0.10)));
        assert_eq!(Goal::of(Mode::Sse, Figure::LatencyP50), Some(Goal::Ms(0.5)));
        assert_eq!(Goal::of(Mode::Sse, Figure::EmptyShare), None);
        assert!(Goal::Share(0.1).met(500.0, 545.0) && !Goal::Share(0.1).met(500.0, 556.0));
        assert!(Goal::Ms(0.5).met(0.35, 0.8) && !Goal::Ms(0.5).met(0.35, 0.9));
    }

    #[test]
    fn a_run_beside_its_model_is_judged_and_the_unmodelled_left_out() {
        let measured = crate::results::one_run_fixture();
        let mut simulated = measured.clone();
        simulated.simulated = Some(crate::results::Simulated {
            round_trip_ms: 0.3,
            not_modelled: vec![Figure::CpuMsPer1k],
            server: None,
        });
        // The model's poll p50 30% above the measured one misses (830 deliveries put the p50's
        // standard error near 3%); its requests match.
        let poll = simulated.modes.iter_mut().find(|m| m.mode == Mode::Poll).unwrap();
        poll.server.empty_share *= 1.05;
        let measured_poll = measured.modes.iter().find(|m| m.mode == Mode::Poll).unwrap();
        let p50 = Figure::LatencyP50.headline(measured_poll).unwrap();
        let mut h = crate::results::histogram::new_histogram();
        h.record_n((p50 * 1300.0) as u64, poll.deliveries.expected)
            .unwrap();
        poll.latency = crate::results::LatencySummary::from_histogram(&h);
        poll.deliveries.delivered = poll.deliveries.expected;
        let checks = validate(&measured, &simulated).unwrap();
        let find = |mode, f| checks.iter().find(|c| c.mode == mode && c.figure == f).unwrap();
        assert_eq!(find(Mode::Poll, Figure::LatencyP50).verdict, Verdict::Missed);
        assert_eq!(find(Mode::Poll, Figure::EmptyShare).verdict, Verdict::Met);
        assert_eq!(find(Mode::Poll, Figure::RequestsPerEvent).verdict, Verdict::Met);
        assert_eq!(find(Mode::Sse, Figure::CpuMsPer1k).verdict, Verdict::NotModelled);
        assert_eq!(
            find(Mode::Sse, Figure::DeliveriesPerSecond).verdict,
            Verdict::NoGoal
        );
        // Two measured runs, or the sides swapped, are refused.
        assert!(validate(&measured, &measured).is_err());
        assert!(validate(&simulated, &measured).is_err());
    }
}
