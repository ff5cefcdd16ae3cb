//! Thresholds checked against a run: each `[thresholds]` entry's measured value and whether
//! it held. The report lists them, and `pushpull run` exits with code 3 when one fails; a
//! threshold on a metric with no data fails.

use serde::{Deserialize, Serialize};

use crate::results::{Figure, LatencySummary, ModeResult, Results};
use crate::scenario::thresholds::{Metric, Number, Stat};

/// The measured value of `metric`, or None when the mode has no data for it.
pub fn value(metric: Metric, m: &ModeResult) -> Option<f64> {
    let stat = |l: &LatencySummary, st: Stat| {
        (l.count > 0).then_some(match st {
            Stat::P50 => l.p50_ms,
            Stat::P90 => l.p90_ms,
            Stat::P99 => l.p99_ms,
            Stat::P999 => l.p999_ms,
            Stat::Max => l.max_ms,
            Stat::Mean => l.mean_ms,
        })
    };
    let (s, d) = (&m.server, &m.deliveries);
    let per_delivery = |v: f64| (d.delivered > 0).then_some(v);
    match metric {
        Metric::Latency(st) => stat(&m.latency, st),
        Metric::LatencyFromEmission(st) => stat(&m.latency_from_emission, st),
        Metric::Number(n) => match n {
            Number::EmptyShare => (s.requests > 0).then_some(s.empty_share),
            Number::RequestsPerDelivery => per_delivery(s.requests_per_delivery),
            Number::RequestsPerSecond => Some(s.requests_per_second),
            Number::BytesPerDelivery => per_delivery(s.bytes_per_delivery),
            Number::CpuSecondsPer1kDeliveries => per_delivery(s.cpu_seconds_per_1k_deliveries),
            Number::PeakConnections => Some(s.peak_connections as f64),
            Number::MemoryPerClientBytes => Some(s.memory_per_client_bytes),
            Number::DeliveriesPerSecond => Some(m.deliveries_per_second),
            Number::Delivered => Some(d.delivered as f64),
            Number::Lost => Some(d.lost as f64),
            Number::Duplicates => Some(d.duplicates as f64),
            Number::OutOfOrder => Some(d.out_of_order as f64),
            Number::DeadLetters => Some(d.dead_letters as f64),
            // Results written before the accounting existed have no data for these.
            Number::Late => (m.outcomes.expected > 0).then_some(m.outcomes.late as f64),
            Number::DeadLettered => (m.outcomes.expected > 0).then_some(m.outcomes.dead_lettered as f64),
        }
        .filter(|v| v.is_finite()),
    }
}

/// Whether the results have `metric`: a simulation's unmodelled costs have no data.
fn modelled(r: &Results, metric: Metric) -> bool {
    let figure = match metric {
        Metric::Number(Number::CpuSecondsPer1kDeliveries) => Figure::CpuMsPer1k,
        Metric::Number(Number::MemoryPerClientBytes) => Figure::MemoryPerClient,
        Metric::Number(Number::BytesPerDelivery) => Figure::BytesPerEvent,
        _ => return true,
    };
    r.has(figure)
}

/// A threshold checked against a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// `webhook.latency.p99 < 50ms`.
    pub threshold: String,
    /// The measured value (ms for latency), or None when there was no data.
    pub measured: Option<f64>,
    /// Whether it held (a threshold with no data fails).
    pub passed: bool,
    /// False when the results do not give the metric at all (a simulation's unmodelled
    /// costs): the threshold is then not judged, neither passed nor failed.
    pub judged: bool,
}

impl Outcome {
    /// Whether it counts as failed: judged, and did not hold.
    pub fn failed(&self) -> bool {
        self.judged && !self.passed
    }

    /// Its result in a word or two: "pass", "FAIL" or "not modelled".
    pub fn result(&self) -> &'static str {
        match (self.judged, self.passed) {
            (false, _) => "not modelled",
            (true, true) => "pass",
            (true, false) => "FAIL",
        }
    }
}

/// Checks every threshold of the run's scenario (at every point, for a sweep).
pub fn evaluate(r: &Results) -> Vec<Outcome> {
    if !r.points.is_empty() {
        return r
            .points
            .iter()
            .flat_map(|p| {
                evaluate(&r.point_view(p)).into_iter().map(|mut o| {
                    o.threshold = format!("[{}] {}", p.label, o.threshold);
                    o
                })
            })
            .collect();
    }
    r.scenario
        .thresholds
        .0
        .iter()
        .map(|t| {
            let judged = modelled(r, t.metric);
            let measured = r
                .modes
                .iter()
                .find(|m| m.mode == t.mode)
                .and_then(|m| value(t.metric, m))
                .filter(|_| judged);
            Outcome {
                threshold: t.to_string(),
                measured,
                passed: measured.is_some_and(|v| t.op.holds(v, t.bound)),
                judged,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::results::Simulated;
    use crate::scenario::Scenario;

    #[test]
    fn a_threshold_on_a_figure_the_model_does_not_give_is_not_judged() {
        let mut r = crate::results::one_run_fixture();
        let text = format!(
            "{}\n[thresholds]\n\"poll.cpu_seconds_per_1k_deliveries\" = \"< 0.000001\"\n\"poll.lost\" = \"== 0\"\n",
            r.scenario.to_toml()
        );
        r.scenario = Scenario::parse(Path::new("t.toml"), &text).unwrap();
        let results = |r: &Results| evaluate(r).iter().map(|o| o.result()).collect::<Vec<_>>();
        assert_eq!(results(&r), ["FAIL", "pass"], "measured, the CPU bound is judged");
        r.simulated = Some(Simulated {
            round_trip_ms: 1.0,
            jitter_ms: 0.0,
            bandwidth_mbps: None,
            not_modelled: vec![Figure::CpuMsPer1k],
            server: None,
            capacity: Vec::new(),
        });
        assert_eq!(results(&r), ["not modelled", "pass"]);
        assert!(!evaluate(&r).iter().any(Outcome::failed));
    }
}
