//! What each mode's runs hold and send, fitted apart from the CPU: memory per connection
//! held and bytes per request and per delivery.

use super::{fit, ByteCost, MemoryCost, MEMORY_SCENARIO_NAME, PAGES_SCENARIO_NAME};
use crate::event::Mode;
use crate::results::ModeResult;
use crate::scenario::Scenario;

/// `fixed + per_connection × connections` fitted to the memory each run's clients held
/// (resident at the window's end − before any client − the event log) and the most
/// connections it held at once; for the webhook sender, when the runs include
/// [`MEMORY_SCENARIO_NAME`]'s, `+ per_endpoint × endpoints + per_attempt_per_second ×
/// attempts a second` as well, and for the pollers, when they include
/// [`PAGES_SCENARIO_NAME`]'s, `+ per_page_byte × their mean page's bytes` (the bytes written
/// over the answers that were not empty). Without those
/// runs the parts rise together from one run to the next (or the pages stay small), and the
/// fit could not tell them apart.
pub(super) fn memory(mode: Mode, runs: &[(&Scenario, &ModeResult)]) -> MemoryCost {
    let measured = |name: &str| runs.iter().any(|(s, _)| s.name == name);
    let apart = mode == Mode::Webhook && measured(MEMORY_SCENARIO_NAME);
    let pages = matches!(mode, Mode::Poll | Mode::ConditionalPoll) && measured(PAGES_SCENARIO_NAME);
    let rows: Vec<Vec<f64>> = runs
        .iter()
        .map(|(s, m)| {
            let mut row = vec![1.0, m.server.peak_connections as f64];
            if apart {
                row.extend([f64::from(s.clients.count), m.server.requests_per_second]);
            }
            if pages {
                let answered = m.server.requests.saturating_sub(m.server.empty_responses);
                row.push(m.server.bytes_written as f64 / answered.max(1) as f64);
            }
            row
        })
        .collect();
    let held: Vec<f64> = runs
        .iter()
        .map(|(s, m)| m.server.memory_per_client_bytes * f64::from(s.clients.count))
        .collect();
    // Each run weighted by its own memory, so that the small runs, where the fixed part
    // shows, count as much as the large ones.
    let weights: Vec<f64> = held.iter().map(|h| 1.0 / h.max(1024.0)).collect();
    let f = fit::nonnegative_least_squares(&rows, &held, &weights);
    let part = |k: usize| f.coefficients.get(k).copied().unwrap_or(0.0);
    MemoryCost {
        mode,
        fixed_bytes: part(0),
        per_connection_bytes: part(1),
        per_endpoint_bytes: if apart { part(2) } else { 0.0 },
        per_attempt_per_second_bytes: if apart { part(3) } else { 0.0 },
        per_page_byte: if pages { part(2) } else { 0.0 },
    }
}

/// Bytes read and written, each fitted as `per request × requests + per delivery ×
/// deliveries`, for events of the first run's payload (what another run's events carry
/// beyond it taken off first). A webhook attempt carries its event, so the sender's bytes
/// are fitted per attempt alone: in runs whose attempts are nearly all first tries, a part
/// per delivery could not be told from it.
pub(super) fn bytes(mode: Mode, runs: &[(&Scenario, &ModeResult)]) -> ByteCost {
    let per_attempt = mode == Mode::Webhook;
    let rows: Vec<Vec<f64>> = runs
        .iter()
        .map(|(_, m)| {
            let (requests, delivered) = (m.server.requests as f64, m.deliveries.delivered as f64);
            if per_attempt {
                vec![requests]
            } else {
                vec![requests, delivered]
            }
        })
        .collect();
    let payload = runs.first().map_or(0, |(s, _)| s.events.payload_bytes) as f64;
    let fit_of = |y: Vec<f64>| {
        let weights: Vec<f64> = y.iter().map(|v| 1.0 / v.max(1.0)).collect();
        let mut c = fit::nonnegative_least_squares(&rows, &y, &weights).coefficients;
        c.resize(2, 0.0);
        c
    };
    let read = fit_of(runs.iter().map(|(_, m)| m.server.bytes_read as f64).collect());
    let written = fit_of(
        runs.iter()
            .map(|(s, m)| {
                let events = if per_attempt {
                    m.server.requests
                } else {
                    m.deliveries.delivered
                };
                m.server.bytes_written as f64 - (s.events.payload_bytes as f64 - payload) * events as f64
            })
            .collect(),
    );
    ByteCost {
        mode,
        read_per_request: read[0],
        read_per_delivery: read[1],
        written_per_request: written[0],
        written_per_delivery: written[1],
        payload_bytes: payload,
    }
}
