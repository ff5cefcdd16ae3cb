//! What `run`'s clients cost the machine they share with the server: the driver's own CPU,
//! fitted on the same runs as the server's, and how long each delivery waits for its reader
//! beyond that CPU, fitted on their latency. `simulate --clients-beside-server` serves both
//! on the server's cores, since on one machine the clients' reads wait for the cores the
//! server's writes hold, and the other way round.

use serde::{Deserialize, Serialize};

use super::{fit, Calibration};
use crate::event::Mode;
use crate::results::{ModeResult, Results};
use crate::scenario::Scenario;

/// The model's median latency, ms, for a measured run's scenario and mode with its clients
/// beside the server at a calibration's costs (the simulator gives it; the calibration does
/// not depend on it).
pub type Latency<'a> = &'a dyn Fn(&Scenario, &ModeResult, &Calibration) -> f64;

/// The handoffs a fit tries, ns per delivery for each client held; the first is none.
pub const HANDOFF_NS_PER_CLIENT: [f64; 12] = [0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0];

/// How long each delivery waits for its reader beyond the CPU both spend on it, when the
/// clients share the server's machine: the handoff from the server's thread to the client's,
/// which the scheduler makes on cores that both processes' threads crowd. It is priced per
/// delivery for each client held, the form of those tried (none, a flat time a delivery, a
/// time per client held) that fitted the calibration runs' median latency best. Not CPU: a
/// statistical stand-in for what the clients' CPU alone leaves short at thousands of clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// ns per delivery for each client held: of [`HANDOFF_NS_PER_CLIENT`], the one with which
    /// the model's median latency of the runs of modes that push (long poll, streams,
    /// webhooks) comes nearest the measured one.
    pub ns_per_client: f64,
    /// The root mean square of ln(model / measured) of those medians with it.
    pub error: f64,
    /// The same without it (a handoff of 0).
    pub error_without: f64,
}

impl Handoff {
    /// Fitted on the push modes' runs in `results`, each modelled by `latency` at `c`'s costs
    /// and each handoff of [`HANDOFF_NS_PER_CLIENT`] in turn. None without such runs.
    pub(super) fn fit(results: &Results, c: &Calibration, latency: Latency) -> Option<Handoff> {
        let runs: Vec<(&Scenario, &ModeResult)> = super::measured_runs(results)
            .into_iter()
            .filter(|(_, _, m)| {
                m.mode != Mode::Poll && m.mode != Mode::ConditionalPoll && m.latency.p50_ms > 0.0
            })
            .map(|(_, s, m)| (s, m))
            .collect();
        if runs.is_empty() {
            return None;
        }
        let error = |ns_per_client: f64| {
            let mut trial = c.clone();
            trial.clients_handoff.ns_per_client = ns_per_client;
            let sum: f64 = runs
                .iter()
                .map(|(s, m)| (latency(s, m, &trial).max(1e-6) / m.latency.p50_ms).ln().powi(2))
                .sum();
            (sum / runs.len() as f64).sqrt()
        };
        let tried: Vec<(f64, f64)> = HANDOFF_NS_PER_CLIENT.iter().map(|&h| (h, error(h))).collect();
        let &(ns_per_client, least) = tried.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
        Some(Handoff {
            ns_per_client,
            error: least,
            // The first tried is none.
            error_without: tried[0].1,
        })
    }
}

/// The driver's CPU for one mode's clients, ns: a second of it running, a request's round
/// (sent and its answer read; for webhooks, an attempt received and answered) and an event
/// received and recorded. Each mode's clients are priced apart, since a poll's round through
/// the HTTP client and a page's parsing cost the driver several times a long poll's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClientCpu {
    /// The mode.
    pub mode: Mode,
    /// A second of the driver running (its runtime, sampler and recorder, its clients' timers).
    pub second_ns: f64,
    /// A request sent and answered, or a webhook attempt received and answered.
    pub request_ns: f64,
    /// An event received and recorded.
    pub event_ns: f64,
}

impl ClientCpu {
    /// Each mode's, fitted on its runs in `results`.
    pub(super) fn fit_each_mode(results: &Results) -> Vec<ClientCpu> {
        let runs = super::measured_runs(results);
        Mode::ALL
            .into_iter()
            .filter_map(|mode| {
                let of: Vec<&ModeResult> = runs.iter().map(|r| r.2).filter(|m| m.mode == mode).collect();
                (!of.is_empty()).then(|| ClientCpu::fit(mode, &of))
            })
            .collect()
    }

    /// Fitted on the driver's CPU of `mode`'s runs, weighted as the server's fit is (by the
    /// inverse of the CPU measured, so that each run's relative error counts alike).
    fn fit(mode: Mode, runs: &[&ModeResult]) -> ClientCpu {
        let rows: Vec<Vec<f64>> = runs
            .iter()
            .map(|m| {
                vec![
                    m.measured_seconds,
                    m.client.requests as f64,
                    (m.deliveries.delivered + m.deliveries.duplicates) as f64,
                ]
            })
            .collect();
        let cpu: Vec<f64> = runs.iter().map(|m| m.client.cpu_seconds).collect();
        let weights: Vec<f64> = cpu.iter().map(|c| 1.0 / c.max(1e-6)).collect();
        let f = fit::nonnegative_least_squares(&rows, &cpu, &weights);
        let ns = |j: usize| f.coefficients[j] * 1e9;
        ClientCpu {
            mode,
            second_ns: ns(0),
            request_ns: ns(1),
            event_ns: ns(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handoff_is_the_one_whose_modelled_medians_come_nearest_the_measured() {
        // Every run measured at 1 ms; the model gives 0.5 ms + 0.1 ms for each ns of handoff
        // per client: by hand, 5 ns brings it to 1 ms exactly, and without any the error is
        // ln 2 at every run.
        let mut r = crate::calibration::tests::runs();
        for p in &mut r.points {
            for m in &mut p.modes {
                m.latency.p50_ms = 1.0;
            }
        }
        let c = Calibration::reference();
        let model =
            |_: &Scenario, _: &ModeResult, c: &Calibration| 0.5 + 0.1 * c.clients_handoff.ns_per_client;
        let h = Handoff::fit(&r, &c, &model).unwrap();
        assert_eq!(h.ns_per_client, 5.0);
        assert!(h.error < 1e-12, "{h:?}");
        assert!((h.error_without - 2f64.ln()).abs() < 1e-12, "{h:?}");
    }
}
