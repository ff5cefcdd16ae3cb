//! What `run`'s clients cost the machine they share with the server: the driver's own CPU,
//! fitted on the same runs as the server's. `simulate --clients-beside-server` serves it on
//! the server's cores, since on one machine the clients' reads wait for the cores the
//! server's writes hold, and the other way round.

use serde::{Deserialize, Serialize};

use super::fit;
use crate::event::Mode;
use crate::results::{ModeResult, Results};

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
