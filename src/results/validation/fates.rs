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
#[derive(Debug, Clone, PartialEq)]
pub struct Fate {
    /// The mode.
    pub mode: Mode,
    /// "the whole run", or the fault window's label.
    pub during: String,
    /// Which count: late, dead-lettered, lost or duplicates.
    pub count: &'static str,
    /// The measurement's.
    pub measured: u64,
    /// The model's.
    pub simulated: u64,
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
        let mut compare = |during: &str, mo: &Outcomes, so: &Outcomes| {
            for (count, of) in COUNTS {
                let (mv, sv) = (of(mo), of(so));
                if mv > 0 || sv > 0 {
                    out.push(Fate {
                        mode: m.mode,
                        during: during.to_string(),
                        count,
                        measured: mv,
                        simulated: sv,
                        verdict: judge(mv, sv),
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

/// Met within [`FATE_GOAL`] of the measured count; past it by no more than three standard
/// errors of the difference of two counts (each a sum of rare events, √n apiece), within noise.
pub fn judge(measured: u64, simulated: u64) -> Verdict {
    let (m, s) = (measured as f64, simulated as f64);
    let beyond = (s - m).abs() - FATE_GOAL * m;
    if beyond <= 0.0 {
        Verdict::Met
    } else if beyond <= 3.0 * (m + s).sqrt() {
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
        assert_eq!(judge(100, 109), Verdict::Met);
        assert_eq!(judge(0, 0), Verdict::Met);
        // 10 past the 10% of 100, with a noise of 3 × √(100 + 120) ≈ 44: within noise.
        assert_eq!(judge(100, 120), Verdict::WithinNoise);
        // 10,000 against 11,500: 500 past the goal, noise 3 × √21,500 ≈ 440.
        assert_eq!(judge(10_000, 11_500), Verdict::Missed);
        assert_eq!(judge(0, 30), Verdict::Missed);
    }
}
