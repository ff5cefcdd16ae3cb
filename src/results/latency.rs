//! Latency percentiles in milliseconds, with the histogram they came from (so runs merge
//! exactly), and latency over the run, second by second.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency of the events scheduled in one second of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyPoint {
    /// Start of the second, since the generator started.
    pub t_s: f64,
    /// Deliveries.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

impl LatencyPoint {
    /// A point for each second's histogram (µs) that holds any delivery, at that second.
    pub fn by_second(histograms: &[Histogram<u64>]) -> Vec<LatencyPoint> {
        let ms = |us: u64| us as f64 / 1000.0;
        histograms
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.is_empty())
            .map(|(second, h)| LatencyPoint {
                t_s: second as f64,
                count: h.len(),
                p50_ms: ms(h.value_at_quantile(0.5)),
                p99_ms: ms(h.value_at_quantile(0.99)),
                max_ms: ms(h.max()),
            })
            .collect()
    }
}

/// Percentiles of a latency histogram, in milliseconds, and the histogram itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// The histogram (microseconds), HdrHistogram V2 encoding in base64, for merging runs.
    pub histogram: String,
}

impl LatencySummary {
    /// Samples a p99.9 (and the maximum, the tail's last word) needs before it is shown.
    pub const TAIL_SAMPLES: u64 = 1_000;

    /// Whether the sample is large enough to show the `q` quantile: at least `1 / (1 − q)`
    /// samples, so that some stand beyond it (100 for a p99, 1,000 for a p99.9).
    pub fn supports(&self, q: f64) -> bool {
        q <= 0.5 || self.count >= Self::samples_for(q)
    }

    /// The samples the `q` quantile needs to be shown, past the median: `1 / (1 − q)`.
    pub fn samples_for(q: f64) -> u64 {
        (1.0 / (1.0 - q)).round() as u64
    }

    /// Summarizes a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1000.0;
        let q = |p: f64| {
            if h.is_empty() {
                0.0
            } else {
                ms(h.value_at_quantile(p))
            }
        };
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(h, &mut bytes)
            .expect("serializing to memory");
        LatencySummary {
            count: h.len(),
            mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
            histogram: B64.encode(bytes),
        }
    }

    /// Decodes the stored histogram.
    pub fn decode_histogram(&self) -> anyhow::Result<Histogram<u64>> {
        let bytes = B64.decode(&self.histogram)?;
        Ok(Deserializer::new().deserialize(&mut bytes.as_slice())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_summary_round_trips_its_histogram() {
        let mut h = crate::results::histogram::new_histogram();
        for us in [100, 200, 300, 400, 100_000] {
            h.record(us).unwrap();
        }
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 5);
        assert!((s.p50_ms - 0.3).abs() < 0.001, "{}", s.p50_ms);
        assert!((s.max_ms - 100.0).abs() < 0.1);
        let back = s.decode_histogram().unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
    }
}
