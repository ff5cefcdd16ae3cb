//! The one clock every timestamp that crosses a process boundary is read from.
//!
//! Server and driver run on one host, and Linux's CLOCK_MONOTONIC is system-wide, so a
//! nanosecond stamp taken in the server's generator can be subtracted from one taken in the
//! driver's client. `std::time::Instant` cannot be serialized, and the wall clock can step.

use std::time::Duration;

mod alarms;

pub use alarms::{sleep_closely_or_stop, SLACK_NS};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Nanoseconds on CLOCK_MONOTONIC, comparable across processes on the same host.
pub fn now_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Seconds since the Unix epoch, for protocol fields that want wall time (webhook timestamps).
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Sleeps for `d` unless `stop` fires first; true when stopped.
///
/// tokio's timer ticks once a millisecond, so a shorter wait would round up to a whole tick;
/// below a millisecond the task yields until the clock passes the deadline instead (intervals
/// that short are for measuring capacity, and burn driver CPU by design).
pub async fn sleep_or_stop(d: Duration, stop: &tokio_util::sync::CancellationToken) -> bool {
    if d < Duration::from_millis(1) {
        let deadline = std::time::Instant::now() + d;
        loop {
            if stop.is_cancelled() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::task::yield_now().await;
        }
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.cancelled() => true,
    }
}

/// Sleeps until the monotonic clock reads `deadline_ns` (returns at once if it has passed).
pub async fn sleep_until_ns(deadline_ns: u64) {
    let now = now_ns();
    if deadline_ns > now {
        tokio::time::sleep(Duration::from_nanos(deadline_ns - now)).await;
    }
}

/// How late something happened against its schedule, in ns: the generator's emissions, or the
/// pollers' requests against their slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lateness {
    /// Occasions behind the figures.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Largest.
    pub max_ns: u64,
}

/// A fresh histogram of lateness in ns, from 1 ns to an hour at 3 significant digits.
///
/// Bounded on purpose: `saturating_record` on an auto-resizing histogram clamps anything
/// above its (tiny) initial range instead of growing it.
pub fn lateness_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

impl Lateness {
    /// A histogram of lateness in ns, summarized (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Lateness {
        if h.is_empty() {
            return Lateness::default();
        }
        Lateness {
            count: h.len(),
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
            max_ns: h.max(),
        }
    }

    /// The worst of two summaries, for runs that cannot be pooled: counts add, percentiles
    /// become upper bounds.
    pub fn worst(self, o: Lateness) -> Lateness {
        Lateness {
            count: self.count + o.count,
            p50_ns: self.p50_ns.max(o.p50_ns),
            p99_ns: self.p99_ns.max(o.p99_ns),
            max_ns: self.max_ns.max(o.max_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_keeps_values_far_above_a_microsecond() {
        // Regression: an auto-resizing histogram with saturating_record clamped everything
        // above ~2 µs to 2 ns.
        let mut h = lateness_histogram();
        for ns in [500, 5_000, 50_000, 5_000_000] {
            h.saturating_record(ns);
        }
        let l = Lateness::of(&h);
        assert_eq!(l.count, 4);
        assert!(l.p50_ns >= 4_990 && l.p50_ns <= 5_010, "{l:?}");
        assert!(l.max_ns >= 4_990_000, "{l:?}");
    }
}
