//! A model run second by second, for the fault timeline: the measured deliveries that arrived
//! and the webhook retries sent in each second, and the latency of the events scheduled in
//! each, as a measured run samples them. Kept only when the scenario has faults (the only
//! chart of a simulation that draws them), so a run without pays nothing for it.

use hdrhistogram::Histogram;

use crate::results::histogram::new_coarse_histogram;
use crate::results::{LatencyPoint, Sample};

const SECOND: u64 = 1_000_000_000;

/// Per second since the schedule started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// Measured first deliveries that arrived in each second.
    delivered: Vec<u64>,
    /// Webhook attempts after a message's first, sent in each second.
    retries: Vec<u64>,
    /// Latency (µs) of the delivered events scheduled in each second.
    latency: Vec<Histogram<u64>>,
}

fn at<T>(v: &mut Vec<T>, i: usize, fresh: impl Fn() -> T) -> &mut T {
    if v.len() <= i {
        v.resize_with(i + 1, fresh);
    }
    &mut v[i]
}

impl Timeline {
    /// An event scheduled at `scheduled` ns arrived at `arrives` ns, `us` later.
    pub fn arrived(&mut self, scheduled: u64, arrives: u64, us: u64) {
        *at(&mut self.delivered, (arrives / SECOND) as usize, || 0) += 1;
        at(
            &mut self.latency,
            (scheduled / SECOND) as usize,
            new_coarse_histogram,
        )
        .saturating_record(us);
    }

    /// A retry went out at `sent` ns.
    pub fn retried(&mut self, sent: u64) {
        *at(&mut self.retries, (sent / SECOND) as usize, || 0) += 1;
    }

    /// One sample at each whole second from the start to the last second anything happened
    /// in, each counter what had happened before it, as a measured run's sampler reads them.
    pub fn samples(&self) -> Vec<Sample> {
        let seconds = self.delivered.len().max(self.retries.len());
        let (mut delivered, mut retries) = (0, 0);
        let mut out = Vec::with_capacity(seconds + 1);
        for s in 0..=seconds {
            out.push(Sample {
                t_s: s as f64,
                delivered,
                webhook_retries: retries,
                ..Sample::default()
            });
            delivered += self.delivered.get(s).copied().unwrap_or(0);
            retries += self.retries.get(s).copied().unwrap_or(0);
        }
        out
    }

    /// The latency of the events scheduled in each second.
    pub fn latency(&self) -> Vec<LatencyPoint> {
        LatencyPoint::by_second(&self.latency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_second_counts_what_happened_in_it_and_samples_add_up_before_them() {
        let mut t = Timeline::default();
        t.arrived(100, SECOND / 2, 10); // scheduled in second 0, arrived in it
        t.arrived(SECOND + 5, 2 * SECOND + 1, 20); // scheduled in 1, arrived in 2
        t.arrived(SECOND + 9, 2 * SECOND + 2, 40);
        t.retried(3 * SECOND);
        let s = t.samples();
        let counts: Vec<(f64, u64, u64)> = s
            .iter()
            .map(|s| (s.t_s, s.delivered, s.webhook_retries))
            .collect();
        assert_eq!(
            counts,
            [(0.0, 0, 0), (1.0, 1, 0), (2.0, 1, 0), (3.0, 3, 0), (4.0, 3, 1)]
        );
        let l = t.latency();
        assert_eq!(
            l.iter().map(|p| (p.t_s, p.count)).collect::<Vec<_>>(),
            [(0.0, 1), (1.0, 2)]
        );
        assert!((l[1].max_ms - 0.04).abs() < 0.001, "{l:?}");
    }
}
