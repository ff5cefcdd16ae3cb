//! The latency histograms every producer and reader of results shares: microseconds, their
//! bounds and precision.

use hdrhistogram::Histogram;

/// Latency histograms hold microseconds from 1 µs to 1 h at 3 significant digits.
pub const HIST_MAX_US: u64 = 3_600_000_000;

/// A fresh latency histogram.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// A coarser histogram (2 significant digits, ~1% error) for the many small ones: per second
/// of the run and per fault window.
pub fn new_coarse_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 2).expect("valid histogram bounds")
}
