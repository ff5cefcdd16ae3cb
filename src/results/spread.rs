//! How far a figure moved across the repetitions of a mode: its median, its range (min–max)
//! and, with five repetitions or more, a bootstrap 95% interval of the median. Repetitions
//! run the same seeded schedule, so the spread is the machine's noise, not the workload's.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Figure, ModeResult};

/// A change smaller than this share of the figure is no change, however tight the spreads
/// (criterion's noise threshold): a window measured a few microseconds longer moves a rate
/// by a millionth, which non-overlapping zero-width bands would otherwise call a change.
pub const NOISE_THRESHOLD: f64 = 0.01;

/// Whether the spreads `a` and `b` of one figure tell `a` below `b`: their bands do not
/// overlap, and their medians lie further apart than [`NOISE_THRESHOLD`].
pub fn clearly_below(a: &FigureSpread, b: &FigureSpread) -> bool {
    a.band().high < b.band().low && b.median - a.median > NOISE_THRESHOLD * b.median.abs().max(a.median.abs())
}

/// Repetitions from which the median gets a bootstrap interval.
pub const BOOTSTRAP_FROM: usize = 5;
/// Resamples the bootstrap draws.
pub const RESAMPLES: usize = 10_000;

/// One figure over the repetitions. Values may be infinite (a latency percentile beyond the
/// drain); JSON writes those as `null`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FigureSpread {
    /// Repetitions.
    pub n: usize,
    /// Their median.
    #[serde(with = "super::finite_or_null")]
    pub median: f64,
    /// The smallest.
    #[serde(with = "super::finite_or_null")]
    pub min: f64,
    /// The largest.
    #[serde(with = "super::finite_or_null")]
    pub max: f64,
    /// With [`BOOTSTRAP_FROM`] repetitions or more: a percentile-bootstrap 95% interval of
    /// the median.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<Interval>,
}

/// A closed interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    #[serde(with = "super::finite_or_null")]
    pub low: f64,
    /// Upper end.
    #[serde(with = "super::finite_or_null")]
    pub high: f64,
}

impl Interval {
    /// Whether the two share any point.
    pub fn overlaps(&self, o: &Interval) -> bool {
        self.low <= o.high && o.low <= self.high
    }
}

impl FigureSpread {
    /// The spread of `values` (one per repetition); None for no values. `seed` makes the
    /// bootstrap repeatable.
    pub fn of(values: &[f64], seed: u64) -> Option<FigureSpread> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(FigureSpread {
            n: values.len(),
            median: median_of_sorted(&sorted),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            ci95: (values.len() >= BOOTSTRAP_FROM).then(|| bootstrap_median(values, seed)),
        })
    }

    /// Where the figure lies as far as the repetitions can tell: the bootstrap interval where
    /// there is one, else min–max. Two figures whose bands overlap are within noise.
    pub fn band(&self) -> Interval {
        self.ci95.unwrap_or(Interval {
            low: self.min,
            high: self.max,
        })
    }

    /// Half of `max − min`: the `±` the table prints.
    pub fn half_range(&self) -> f64 {
        (self.max - self.min) / 2.0
    }
}

/// The median of `values`.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    median_of_sorted(&sorted)
}

fn median_of_sorted(s: &[f64]) -> f64 {
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// A percentile-bootstrap 95% interval of the median of `values`: the 2.5th and 97.5th
/// percentiles of the medians of 10,000 resamples drawn with replacement.
pub fn bootstrap_median(values: &[f64], seed: u64) -> Interval {
    bootstrap_median_of(values, seed, RESAMPLES)
}

fn bootstrap_median_of(values: &[f64], seed: u64, resamples: usize) -> Interval {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sample = vec![0.0; values.len()];
    let mut medians: Vec<f64> = (0..resamples)
        .map(|_| {
            for v in sample.iter_mut() {
                *v = values[rng.gen_range(0..values.len())];
            }
            sample.sort_by(f64::total_cmp);
            median_of_sorted(&sample)
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    Interval {
        low: medians[resamples * 25 / 1000],
        high: medians[resamples * 975 / 1000 - 1],
    }
}

/// Every headline figure's spread over `reps` (the repetitions of one mode); a figure missing
/// from any repetition is left out.
pub fn spreads(reps: &[ModeResult]) -> BTreeMap<Figure, FigureSpread> {
    Figure::ALL
        .into_iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let values: Option<Vec<f64>> = reps.iter().map(|m| f.of(m)).collect();
            Some((f, FigureSpread::of(&values?, 0x5EED_0000 + i as u64)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Normal};

    #[test]
    fn median_and_range_of_constructed_samples() {
        let s = FigureSpread::of(&[3.0, 100.0, 1.0, 4.0, 2.0], 1).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (3.0, 1.0, 100.0, 5));
        assert_eq!(s.half_range(), 49.5);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        let three = FigureSpread::of(&[1.0, 2.0, 3.0], 1).unwrap();
        assert!(three.ci95.is_none(), "no interval below five repetitions");
        assert_eq!(three.band(), Interval { low: 1.0, high: 3.0 });
        assert!(FigureSpread::of(&[], 1).is_none());
    }

    #[test]
    fn an_infinite_value_sorts_last_and_survives_json() {
        let s = FigureSpread::of(&[5.0, f64::INFINITY, 4.0], 1).unwrap();
        assert_eq!((s.median, s.max), (5.0, f64::INFINITY));
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"max\":null"), "{json}");
        assert_eq!(serde_json::from_str::<FigureSpread>(&json).unwrap(), s);
    }

    #[test]
    fn the_bootstrap_interval_holds_the_median_inside_the_range() {
        let v = [10.0, 12.0, 11.0, 30.0, 9.0, 10.5, 11.5];
        let s = FigureSpread::of(&v, 7).unwrap();
        let ci = s.ci95.unwrap();
        assert!(ci.low <= s.median && s.median <= ci.high, "{s:?}");
        assert!(s.min <= ci.low && ci.high <= s.max, "{s:?}");
        // The outlier does not drag the interval of the median up to it.
        assert!(ci.high < 30.0, "{s:?}");
        assert_eq!(
            FigureSpread::of(&v, 7),
            Some(s),
            "the same seed, the same interval"
        );
    }

    /// Independent check: over many samples of 15 from a normal distribution, the interval
    /// should hold the true median about 95% of the time. With 15 values the bootstrap of a
    /// median is discrete and errs on the generous side; accept 90–99%.
    #[test]
    fn the_bootstrap_interval_covers_the_true_median_about_95_percent_of_the_time() {
        let normal = Normal::new(50.0, 5.0).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        // 2,000 resamples instead of 10,000 keep the test quick; the interval is the same
        // percentile construction.
        let trials = 300;
        let covered = (0..trials)
            .filter(|&t| {
                let v: Vec<f64> = (0..15).map(|_| normal.sample(&mut rng)).collect();
                let ci = bootstrap_median_of(&v, t, 2_000);
                ci.low <= 50.0 && 50.0 <= ci.high
            })
            .count();
        let share = covered as f64 / trials as f64;
        assert!((0.90..=0.99).contains(&share), "coverage {share}");
    }
}
