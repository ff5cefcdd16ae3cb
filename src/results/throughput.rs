//! The rate a mode sustained: what it delivered per second once deliveries flowed, read off
//! its time series. Deliveries per second over the window says less for a sender that fell
//! behind: its window starts with the warm-up's backlog and its drain ends with a tail.

use super::spread::{bootstrap_median, median, Interval};
use super::{ModeResult, Sample};

/// The per-second delivery rates a mode sustained and their median.
#[derive(Debug, Clone, PartialEq)]
pub struct Sustained {
    /// The median per-second rate.
    pub median: f64,
    /// A 95% bootstrap interval of that median.
    pub interval: Interval,
    /// How many whole intervals it was read from.
    pub seconds: usize,
}

/// Deliveries per second in each whole sampling interval between a run's first delivery and
/// its last (the partial intervals at both ends left out), every repetition's together.
pub fn per_second(timeseries: &[Sample]) -> Vec<f64> {
    let mut rates = Vec::new();
    for samples in Sample::by_source(timeseries) {
        let Some(first) = samples.iter().position(|s| s.delivered > 0) else {
            continue;
        };
        let Some(last) = samples.windows(2).rposition(|w| w[1].delivered > w[0].delivered) else {
            continue;
        };
        // Interval i spans samples i and i + 1: the first whole one starts at `first`. The
        // last one with a delivery (from `last` to `last + 1`) is partial when deliveries
        // stopped in it, which a later sample without one shows; one the series ends with
        // is whole.
        let end = if last + 2 < samples.len() { last } else { last + 1 };
        rates.extend(
            samples[first..=end]
                .windows(2)
                .filter(|w| w[1].t_s > w[0].t_s)
                .map(|w| (w[1].delivered - w[0].delivered) as f64 / (w[1].t_s - w[0].t_s)),
        );
    }
    rates
}

/// Whether a mode fell behind the events: a mode that keeps up leaves the drain the
/// deliveries of its last mean latency (`latency_mean_ms`, its theory's), one that fell
/// behind much more. True when the drain got over a tenth of the `delivered` and over twice
/// what keeping up leaves it, which is returned beside.
pub fn fell_behind(
    delivered: u64,
    in_drain: u64,
    latency_mean_ms: f64,
    measured_seconds: f64,
) -> (bool, f64) {
    let keeping_up = delivered as f64 * (latency_mean_ms / 1000.0 / measured_seconds).min(1.0);
    let behind = measured_seconds > 0.0 && in_drain * 10 > delivered && in_drain as f64 > 2.0 * keeping_up;
    (behind, keeping_up)
}

/// The rate a mode sustained, when its time series holds at least three whole seconds of
/// deliveries.
pub fn sustained(timeseries: &[Sample]) -> Option<Sustained> {
    let rates = per_second(timeseries);
    (rates.len() >= 3).then(|| Sustained {
        median: median(&rates),
        interval: bootstrap_median(&rates, 1),
        seconds: rates.len(),
    })
}

/// What a mode was offered and what it sustained, read off one result (its repetitions
/// together).
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    /// The deliveries the window's events owed, per second of it (repetitions add their
    /// windows up, as they do their deliveries).
    pub offered: f64,
    /// The rate it sustained, when it held three whole seconds of deliveries.
    pub rate: Option<Sustained>,
    /// It fell behind the events (see [`fell_behind`]) in most of its repetitions.
    pub behind: bool,
}

impl Throughput {
    /// `m`'s.
    pub fn of(m: &ModeResult) -> Throughput {
        let runs: Vec<&ModeResult> = if m.repetitions.is_empty() {
            vec![m]
        } else {
            m.repetitions.iter().collect()
        };
        let behind = runs
            .iter()
            .filter(|r| {
                let (delivered, in_drain) = (r.deliveries.delivered, r.drain.deliveries);
                fell_behind(delivered, in_drain, r.theory.latency_mean_ms, r.measured_seconds).0
            })
            .count();
        Throughput {
            offered: if m.measured_seconds > 0.0 {
                m.deliveries.expected as f64 / m.measured_seconds
            } else {
                0.0
            },
            rate: sustained(&m.timeseries),
            behind: behind * 2 > runs.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_s: f64, delivered: u64) -> Sample {
        Sample {
            t_s,
            delivered,
            ..Sample::default()
        }
    }

    #[test]
    fn the_partial_seconds_at_both_ends_are_left_out() {
        // Nothing for two seconds, a partial second of 300, four seconds of 1,000, 600 in a
        // partial last second, then nothing.
        let counts = [0, 0, 300, 1300, 2300, 3300, 4300, 4900, 4900, 4900];
        let samples: Vec<Sample> = counts.iter().enumerate().map(|(i, c)| at(i as f64, *c)).collect();
        assert_eq!(per_second(&samples), vec![1000.0; 4]);
        let s = sustained(&samples).unwrap();
        assert_eq!((s.median, s.seconds), (1000.0, 4));
    }

    #[test]
    fn a_series_that_ends_while_deliveries_flow_ends_on_a_whole_second() {
        let counts = [0, 300, 1300, 2300, 3300];
        let samples: Vec<Sample> = counts.iter().enumerate().map(|(i, c)| at(i as f64, *c)).collect();
        assert_eq!(per_second(&samples), vec![1000.0; 3]);
    }

    #[test]
    fn repetitions_are_read_each_on_its_own() {
        let one = [0, 100, 1100, 2100, 2500, 2500];
        let two = [0, 50, 2050, 4050, 4100, 4100];
        let mut samples: Vec<Sample> = one.iter().enumerate().map(|(i, c)| at(i as f64, *c)).collect();
        samples.extend(two.iter().enumerate().map(|(i, c)| Sample {
            source: 1,
            ..at(i as f64, *c)
        }));
        assert_eq!(per_second(&samples), vec![1000.0, 1000.0, 2000.0, 2000.0]);
        assert!(sustained(&samples).is_some());
        samples.truncate(6);
        assert_eq!(sustained(&samples), None, "two whole seconds are too few");
    }
}
