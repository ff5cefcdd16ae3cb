//! Where every delivery went, modelled beside measured: for each mode, over the whole run and
//! over each fault's window, how many deliveries were late, dead-lettered, lost and duplicated.
//! The goal is each count within 10% of the measured one; both zero is left out.

use super::Verdict;
use crate::event::Mode;
use crate::results::{ModeResult, Outcomes, Results};

/// How close a modelled count must come: within this share of the measured one.
pub const FATE_GOAL: f64 = 0.10;

/// Reads one count off a run's (or a window's) outcomes.
type Count = fn(&Outcomes) -> u64;

/// The counts compared, by name.
pub const COUNTS: [(&str, Count); 4] = [
    ("late", |o| o.late),
    ("dead-lettered", |o| o.dead_lettered),
    ("lost", |o| o.lost),
    ("duplicates", |o| o.duplicates),
];

/// One count of one mode, over the run or one window, both ways.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fate {
    /// The mode.
    pub mode: Mode,
    /// "the whole run", or the fault window's label.
    pub during: String,
    /// Which count: late, dead-lettered, lost or duplicates.
    pub count: &'static str,
    /// The measurement's, per run: with repetitions, their mean (the model, the same every
    /// time for a seed, runs once).
    pub measured: f64,
    /// The measurement's repetitions.
    pub repetitions: usize,
    /// The model's.
    pub simulated: u64,
    /// Within [`FATE_GOAL`] of the measured count.
    pub goal: super::Goal,
    /// How it came out: met, missed, or outside the goal by less than the counts' noise.
    pub verdict: Verdict,
}

/// Every count either run has above zero, for each mode both ran, in a scenario with faults
/// (and without a sweep): what the faults did is what these counts judge.
pub fn fates(measured: &Results, simulated: &Results) -> Vec<Fate> {
    if !measured.points.is_empty() || measured.scenario.faults.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for m in &measured.modes {
        let Some(s) = simulated.modes.iter().find(|s| s.mode == m.mode) else {
            continue;
        };
        // A measurement repeated sums its repetitions' counts.
        let repetitions = m.repetitions.len().max(1);
        let mut compare = |during: &str, mo: &Outcomes, so: &Outcomes| {
            for (count, of) in COUNTS {
                let (mv, sv) = (of(mo), of(so));
                if mv > 0 || sv > 0 {
                    out.push(Fate {
                        mode: m.mode,
                        during: during.to_string(),
                        count,
                        measured: mv as f64 / repetitions as f64,
                        repetitions,
                        simulated: sv,
                        goal: super::Goal::Share(FATE_GOAL),
                        verdict: judge(mv, repetitions, sv),
                    });
                }
            }
        };
        compare("the whole run", &m.outcomes, &s.outcomes);
        for w in &m.fault_windows {
            if let Some(sw) = window(s, &w.label) {
                compare(&format!("during {}", w.label), &w.outcomes, sw);
            }
        }
    }
    out
}

fn window<'a>(m: &'a ModeResult, label: &str) -> Option<&'a Outcomes> {
    m.fault_windows
        .iter()
        .find(|w| w.label == label)
        .map(|w| &w.outcomes)
}

/// Met within [`FATE_GOAL`] of the measured count per run (`measured`, summed over
/// `repetitions`, divided by them); past it by no more than three standard errors of the
/// difference, within noise. Each count is a sum of rare events, √n apiece, so the mean of
/// the repetitions has √`measured` / `repetitions`.
pub fn judge(measured: u64, repetitions: usize, simulated: u64) -> Verdict {
    let n = repetitions.max(1) as f64;
    let (m, s) = (measured as f64 / n, simulated as f64);
    let beyond = (s - m).abs() - FATE_GOAL * m;
    if beyond <= 0.0 {
        Verdict::Met
    } else if beyond <= 3.0 * (m / n + s).sqrt() {
        Verdict::WithinNoise
    } else {
        Verdict::Missed
    }
}

/// The part of the model a count rests on: where to look when it misses.
pub fn rests_on(count: &str) -> &'static str {
    match count {
        "late" => {
            "the retry schedule's jitter, the reconnect backoff and the network's delays: a count of late \
             deliveries turns on where each lands against `late_after`"
        }
        "dead-lettered" => "the retry schedule against the fault windows, and the endpoints' disabling",
        "lost" => "the drain, and the slow-consumer policy's bound on a paused stream client's queue",
        _ => "the slow receivers' answers against the sender's timeout",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_within_a_tenth_are_met_and_beyond_it_judged_against_their_noise() {
        assert_eq!(judge(100, 1, 109), Verdict::Met);
        assert_eq!(judge(0, 1, 0), Verdict::Met);
        // 10 past the 10% of 100, with a noise of 3 × √(100 + 120) ≈ 44: within noise.
        assert_eq!(judge(100, 1, 120), Verdict::WithinNoise);
        // 10,000 against 11,500: 500 past the goal, noise 3 × √21,500 ≈ 440.
        assert_eq!(judge(10_000, 1, 11_500), Verdict::Missed);
        assert_eq!(judge(0, 1, 30), Verdict::Missed);
    }

    #[test]
    fn repeated_measurements_are_judged_per_run() {
        // Three repetitions that late 1,602 deliveries in all: 534 a run, which a model's
        // 538 meets; the sum, three times the model's, is not what it is held to.
        assert_eq!(judge(1602, 3, 538), Verdict::Met);
        // 534 a run against 640: 53 past the goal, noise 3 × √(534/3 + 640) ≈ 86.
        assert_eq!(judge(1602, 3, 640), Verdict::WithinNoise);
        // Against 700: 113 past it.
        assert_eq!(judge(1602, 3, 700), Verdict::Missed);
    }
}
