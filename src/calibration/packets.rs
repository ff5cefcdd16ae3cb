//! TCP segments per mode: what the kernel sent and received on the server's connections
//! (pure ACKs and handshakes included) for each request, each delivered event and each
//! connection opened, fitted on the runs whose TCP counters were read.

use serde::{Deserialize, Serialize};

use super::fit;
use crate::event::Mode;
use crate::results::{ModeResult, Results};

/// A mode's segments both ways: `per_request × requests + per_delivery × deliveries +
/// per_connection × connections opened`, as the calibration machine's TCP cut them (on
/// loopback, whose segments hold 64 KiB, every message here fits in one).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PacketCost {
    /// The mode.
    pub mode: Mode,
    /// Segments for each request (for webhooks, each attempt): the request, its answer and
    /// the ACKs that do not ride on the next message.
    pub per_request: f64,
    /// Segments for each event delivered beyond its request's (a stream's frame and its ACK).
    pub per_delivery: f64,
    /// Segments for each connection opened (its handshake, and its close when it closes).
    pub per_connection: f64,
}

impl PacketCost {
    /// Segments both ways for `requests`, `delivered` events and `opened` connections.
    pub fn segments(&self, requests: f64, delivered: f64, opened: f64) -> f64 {
        self.per_request * requests + self.per_delivery * delivered + self.per_connection * opened
    }

    /// Each mode's, fitted on the runs of it in `results` whose TCP counters were read; a mode
    /// without such runs has none.
    pub(super) fn fit_each_mode(results: &Results) -> Vec<PacketCost> {
        let runs = super::measured_runs(results);
        Mode::ALL
            .into_iter()
            .filter_map(|mode| {
                let of: Vec<&ModeResult> = runs
                    .iter()
                    .map(|r| r.2)
                    .filter(|m| m.mode == mode && m.server.tcp.measured().is_some())
                    .collect();
                (!of.is_empty()).then(|| PacketCost::fit(mode, &of))
            })
            .collect()
    }

    /// Least squares with no negative part, each run weighted by the inverse of its segments
    /// (so that each run's relative error counts alike). A webhook attempt carries its event,
    /// so the sender's segments go per attempt alone: its deliveries follow its attempts too
    /// closely for a fit to tell them apart.
    fn fit(mode: Mode, runs: &[&ModeResult]) -> PacketCost {
        let per_attempt = mode == Mode::Webhook;
        let rows: Vec<Vec<f64>> = runs
            .iter()
            .map(|m| {
                let tcp = m.server.tcp.measured().expect("runs with TCP counters");
                let (requests, opened) = (m.server.requests as f64, tcp.opened as f64);
                if per_attempt {
                    vec![requests, 0.0, opened]
                } else {
                    vec![requests, m.window_deliveries() as f64, opened]
                }
            })
            .collect();
        let segments: Vec<f64> = runs
            .iter()
            .map(|m| m.server.tcp.measured().map_or(0.0, |t| t.segments() as f64))
            .collect();
        let weights: Vec<f64> = segments.iter().map(|s| 1.0 / s.max(1.0)).collect();
        let c = fit::nonnegative_least_squares(&rows, &segments, &weights).coefficients;
        let part = |k: usize| c.get(k).copied().unwrap_or(0.0);
        PacketCost {
            mode,
            per_request: part(0),
            per_delivery: part(1),
            per_connection: part(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{TcpReading, TcpTraffic};

    /// Runs of `mode` whose segments are made up by hand: 3 a request, 2 a delivery and 7 a
    /// connection opened (for webhooks, 3 an attempt and 7 a connection), over counts that
    /// differ from run to run; one run without TCP counters, which the fit must leave out.
    fn runs(mode: Mode) -> Results {
        let mut r = crate::results::one_run_fixture();
        let template = r.modes.iter().find(|m| m.mode == mode).unwrap().clone();
        r.modes = [(100, 40, 0), (10, 500, 3), (1000, 20, 50), (300, 300, 9)]
            .into_iter()
            .map(|(requests, delivered, opened)| {
                let mut m = template.clone();
                m.server.requests = requests;
                m.server.deliveries_in_window = Some(delivered);
                let carried = if mode == Mode::Webhook { 0 } else { 2 * delivered };
                let segments = 3 * requests + carried + 7 * opened;
                m.server.tcp = TcpReading::Measured(TcpTraffic {
                    opened,
                    segments_in: segments / 2,
                    segments_out: segments - segments / 2,
                    ..TcpTraffic::default()
                });
                m
            })
            .collect();
        let mut unread = r.modes[0].clone();
        (unread.server.requests, unread.server.tcp) = (5000, TcpReading::NotRead);
        r.modes.push(unread);
        r.points.clear();
        r
    }

    #[test]
    fn segments_are_fitted_per_request_delivery_and_connection_from_the_runs_that_read_them() {
        let near = |a: f64, b: f64| (a - b).abs() < 1e-6;
        let p = PacketCost::fit_each_mode(&runs(Mode::Poll));
        assert_eq!(p.len(), 1);
        let p = p[0];
        assert!(
            near(p.per_request, 3.0) && near(p.per_delivery, 2.0) && near(p.per_connection, 7.0),
            "{p:?}"
        );
        // By hand: 3 × 10 + 2 × 4 + 7 × 1.
        assert!(near(p.segments(10.0, 4.0, 1.0), 45.0));
        let w = PacketCost::fit_each_mode(&runs(Mode::Webhook))[0];
        assert!(
            near(w.per_request, 3.0) && w.per_delivery == 0.0 && near(w.per_connection, 7.0),
            "{w:?}"
        );
    }
}
