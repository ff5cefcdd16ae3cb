//! The headline figures of a mode by name: what repetitions spread, what `compare` judges and
//! what `--fail-on` names. One definition of each, read from a [`ModeResult`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ModeResult;

/// A headline figure of one mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Figure {
    /// Median latency over every owed delivery, ms (infinite when it falls among the
    /// undelivered).
    #[serde(rename = "latency.p50")]
    LatencyP50,
    /// 99th percentile of the same, ms.
    #[serde(rename = "latency.p99")]
    LatencyP99,
    /// Requests per delivered event.
    #[serde(rename = "requests_per_event")]
    RequestsPerEvent,
    /// Share of responses that carried no event.
    #[serde(rename = "empty_share")]
    EmptyShare,
    /// HTTP bytes per delivered event.
    #[serde(rename = "bytes_per_event")]
    BytesPerEvent,
    /// TCP segments per delivered event (where the kernel's counters were read).
    #[serde(rename = "packets_per_event")]
    PacketsPerEvent,
    /// Server CPU ms per 1,000 delivered events.
    #[serde(rename = "cpu_ms_per_1k")]
    CpuMsPer1k,
    /// Server memory per client, bytes.
    #[serde(rename = "memory_per_client")]
    MemoryPerClient,
    /// First deliveries per second of the window.
    #[serde(rename = "deliveries_per_second")]
    DeliveriesPerSecond,
    /// Requests the server handled (or made) per second of the window.
    #[serde(rename = "requests_per_second")]
    RequestsPerSecond,
    /// Heartbeats the server wrote to quiet streams per second of the window (streams only,
    /// where the server counted them).
    #[serde(rename = "heartbeats_per_second")]
    HeartbeatsPerSecond,
}

/// Which way a figure gets better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Smaller is better (latency, costs).
    Lower,
    /// Larger is better (throughput).
    Higher,
}

impl Figure {
    /// Every figure, in the table's order.
    pub const ALL: [Figure; 11] = [
        Figure::LatencyP50,
        Figure::LatencyP99,
        Figure::RequestsPerEvent,
        Figure::EmptyShare,
        Figure::BytesPerEvent,
        Figure::PacketsPerEvent,
        Figure::CpuMsPer1k,
        Figure::MemoryPerClient,
        Figure::DeliveriesPerSecond,
        Figure::RequestsPerSecond,
        Figure::HeartbeatsPerSecond,
    ];

    /// Its name in results.json and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Figure::LatencyP50 => "latency.p50",
            Figure::LatencyP99 => "latency.p99",
            Figure::RequestsPerEvent => "requests_per_event",
            Figure::EmptyShare => "empty_share",
            Figure::BytesPerEvent => "bytes_per_event",
            Figure::PacketsPerEvent => "packets_per_event",
            Figure::CpuMsPer1k => "cpu_ms_per_1k",
            Figure::MemoryPerClient => "memory_per_client",
            Figure::DeliveriesPerSecond => "deliveries_per_second",
            Figure::RequestsPerSecond => "requests_per_second",
            Figure::HeartbeatsPerSecond => "heartbeats_per_second",
        }
    }

    /// Which way it gets better.
    pub fn better(self) -> Better {
        match self {
            Figure::DeliveriesPerSecond => Better::Higher,
            _ => Better::Lower,
        }
    }

    /// Its value in `m`; None where it was not measured (packets without TCP counters,
    /// heartbeats of a mode without streams or of results from before they were counted).
    /// A latency percentile that falls among the undelivered is `f64::INFINITY`.
    pub fn of(self, m: &ModeResult) -> Option<f64> {
        let s = &m.server;
        Some(match self {
            Figure::LatencyP50 => m.owed_latency_ms(0.5).unwrap_or(f64::INFINITY),
            Figure::LatencyP99 => m.owed_latency_ms(0.99).unwrap_or(f64::INFINITY),
            Figure::RequestsPerEvent => s.requests_per_delivery,
            Figure::EmptyShare => s.empty_share,
            Figure::BytesPerEvent => s.bytes_per_delivery,
            Figure::PacketsPerEvent => s.tcp.segments()? as f64 / m.window_deliveries().max(1) as f64,
            Figure::CpuMsPer1k => s.cpu_seconds_per_1k_deliveries * 1000.0,
            Figure::MemoryPerClient => s.memory_per_client_bytes,
            Figure::DeliveriesPerSecond => m.deliveries_per_second,
            Figure::RequestsPerSecond => s.requests_per_second,
            Figure::HeartbeatsPerSecond => {
                let beats = s.heartbeats? as f64;
                (m.measured_seconds > 0.0).then(|| beats / m.measured_seconds)?
            }
        })
    }
}

impl Figure {
    /// `self` of `m` as rankings and comparisons weigh it: the median over its repetitions
    /// where there were several, else its value; None where it was not measured.
    pub fn headline(self, m: &ModeResult) -> Option<f64> {
        m.spread.get(&self).map(|s| s.median).or_else(|| self.of(m))
    }

    /// One standard error of `f` in a single run, from the run's own counts where they give
    /// one: requests per event (the requests as a Poisson count), the empty share (each
    /// response empty or not: binomial), latency percentiles (the values `√(q(1−q)/n)` of rank
    /// either side of the quantile, read off the histogram, and never below its 0.1%
    /// resolution). None for CPU, bytes, memory and rates, whose noise is the machine's: only
    /// repetitions measure it.
    pub fn sampling_error(self, m: &ModeResult) -> Option<f64> {
        let requests = m.server.requests as f64;
        let delivered = m.window_deliveries().max(1) as f64;
        match self {
            Figure::RequestsPerEvent => Some(requests.sqrt() / delivered),
            Figure::EmptyShare => (requests > 0.0).then(|| {
                let p = m.server.empty_share.clamp(0.0, 1.0);
                (p * (1.0 - p) / requests).sqrt()
            }),
            Figure::LatencyP50 => quantile_error(m, 0.5),
            Figure::LatencyP99 => quantile_error(m, 0.99),
            _ => None,
        }
    }
}

/// See [`Figure::sampling_error`].
fn quantile_error(m: &ModeResult, q: f64) -> Option<f64> {
    let n = m.deliveries.expected.max(m.deliveries.delivered) as f64;
    if n < 2.0 {
        return None;
    }
    let d = (q * (1.0 - q) / n).sqrt();
    let at = m.owed_latency_ms(q)?;
    let lo = m.owed_latency_ms((q - d).max(0.0))?;
    let hi = m.owed_latency_ms((q + d).min(1.0)).unwrap_or(f64::INFINITY);
    Some(((hi - lo) / 2.0).max(at * 1e-3))
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Figure {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Figure::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            format!(
                "no figure `{s}` (figures: {})",
                Figure::ALL.map(Figure::name).join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for f in Figure::ALL {
            assert_eq!(f.name().parse::<Figure>(), Ok(f));
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{}\"", f.name()));
        }
        let err = "latency.p98".parse::<Figure>().unwrap_err();
        assert!(err.contains("latency.p99"), "{err}");
    }

    fn quickstart() -> ModeResult {
        super::super::one_run_fixture().modes.into_iter().next().unwrap()
    }

    #[test]
    fn sampling_errors_from_the_counts() {
        let mut m = quickstart();
        m.server.requests = 400;
        m.deliveries.delivered = 100;
        m.server.empty_share = 0.5;
        assert_eq!(Figure::RequestsPerEvent.sampling_error(&m), Some(20.0 / 100.0));
        assert_eq!(
            Figure::EmptyShare.sampling_error(&m),
            Some((0.25f64 / 400.0).sqrt())
        );
        assert_eq!(Figure::CpuMsPer1k.sampling_error(&m), None);
    }

    /// Independent check: the spread of the median of n uniform(0, 100) ms latencies over many
    /// seeded samples, against the error the histogram of one sample gives.
    #[test]
    fn the_median_error_matches_the_spread_of_medians() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let n = 2_000;
        let draw = |rng: &mut rand_chacha::ChaCha8Rng| -> Vec<u64> {
            (0..n).map(|_| rng.gen_range(1_000..100_000u64)).collect()
        };
        let medians: Vec<f64> = (0..300)
            .map(|_| {
                let mut v = draw(&mut rng);
                v.sort_unstable();
                v[n / 2] as f64 / 1000.0
            })
            .collect();
        let mean = medians.iter().sum::<f64>() / medians.len() as f64;
        let sd =
            (medians.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (medians.len() - 1) as f64).sqrt();
        // One sample, through the results' own histogram.
        let mut h = crate::results::histogram::new_histogram();
        for us in draw(&mut rng) {
            h.record(us).unwrap();
        }
        let mut m = quickstart();
        m.latency = super::super::LatencySummary::from_histogram(&h);
        m.deliveries.delivered = n as u64;
        m.deliveries.expected = n as u64;
        let se = Figure::LatencyP50.sampling_error(&m).unwrap();
        // Theory: 1 / (2 f √n) with f = 1/99 per ms: 1.107 ms.
        assert!((se / sd - 1.0).abs() < 0.25, "histogram {se} vs Monte-Carlo {sd}");
    }
}
