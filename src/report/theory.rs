//! Theory beside measurement: for every mode and headline metric, the prediction of the mode's
//! theory, the measured value, their ratio, and, where they differ by more than 20%, a likely
//! reason drawn from the run's own figures.

use crate::event::Mode;
use crate::results::{Figure, ModeResult, Results};
use crate::scenario::Arrival;

/// How far measurement may stray from theory before the report remarks on it.
pub const TOLERANCE: f64 = crate::report::CLOSE_MARGIN;

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
    /// The measurement's standard error under the theory, from the run's own counts (0 for a
    /// figure with no sampling noise).
    pub standard_error: f64,
    /// Why the two may differ, when they differ by more than [`TOLERANCE`].
    pub note: Option<String>,
}

impl Comparison {
    /// True when a ratio exists, is outside 1 ± [`TOLERANCE`], and the difference is larger
    /// than sampling alone explains.
    pub fn differs(&self) -> bool {
        self.ratio.is_some_and(|r| (r - 1.0).abs() > TOLERANCE) && !self.within_sampling_error()
    }

    /// True when the difference is inside three standard errors.
    pub fn within_sampling_error(&self) -> bool {
        (self.measured - self.predicted).abs() <= 3.0 * self.standard_error
    }
}

/// Every comparison of a run, mode by mode.
pub fn compare(r: &Results) -> Vec<Comparison> {
    let mut out = Vec::new();
    for m in &r.modes {
        let t = &m.theory;
        let requests = m.server.requests as f64;
        let p = t.empty_share.clamp(0.0, 1.0);
        let rows = [
            (
                "median latency (ms)",
                t.latency_p50_ms,
                m.latency.p50_ms,
                0.001,
                Figure::LatencyP50.sampling_error(m).unwrap_or(0.0),
            ),
            (
                "requests per delivered event",
                t.requests_per_delivery,
                m.server.requests_per_delivery,
                0.05,
                // Requests as a Poisson count, over the events they were made for (the
                // prediction is conditioned on those): generous for pollers, whose requests
                // hardly vary.
                Figure::RequestsPerEvent.sampling_error(m).unwrap_or(0.0),
            ),
            (
                "share of empty responses",
                t.empty_share,
                m.server.empty_share,
                0.02,
                // Each response empty or not: binomial.
                if requests > 0.0 {
                    (p * (1.0 - p) / requests).sqrt()
                } else {
                    0.0
                },
            ),
            (
                "connections held",
                t.connections,
                m.server.peak_connections as f64,
                1.0,
                0.0,
            ),
        ];
        for (metric, predicted, measured, floor, standard_error) in rows {
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
                standard_error,
                note: None,
            };
            if c.ratio.is_some_and(|r| (r - 1.0).abs() > TOLERANCE) {
                c.note = Some(if c.within_sampling_error() {
                    format!(
                        "within sampling error: three standard errors here are ±{}",
                        crate::report::html::number(3.0 * standard_error)
                    )
                } else {
                    reason(r, m, metric, measured > predicted)
                });
            }
            out.push(c);
        }
    }
    out
}

/// The reason, from the run's own figures, that `metric` came out off its theory by more
/// than sampling explains; "unexplained" when the run shows none.
fn reason(r: &Results, m: &ModeResult, metric: &str, above: bool) -> String {
    let mut why = Vec::new();
    if m.client.saturated {
        why.push(format!(
            "the driver used {:.0}% of a core, so clients may have been slow to ask or to read",
            m.client.cpu_share_of_core * 100.0
        ));
    }
    let lateness_ms = m.generator.p50_ns as f64 / 1e6;
    if metric == "median latency (ms)" && lateness_ms > 0.1 * m.latency.p50_ms {
        why.push(format!(
            "the generator emitted {} late at the median, {:.0}% of the latency",
            crate::report::format_ms(lateness_ms),
            lateness_ms / m.latency.p50_ms * 100.0
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
        "connections held"
            if above
                && matches!(m.mode, Mode::Poll | Mode::ConditionalPoll)
                && m.theory.connections < f64::from(r.scenario.clients.count) =>
        {
            why.push(format!(
                "its pollers ask less often than the server keeps an idle connection ({}), so each holds one for \
                 part of each gap: the theory counts those held on average, the run the most held at once",
                crate::scenario::humane::format(crate::api::HEADER_READ_TIMEOUT)
            ))
        }
        "connections held" if above => why.push(
            "connections are counted at their peak, including reconnections and the sender's extra pooled connections".into(),
        ),
        "median latency (ms)" if above && m.server.webhook.retries > 0 => {
            why.push(format!("{} webhook retries delayed deliveries", m.server.webhook.retries))
        }
        "median latency (ms)" if above && m.outcomes.late > 0 => why.push(format!(
            "{} deliveries arrived late (slower than {})",
            m.outcomes.late,
            crate::report::format_ms(m.late_after_ms)
        )),
        "share of empty responses" | "requests per delivered event"
            if !above && m.mode == Mode::LongPoll && r.scenario.long_poll.wait.as_secs_f64() >= m.measured_seconds =>
        {
            why.push(format!(
                "the window ({:.1} s) is shorter than the wait ({}): a request held from its start cannot run \
                 out of time inside it, so empty answers the theory expects over a long run fall outside",
                m.measured_seconds,
                crate::scenario::humane::format(r.scenario.long_poll.wait)
            ))
        }
        "requests per delivered event" if above && m.deliveries.reconnects > 0 => {
            why.push(format!("{} reconnections each cost a request", m.deliveries.reconnects))
        }
        _ => {}
    }
    if why.is_empty() {
        why.push("unexplained: none of this run's figures accounts for it".into());
    }
    why.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(predicted: f64, measured: f64, standard_error: f64) -> Comparison {
        Comparison {
            mode: Mode::Poll,
            metric: "share of empty responses",
            predicted,
            measured,
            ratio: Some(measured / predicted),
            standard_error,
            note: None,
        }
    }

    #[test]
    fn a_difference_inside_three_standard_errors_is_sampling_not_a_finding() {
        // 25% off, but with 40 responses a binomial share of 0.4 has a standard error of
        // 0.077: three of them cover 0.1.
        let se = (0.4f64 * 0.6 / 40.0).sqrt();
        assert!(row(0.4, 0.5, se).within_sampling_error());
        assert!(!row(0.4, 0.5, se).differs());
        // The same 25% over 4,000 responses is a finding.
        let se = (0.4f64 * 0.6 / 4000.0).sqrt();
        assert!(row(0.4, 0.5, se).differs());
    }

    #[test]
    fn pollers_that_hold_a_connection_part_of_the_time_are_told_apart_from_reconnections() {
        let mut r = crate::results::one_run_fixture();
        let clients = f64::from(r.scenario.clients.count);
        for m in &mut r.modes {
            // An average of a tenth of the clients held, a peak of an eighth.
            m.theory.connections = 0.1 * clients;
            m.server.peak_connections = (0.125 * clients) as u64;
        }
        let note_of = |r: &Results, mode: Mode| {
            compare(r)
                .into_iter()
                .find(|c| c.mode == mode && c.metric == "connections held")
                .and_then(|c| c.note)
                .unwrap()
        };
        let poll = note_of(&r, Mode::Poll);
        assert!(
            poll.contains("held on average") && poll.contains("(30s)"),
            "{poll}"
        );
        let sse = note_of(&r, Mode::Sse);
        assert!(sse.contains("including reconnections"), "{sse}");
        // A poller that holds every client's connection and peaks above is not explained so.
        for m in &mut r.modes {
            m.theory.connections = clients;
            m.server.peak_connections = (1.25 * clients) as u64;
        }
        let poll = note_of(&r, Mode::Poll);
        assert!(poll.contains("including reconnections"), "{poll}");
    }
}
