//! Two results of one scenario side by side: for every mode and headline figure, the change
//! and whether it lies beyond the noise of both runs ("improved", "regressed", "within
//! noise"), as criterion judges a benchmark against its baseline; and the `--fail-on` bounds
//! a CI job gates on.

use std::fmt;
use std::str::FromStr;

use anyhow::ensure;

use super::{Better, Figure, ModeResult, Results};
use crate::event::Mode;

/// What a change amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Better, beyond the noise of both runs.
    Improved,
    /// Worse, beyond the noise of both runs.
    Regressed,
    /// Inside the noise of one run or the other.
    WithinNoise,
    /// Neither run was repeated, so there is no noise to judge the change against.
    NotJudged,
}

impl Verdict {
    /// In words.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::WithinNoise => "within noise",
            Verdict::NotJudged => "not judged (one run each)",
        }
    }
}

/// One figure of one mode, before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The sweep point's label, or empty.
    pub point: String,
    /// The mode.
    pub mode: Mode,
    /// The figure.
    pub figure: Figure,
    /// Its value in the base: the median over repetitions where there were several.
    pub base: f64,
    /// Its value in the new results, likewise.
    pub new: f64,
    /// The verdict.
    pub verdict: Verdict,
}

impl Change {
    /// `new − base`.
    pub fn delta(&self) -> f64 {
        self.new - self.base
    }

    /// `(new − base) / base`; None when the base is zero or either side is infinite.
    pub fn relative(&self) -> Option<f64> {
        (self.base != 0.0 && self.base.is_finite() && self.new.is_finite()).then(|| self.delta() / self.base)
    }
}

/// Everything `compare` found.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Every figure of every mode both results ran.
    pub changes: Vec<Change>,
    /// Modes (with their point) that only one side ran: `(point, mode, "base" or "new")`.
    pub unmatched: Vec<(String, Mode, &'static str)>,
    /// Where the two ran on different machines: what differs, in words.
    pub machines_differ: Option<String>,
}

/// Compares `new` against `base`. Results of different scenarios (other than seed and
/// repetitions) are refused.
pub fn compare(base: &Results, new: &Results) -> anyhow::Result<Comparison> {
    ensure!(
        super::merge::same_scenario(&base.scenario, &new.scenario),
        "the base ran scenario `{}` and the new results `{}` (or the same name with other settings): compare \
         needs two runs of the same scenario (the seed and the repetitions may differ)",
        base.scenario.name,
        new.scenario.name
    );
    let groups = |r: &Results| -> Vec<(String, Vec<ModeResult>)> {
        if r.points.is_empty() {
            vec![(String::new(), r.modes.clone())]
        } else {
            r.points
                .iter()
                .map(|p| (p.label.clone(), p.modes.clone()))
                .collect()
        }
    };
    let (b_groups, n_groups) = (groups(base), groups(new));
    let mut changes = Vec::new();
    let mut unmatched = Vec::new();
    for (label, b_modes) in &b_groups {
        let n_modes = n_groups
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, m)| m.as_slice())
            .unwrap_or(&[]);
        for b in b_modes {
            let Some(n) = n_modes.iter().find(|n| n.mode == b.mode) else {
                unmatched.push((label.clone(), b.mode, "base"));
                continue;
            };
            for f in Figure::ALL {
                let (Some(bv), Some(nv)) = (f.headline(b), f.headline(n)) else {
                    continue;
                };
                changes.push(Change {
                    point: label.clone(),
                    mode: b.mode,
                    figure: f,
                    base: bv,
                    new: nv,
                    verdict: judge(f, b, n),
                });
            }
        }
    }
    for (label, n_modes) in &n_groups {
        let b_modes = b_groups
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, m)| m.as_slice())
            .unwrap_or(&[]);
        for n in n_modes
            .iter()
            .filter(|n| !b_modes.iter().any(|b| b.mode == n.mode))
        {
            unmatched.push((label.clone(), n.mode, "new"));
        }
    }
    Ok(Comparison {
        changes,
        unmatched,
        machines_differ: machines_differ(base, new),
    })
}

/// Beyond noise when the base's band and the new one's do not overlap and the change is
/// larger than [`super::spread::NOISE_THRESHOLD`]; where only one side was repeated, when the
/// other's value lies outside its band.
fn judge(f: Figure, b: &ModeResult, n: &ModeResult) -> Verdict {
    let band = |m: &ModeResult| m.spread.get(&f).map(|s| s.band());
    let (lo_b, hi_b, lo_n, hi_n) = match (band(b), band(n)) {
        (Some(x), Some(y)) => (x.low, x.high, y.low, y.high),
        (Some(x), None) => {
            let v = f.headline(n).unwrap_or(f64::NAN);
            (x.low, x.high, v, v)
        }
        (None, Some(y)) => {
            let v = f.headline(b).unwrap_or(f64::NAN);
            (v, v, y.low, y.high)
        }
        (None, None) => return Verdict::NotJudged,
    };
    // Criterion's noise threshold: a change under 1% is no change, however tight the bands.
    let (bv, nv) = (
        f.headline(b).unwrap_or(f64::NAN),
        f.headline(n).unwrap_or(f64::NAN),
    );
    let big = (nv - bv).abs() > super::spread::NOISE_THRESHOLD * bv.abs().max(nv.abs());
    let went_up = lo_n > hi_b && big;
    let went_down = hi_n < lo_b && big;
    match (went_up, went_down, f.better()) {
        (true, _, Better::Lower) | (_, true, Better::Higher) => Verdict::Regressed,
        (true, _, Better::Higher) | (_, true, Better::Lower) => Verdict::Improved,
        _ => Verdict::WithinNoise,
    }
}

fn machines_differ(base: &Results, new: &Results) -> Option<String> {
    let (a, b) = (&base.environment, &new.environment);
    let mut diffs = Vec::new();
    if a.hostname != b.hostname {
        diffs.push(format!("host {} vs {}", a.hostname, b.hostname));
    }
    if a.cpu_model != b.cpu_model {
        diffs.push(format!("CPU {} vs {}", a.cpu_model, b.cpu_model));
    }
    if a.cores != b.cores {
        diffs.push(format!("{} vs {} cores", a.cores, b.cores));
    }
    if a.os != b.os {
        diffs.push(format!("{} vs {}", a.os, b.os));
    }
    (!diffs.is_empty()).then(|| diffs.join("; "))
}

/// A bound a CI job gates on: fail when `figure` regressed (beyond noise) by more than
/// `amount`, relative (`latency.p99>10%`) or in the figure's own unit (`latency.p99>2`, ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailOn {
    /// The figure.
    pub figure: Figure,
    /// The bound.
    pub amount: f64,
    /// Whether `amount` is a share of the base (written with `%`).
    pub relative: bool,
}

impl FromStr for FailOn {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (figure, bound) = s.split_once('>').ok_or_else(|| {
            format!("expected FIGURE>BOUND such as latency.p99>10% or requests_per_event>0.2, found {s:?}")
        })?;
        let figure: Figure = figure.trim().parse()?;
        let bound = bound.trim();
        let (number, relative) = match bound.strip_suffix('%') {
            Some(n) => (n, true),
            None => (bound, false),
        };
        let amount: f64 = number
            .trim()
            .parse()
            .map_err(|_| format!("the bound of {s:?} is not a number (write 10% or 0.5)"))?;
        if !(amount.is_finite() && amount >= 0.0) {
            return Err(format!("the bound of {s:?} must be zero or more"));
        }
        Ok(FailOn {
            figure,
            amount: if relative { amount / 100.0 } else { amount },
            relative,
        })
    }
}

impl fmt::Display for FailOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.relative {
            write!(f, "{}>{}%", self.figure, self.amount * 100.0)
        } else {
            write!(f, "{}>{}", self.figure, self.amount)
        }
    }
}

impl FailOn {
    /// Whether `c` breaks this bound: a regression beyond noise of this figure, larger than
    /// the bound.
    pub fn broken_by(&self, c: &Change) -> bool {
        if c.figure != self.figure || c.verdict != Verdict::Regressed {
            return false;
        }
        let size = if self.relative {
            c.relative().map_or(f64::INFINITY, f64::abs)
        } else {
            c.delta().abs()
        };
        size > self.amount
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::FigureSpread;

    fn quickstart() -> Results {
        crate::results::one_run_fixture()
    }

    /// Gives every figure of every mode of `r` a spread: its own value scaled by each factor
    /// in `scale`, one per repetition.
    fn repeated(mut r: Results, scale: &[f64]) -> Results {
        for m in &mut r.modes {
            for f in Figure::ALL {
                if let Some(v) = f.of(m) {
                    let values: Vec<f64> = scale.iter().map(|k| v * k).collect();
                    m.spread.insert(f, FigureSpread::of(&values, 1).unwrap());
                }
            }
        }
        r
    }

    fn find(c: &Comparison, mode: Mode, f: Figure) -> &Change {
        c.changes
            .iter()
            .find(|c| c.mode == mode && c.figure == f)
            .unwrap()
    }

    #[test]
    fn a_planted_regression_is_found_and_noise_is_not() {
        let noise = [0.97, 1.0, 1.03];
        let base = repeated(quickstart(), &noise);
        let mut new = quickstart();
        // Poll's p99 30% worse; sse's CPU 2% better, inside the ±3% noise.
        let poll = new.modes.iter_mut().find(|m| m.mode == Mode::Poll).unwrap();
        let p99 = Figure::LatencyP99.of(poll).unwrap();
        let sse = new.modes.iter().find(|m| m.mode == Mode::Sse).unwrap();
        let sse_cpu = Figure::CpuMsPer1k.of(sse).unwrap();
        let mut new = repeated(new, &noise);
        let poll = new.modes.iter_mut().find(|m| m.mode == Mode::Poll).unwrap();
        poll.spread.insert(
            Figure::LatencyP99,
            FigureSpread::of(&noise.map(|k| p99 * 1.3 * k), 1).unwrap(),
        );
        let sse = new.modes.iter_mut().find(|m| m.mode == Mode::Sse).unwrap();
        sse.spread.insert(
            Figure::CpuMsPer1k,
            FigureSpread::of(&noise.map(|k| sse_cpu * 0.98 * k), 1).unwrap(),
        );
        let c = compare(&base, &new).unwrap();
        let regressed = find(&c, Mode::Poll, Figure::LatencyP99);
        assert_eq!(regressed.verdict, Verdict::Regressed);
        assert!(
            (regressed.relative().unwrap() - 0.3).abs() < 1e-9,
            "{regressed:?}"
        );
        assert_eq!(
            find(&c, Mode::Sse, Figure::CpuMsPer1k).verdict,
            Verdict::WithinNoise
        );
        assert_eq!(
            find(&c, Mode::Sse, Figure::LatencyP50).verdict,
            Verdict::WithinNoise
        );
        assert!(c.machines_differ.is_none() && c.unmatched.is_empty());

        // The gate: 10% on p99 trips, 50% does not, and a bound on another figure does not.
        let gate = |s: &str| {
            c.changes
                .iter()
                .any(|ch| s.parse::<FailOn>().unwrap().broken_by(ch))
        };
        assert!(gate("latency.p99>10%"));
        assert!(!gate("latency.p99>50%"));
        assert!(!gate("cpu_ms_per_1k>1%"));
        // Absolute, in ms: the regression is 30% of poll's p99 (about 300 ms).
        assert!(gate(&format!("latency.p99>{}", p99 * 0.2)));
        assert!(!gate(&format!("latency.p99>{}", p99 * 0.4)));

        // A throughput that went down is a regression, one that went up an improvement.
        let mut faster = new.clone();
        let poll = faster.modes.iter_mut().find(|m| m.mode == Mode::Poll).unwrap();
        let dps = Figure::DeliveriesPerSecond.of(poll).unwrap();
        poll.spread.insert(
            Figure::DeliveriesPerSecond,
            FigureSpread::of(&noise.map(|k| dps * 1.5 * k), 1).unwrap(),
        );
        let c = compare(&base, &faster).unwrap();
        assert_eq!(
            find(&c, Mode::Poll, Figure::DeliveriesPerSecond).verdict,
            Verdict::Improved
        );
    }

    #[test]
    fn single_runs_are_not_judged_and_other_scenarios_are_refused() {
        let c = compare(&quickstart(), &quickstart()).unwrap();
        assert!(c.changes.iter().all(|c| c.verdict == Verdict::NotJudged));
        let mut other = quickstart();
        other.scenario.name = "chat".into();
        let err = compare(&quickstart(), &other).unwrap_err().to_string();
        assert!(err.contains("same scenario"), "{err}");
        let mut seeded = quickstart();
        seeded.scenario.seed += 1;
        seeded.scenario.repeat = 5;
        seeded.environment.hostname = "elsewhere".into();
        seeded.modes.pop();
        let c = compare(&quickstart(), &seeded).unwrap();
        assert_eq!(c.unmatched, vec![(String::new(), Mode::Webhook, "base")]);
        assert!(c.machines_differ.unwrap().contains("elsewhere"));
    }

    #[test]
    fn fail_on_bounds_parse_or_say_why_not() {
        let f: FailOn = "latency.p99>10%".parse().unwrap();
        assert_eq!((f.figure, f.amount, f.relative), (Figure::LatencyP99, 0.1, true));
        let f: FailOn = "requests_per_event > 0.2".parse().unwrap();
        assert_eq!((f.amount, f.relative), (0.2, false));
        assert!("latency.p99"
            .parse::<FailOn>()
            .unwrap_err()
            .contains("FIGURE>BOUND"));
        assert!("latency.p42>1%"
            .parse::<FailOn>()
            .unwrap_err()
            .contains("no figure"));
        assert!("latency.p99>ten%"
            .parse::<FailOn>()
            .unwrap_err()
            .contains("not a number"));
    }
}
