//! Thresholds for CI: `[thresholds]` in a scenario names a mode's metric and a condition
//! (`"webhook.latency.p99" = "< 50ms"`). This parses them (an unknown metric is refused when
//! the scenario is validated); [`crate::report::thresholds`] checks them against a run.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::humane;
use crate::event::Mode;

/// What a threshold can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A latency percentile (or mean/max), from the scheduled time, in ms.
    Latency(Stat),
    /// The same from the actual emission time, in ms.
    LatencyFromEmission(Stat),
    /// A plain number from the results.
    Number(Number),
}

/// Which statistic of a latency distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Largest.
    Max,
    /// Mean.
    Mean,
}

const STATS: [(&str, Stat); 6] = [
    ("p50", Stat::P50),
    ("p90", Stat::P90),
    ("p99", Stat::P99),
    ("p999", Stat::P999),
    ("max", Stat::Max),
    ("mean", Stat::Mean),
];

/// Plain numbers a threshold can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    /// Share of responses with no event (0 to 1).
    EmptyShare,
    /// Requests per delivered event.
    RequestsPerDelivery,
    /// Requests per second.
    RequestsPerSecond,
    /// Bytes on the wire per delivered event.
    BytesPerDelivery,
    /// Server CPU seconds per 1,000 delivered events.
    CpuSecondsPer1kDeliveries,
    /// Most connections open at once.
    PeakConnections,
    /// Server memory per client, bytes.
    MemoryPerClientBytes,
    /// First deliveries per second.
    DeliveriesPerSecond,
    /// Deliveries that arrived.
    Delivered,
    /// Deliveries that never arrived and are not in the dead-letter list.
    Lost,
    /// Duplicate arrivals.
    Duplicates,
    /// Arrivals out of order.
    OutOfOrder,
    /// Webhook messages given up on (the server's count, warm-up included).
    DeadLetters,
    /// Deliveries slower than `late_after`.
    Late,
    /// Owed deliveries not made, kept in the dead-letter list.
    DeadLettered,
}

const NUMBERS: [(&str, Number); 15] = [
    ("empty_share", Number::EmptyShare),
    ("requests_per_delivery", Number::RequestsPerDelivery),
    ("requests_per_second", Number::RequestsPerSecond),
    ("bytes_per_delivery", Number::BytesPerDelivery),
    ("cpu_seconds_per_1k_deliveries", Number::CpuSecondsPer1kDeliveries),
    ("peak_connections", Number::PeakConnections),
    ("memory_per_client_bytes", Number::MemoryPerClientBytes),
    ("deliveries_per_second", Number::DeliveriesPerSecond),
    ("delivered", Number::Delivered),
    ("lost", Number::Lost),
    ("duplicates", Number::Duplicates),
    ("out_of_order", Number::OutOfOrder),
    ("dead_letters", Number::DeadLetters),
    ("late", Number::Late),
    ("dead_lettered", Number::DeadLettered),
];

/// Every metric name a threshold may use after `<mode>.`.
pub fn metric_names() -> Vec<String> {
    let mut names: Vec<String> = STATS.iter().map(|(s, _)| format!("latency.{s}")).collect();
    names.extend(STATS.iter().map(|(s, _)| format!("latency_from_emission.{s}")));
    names.extend(NUMBERS.iter().map(|(n, _)| n.to_string()));
    names
}

impl Metric {
    fn parse(s: &str) -> Option<Metric> {
        if let Some(stat) = s.strip_prefix("latency.") {
            return STATS
                .iter()
                .find(|(n, _)| *n == stat)
                .map(|(_, st)| Metric::Latency(*st));
        }
        if let Some(stat) = s.strip_prefix("latency_from_emission.") {
            return STATS
                .iter()
                .find(|(n, _)| *n == stat)
                .map(|(_, st)| Metric::LatencyFromEmission(*st));
        }
        NUMBERS
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, num)| Metric::Number(*num))
    }

    fn is_latency(self) -> bool {
        !matches!(self, Metric::Number(_))
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
}

impl Op {
    /// Whether `a op b`.
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
        }
    }
}

/// One threshold, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written: `webhook.latency.p99`.
    pub name: String,
    /// As written: `< 50ms`.
    pub condition: String,
    /// The mode it checks.
    pub mode: Mode,
    /// The metric it checks.
    pub metric: Metric,
    /// The comparison.
    pub op: Op,
    /// The bound (ms for latency metrics).
    pub bound: f64,
}

impl Threshold {
    /// Parses a `"<mode>.<metric>" = "<op> <value>"` pair; the error says what was expected.
    pub fn parse(name: &str, condition: &str) -> Result<Threshold, String> {
        let (mode, metric) = Self::parse_name(name)?;
        let (op, bound) = Self::parse_condition(metric, condition)?;
        Ok(Threshold {
            name: name.to_string(),
            condition: condition.trim().to_string(),
            mode,
            metric,
            op,
            bound,
        })
    }

    /// Parses `<mode>.<metric>`.
    pub fn parse_name(name: &str) -> Result<(Mode, Metric), String> {
        let (mode, metric) = name
            .split_once('.')
            .ok_or_else(|| format!("`{name}` is not `<mode>.<metric>`"))?;
        let mode: Mode = mode.parse()?;
        let metric = Metric::parse(metric).ok_or_else(|| {
            let names = metric_names();
            let hint = crate::scenario::nearest_name(metric, &names)
                .map(|n| format!(" did you mean `{n}`?"))
                .unwrap_or_default();
            format!("unknown metric `{metric}`.{hint} Metrics: {}", names.join(", "))
        })?;
        Ok((mode, metric))
    }

    /// Parses `<op> <value>` for `metric` (a duration for latency metrics, else a number).
    pub fn parse_condition(metric: Metric, condition: &str) -> Result<(Op, f64), String> {
        let c = condition.trim();
        let (op, rest) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(t, op)| c.strip_prefix(t).map(|rest| (*op, rest.trim())))
        .ok_or_else(|| format!("condition `{c}` must start with <, <=, >, >= or =="))?;
        let bound = if metric.is_latency() {
            humane::parse(rest)
                .map_err(|e| format!("a latency bound is a duration: {e}"))?
                .as_secs_f64()
                * 1000.0
        } else {
            rest.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("`{rest}` is not a number"))?
        };
        Ok((op, bound))
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.condition)
    }
}

/// A scenario's thresholds; (de)serialized as the table of strings it is written as.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>", into = "BTreeMap<String, String>")]
pub struct Thresholds(pub Vec<Threshold>);

impl Thresholds {
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<BTreeMap<String, String>> for Thresholds {
    type Error = String;
    fn try_from(map: BTreeMap<String, String>) -> Result<Self, String> {
        map.iter()
            .map(|(k, v)| Threshold::parse(k, v))
            .collect::<Result<Vec<_>, _>>()
            .map(Thresholds)
    }
}

impl From<Thresholds> for BTreeMap<String, String> {
    fn from(t: Thresholds) -> Self {
        t.0.into_iter().map(|t| (t.name, t.condition)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_latency_and_number_thresholds() {
        let t = Threshold::parse("webhook.latency.p99", "< 50ms").unwrap();
        assert_eq!(
            (t.mode, t.metric, t.op, t.bound),
            (Mode::Webhook, Metric::Latency(Stat::P99), Op::Lt, 50.0)
        );
        let t = Threshold::parse("poll.empty_share", "<= 0.99").unwrap();
        assert_eq!(
            (t.metric, t.op, t.bound),
            (Metric::Number(Number::EmptyShare), Op::Le, 0.99)
        );
        assert_eq!(Threshold::parse("sse.lost", "== 0").unwrap().op, Op::Eq);
        assert!(Threshold::parse("webhook.dead_lettered", "== 0").is_ok());
        assert!(Threshold::parse("poll.late", "< 100").is_ok());
    }

    #[test]
    fn refuses_unknown_names_and_bad_conditions() {
        let e = Threshold::parse("webhook.latency.p98", "< 5ms").unwrap_err();
        assert!(
            e.contains("unknown metric `latency.p98`") && e.contains("did you mean `latency.p99`?"),
            "{e}"
        );
        assert!(Threshold::parse("pigeon.lost", "== 0")
            .unwrap_err()
            .contains("unknown mode"));
        assert!(Threshold::parse("poll.lost", "about 0")
            .unwrap_err()
            .contains("must start with"));
        assert!(Threshold::parse("poll.latency.p50", "< fast")
            .unwrap_err()
            .contains("duration"));
        assert!(Threshold::parse("poll.lost", "< x")
            .unwrap_err()
            .contains("not a number"));
        assert!(Threshold::parse("lost", "== 0").is_err());
    }

    #[test]
    fn operators_compare_as_written() {
        assert!(Op::Lt.holds(1.0, 2.0) && !Op::Lt.holds(2.0, 2.0));
        assert!(Op::Le.holds(2.0, 2.0) && Op::Ge.holds(2.0, 2.0) && Op::Eq.holds(0.0, 0.0));
        assert!(Op::Gt.holds(3.0, 2.0) && !Op::Gt.holds(2.0, 2.0));
    }
}
