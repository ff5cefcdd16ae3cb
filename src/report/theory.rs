//! Theory beside measurement: for every mode and headline metric, the prediction of the mode's
//! theory, the measured value, their ratio, and, where they differ by more than 20%, a likely
//! reason drawn from the run's own figures.

use crate::modes::Mode;
use crate::results::{ModeResult, Results};
use crate::scenario::Arrival;

/// How far measurement may stray from theory before the report remarks on it.
pub const TOLERANCE: f64 = 0.2;

/// One metric of one mode, predicted and measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The mode.
    pub mode: Mode,
    /// What is compared, in words.
    pub metric: &'static str,
    /// What theory predicted.
    pub predicted: f64,
    /// What was measured.
    pub measured: f64,
    /// measured / predicted, when the prediction is large enough for a ratio to mean something.
    pub ratio: Option<f64>,
    /// Why the two may differ, when they differ by more than [`TOLERANCE`].
    pub note: Option<String>,
}

impl Comparison {
    /// True when a ratio exists and is outside 1 ± [`TOLERANCE`].
    pub fn differs(&self) -> bool {
        self.ratio.is_some_and(|r| (r - 1.0).abs() > TOLERANCE)
    }
}

/// Every comparison of a run, mode by mode.
pub fn compare(r: &Results) -> Vec<Comparison> {
    let mut out = Vec::new();
    for m in &r.modes {
        let t = &m.theory;
        let rows = [
            ("median latency (ms)", t.latency_p50_ms, m.latency.p50_ms, 1.0),
            (
                "requests per delivered event",
                t.requests_per_delivery,
                m.server.requests_per_delivery,
                0.05,
            ),
            (
                "share of empty responses",
                t.empty_share,
                m.server.empty_share,
                0.02,
            ),
            (
                "connections held",
                t.connections,
                m.server.peak_connections as f64,
                1.0,
            ),
        ];
        for (metric, predicted, measured, floor) in rows {
            // A webhook sender's connection count is a ceiling (its concurrency), not a forecast.
            let bound_only = m.mode == Mode::Webhook && metric == "connections held";
            let ratio =
                (predicted.is_finite() && predicted >= floor && !bound_only).then(|| measured / predicted);
            let mut c = Comparison {
                mode: m.mode,
                metric,
                predicted,
                measured,
                ratio,
                note: None,
            };
            if c.differs() {
                c.note = Some(reason(r, m, metric, measured > predicted));
            }
            out.push(c);
        }
    }
    out
}

/// The likeliest reason, from the run's own figures, that `metric` came out off its theory.
fn reason(r: &Results, m: &ModeResult, metric: &str, above: bool) -> String {
    let mut why = Vec::new();
    if m.client.saturated {
        why.push(format!(
            "the driver used {:.0}% of a core, so clients may have been slow to ask or to read",
            m.client.cpu_share_of_core * 100.0
        ));
    }
    if m.deliveries.generator_max_lag_ms > 10.0 {
        why.push(format!(
            "the generator fell up to {:.0} ms behind its schedule",
            m.deliveries.generator_max_lag_ms
        ));
    }
    match metric {
        "share of empty responses" | "requests per delivered event"
            if r.scenario.events.arrival != Arrival::Poisson && matches!(m.mode, Mode::Poll | Mode::ConditionalPoll | Mode::LongPoll) =>
        {
            why.push(format!(
                "the formula assumes Poisson arrivals and this scenario's are {:?}, which spread events {} evenly",
                r.scenario.events.arrival,
                if r.scenario.events.arrival == Arrival::Bursty { "less" } else { "more" }
            ));
        }
        "connections held" if above => why.push(
            "connections are counted at their peak, including reconnections and the sender's extra pooled connections".into(),
        ),
        "median latency (ms)" if above && m.server.webhook.retries > 0 => {
            why.push(format!("{} webhook retries delayed deliveries", m.server.webhook.retries))
        }
        "median latency (ms)" if above => why.push("queueing and the request's own round trip add to the wait".into()),
        "requests per delivered event" if above && m.deliveries.reconnects > 0 => {
            why.push(format!("{} reconnections each cost a request", m.deliveries.reconnects))
        }
        "requests per delivered event" if !above && matches!(m.mode, Mode::Sse | Mode::Websocket) => {
            why.push("the streams stayed open through the drain, so more events shared each opening request".into())
        }
        _ => {}
    }
    if why.is_empty() {
        why.push("random variation: a short run sees few events per client".into());
    }
    why.join("; ")
}
