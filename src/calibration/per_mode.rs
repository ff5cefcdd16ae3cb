//! What each mode's runs hold and send, and how it is fitted apart from the CPU: memory per
//! connection held (and the parts some modes have besides) and bytes per request and per
//! delivery.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{fit, MEMORY_SCENARIO_NAME, PAGES_SCENARIO_NAME, SCENARIO};
use crate::event::Mode;
use crate::results::ModeResult;
use crate::scenario::Scenario;

/// What a mode's connections cost the server in memory: `fixed + per_connection ×
/// connections`, the most it held at once. Pollers, long polls and streams hold one per
/// client; the webhook sender holds its pools', which follow its attempts under way rather
/// than its endpoints, and, where the calibration measured the webhook memory runs
/// ([`MEMORY_SCENARIO`](super::MEMORY_SCENARIO)), `+ per_endpoint × endpoints +
/// per_attempt_per_second × attempts a second + per_busy_connection × busy connections`; the
/// pollers, where it measured the page runs
/// ([`PAGES_SCENARIO`](super::PAGES_SCENARIO)), `+ per_page_byte × their mean page's bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MemoryCost {
    /// The mode.
    pub mode: Mode,
    /// Resident bytes the mode's work holds whatever the number of clients (buffers, pools).
    pub fixed_bytes: f64,
    /// Resident bytes each connection adds.
    pub per_connection_bytes: f64,
    /// Resident bytes each webhook endpoint adds (its subscription, key and queue) whether a
    /// connection is open to it or not. Fitted only from the webhook memory runs
    /// ([`MEMORY_SCENARIO`](super::MEMORY_SCENARIO)) with the others; 0 without them, and for
    /// the other modes, whose clients are their connections.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub per_endpoint_bytes: f64,
    /// Resident bytes for each webhook attempt a second: what the attempts under way hold at
    /// once, and the allocator keeps of it after, grows with their rate. Fitted as
    /// `per_endpoint_bytes` is.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub per_attempt_per_second_bytes: f64,
    /// Resident bytes for each byte of a poller's mean page (its answers that were not
    /// empty): building and sending pages leaves a few pages' worth held (the allocator keeps
    /// what the largest used), whatever the number of clients. Fitted only from the page runs
    /// ([`PAGES_SCENARIO`](super::PAGES_SCENARIO)) with the others; 0 without them, and for
    /// the other modes, whose answers are small.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub per_page_byte: f64,
    /// Resident bytes a busy webhook connection holds beyond an idle one (its buffers grown
    /// to what it carries), for each of `min(connections, attempts a second /
    /// busy_at_attempts_per_second)`. Fitted as `per_endpoint_bytes` is; 0 without the
    /// webhook memory runs, in older files and for the other modes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub per_busy_connection_bytes: f64,
    /// The attempts a second a connection carries to count as busy: of [`BUSY_AT`], the one
    /// whose fit leaves the least error over the runs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub busy_at_attempts_per_second: f64,
}

/// The attempts a second per connection a fit of the webhook sender's memory tries as what
/// makes a connection busy.
pub const BUSY_AT: [f64; 6] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

/// What a mode's run held that its memory grows with.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Held {
    /// Connections held at most at once.
    pub connections: u64,
    /// Webhook endpoints (none for the other modes).
    pub endpoints: f64,
    /// Webhook attempts a second (none for the other modes).
    pub attempts_per_second: f64,
    /// Bytes of a poller's mean page (its answers that were not empty).
    pub page_bytes: f64,
    /// Bytes the WebSocket streams' send buffers held beyond what the calibration's did (one
    /// frame of its events each): added as they are, not fitted (none for the other modes).
    pub send_buffer_bytes: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl MemoryCost {
    /// Resident bytes for what a run `held`.
    pub fn held(&self, held: &Held) -> f64 {
        self.fixed_bytes
            + self.per_connection_bytes * held.connections as f64
            + self.per_endpoint_bytes * held.endpoints
            + self.per_attempt_per_second_bytes * held.attempts_per_second
            + self.per_page_byte * held.page_bytes
            + self.per_busy_connection_bytes
                * busy(
                    held.connections as f64,
                    held.attempts_per_second,
                    self.busy_at_attempts_per_second,
                )
            + held.send_buffer_bytes
    }
}

/// The connections busy among `connections` carrying `attempts_per_second` in all, when
/// `busy_at` attempts a second make one busy (none without a `busy_at`).
fn busy(connections: f64, attempts_per_second: f64, busy_at: f64) -> f64 {
    if busy_at > 0.0 {
        connections.min(attempts_per_second / busy_at)
    } else {
        0.0
    }
}

/// What a mode puts on the wire: bytes the server reads and writes per request and per
/// delivered event, for events of `payload_bytes` ([`ByteCost::carrying`] gives them for
/// events of another size).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ByteCost {
    /// The mode.
    pub mode: Mode,
    /// Bytes read per request (for webhooks: per attempt, the receiver's answer).
    pub read_per_request: f64,
    /// Bytes read per delivered event.
    pub read_per_delivery: f64,
    /// Bytes written per request (its answer's head and an empty body; for webhooks the
    /// attempt, its head and the event it carries). For pollers fitted with
    /// `written_per_empty`, per answer that carries events.
    pub written_per_request: f64,
    /// Bytes written per answer that carries no event, where that is fitted apart: a poller's
    /// empty page, or a conditional poller's 304, which writes no body at all and so fewer
    /// bytes than an empty page (a part per request alone priced it as one, and the
    /// conditional pollers' bytes came out up to 10% low). None for the other modes and in
    /// files fitted before it was: `written_per_request` then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_per_empty: Option<f64>,
    /// Bytes written per delivered event (none for webhooks, whose attempts carry them).
    pub written_per_delivery: f64,
    /// The payload of the events these bytes were measured with (files written before it was
    /// kept were all fitted on [`SCENARIO`]'s runs, and read as its payload).
    #[serde(default = "scenario_payload_bytes")]
    pub payload_bytes: f64,
}

impl ByteCost {
    /// Bytes written for an answer carrying `events` events (for a stream, one event
    /// written; for a webhook, an attempt, which carries one).
    pub fn written(&self, events: usize) -> f64 {
        match (events, self.written_per_empty) {
            (0, Some(empty)) => empty,
            _ => self.written_per_request + events as f64 * self.written_per_delivery,
        }
    }

    /// Bytes written for `requests` answers, `empty` of them carrying no event, and
    /// `delivered` events in the others.
    pub fn written_for(&self, requests: f64, empty: f64, delivered: f64) -> f64 {
        let empty_each = self.written_per_empty.unwrap_or(self.written_per_request);
        self.written_per_request * (requests - empty)
            + empty_each * empty
            + self.written_per_delivery * delivered
    }

    /// These bytes for events of `payload_bytes`: each event written carries the difference
    /// (in a page, a stream's message or a webhook attempt's body), the rest is as measured.
    pub fn carrying(&self, payload_bytes: usize) -> ByteCost {
        let more = payload_bytes as f64 - self.payload_bytes;
        let mut b = *self;
        let part = if events_ride_requests(self.mode) {
            &mut b.written_per_request
        } else {
            &mut b.written_per_delivery
        };
        *part = (*part + more).max(0.0);
        b.payload_bytes = payload_bytes as f64;
        b
    }
}

/// Whether `mode` writes each event in a request of its own (a webhook attempt, retried with
/// it), so that its bytes go per request; the others write them per delivered event.
fn events_ride_requests(mode: Mode) -> bool {
    mode == Mode::Webhook
}

/// [`SCENARIO`]'s events' payload.
fn scenario_payload_bytes() -> f64 {
    let s =
        Scenario::parse(Path::new("calibration.toml"), SCENARIO).expect("the calibration scenario parses");
    s.events.payload_bytes as f64
}

/// `fixed + per_connection × connections` fitted to the memory each run's clients held
/// (resident at the window's end − before any client − the event log) and the most
/// connections it held at once; for the webhook sender, when the runs include
/// [`MEMORY_SCENARIO_NAME`]'s, `+ per_endpoint × endpoints + per_attempt_per_second ×
/// attempts a second + per_busy_connection × min(connections, attempts a second / r)` as
/// well, r the one of [`BUSY_AT`] that leaves the least error, and for the pollers, when they include
/// [`PAGES_SCENARIO_NAME`]'s, `+ per_page_byte × their mean page's bytes` (the bytes written
/// over the answers that were not empty). Without those runs the parts rise together from
/// one run to the next (or the pages stay small), and the fit could not tell them apart.
pub(super) fn memory(mode: Mode, runs: &[(&Scenario, &ModeResult)]) -> MemoryCost {
    let measured = |name: &str| runs.iter().any(|(s, _)| s.name == name);
    let apart = mode == Mode::Webhook && measured(MEMORY_SCENARIO_NAME);
    let pages = matches!(mode, Mode::Poll | Mode::ConditionalPoll) && measured(PAGES_SCENARIO_NAME);
    let held: Vec<f64> = runs
        .iter()
        .map(|(s, m)| m.server.memory_per_client_bytes * f64::from(s.clients.count))
        .collect();
    // Each run weighted by its own memory, so that the small runs, where the fixed part
    // shows, count as much as the large ones.
    let weights: Vec<f64> = held.iter().map(|h| 1.0 / h.max(1024.0)).collect();
    let fit_busy_at = |busy_at: f64| {
        let rows: Vec<Vec<f64>> = runs
            .iter()
            .map(|(s, m)| {
                let connections = m.server.peak_connections as f64;
                let mut row = vec![1.0, connections];
                if apart {
                    let rate = m.server.requests_per_second;
                    row.extend([f64::from(s.clients.count), rate, busy(connections, rate, busy_at)]);
                }
                if pages {
                    let answered = m.server.requests.saturating_sub(m.server.empty_responses);
                    row.push(m.server.bytes_written as f64 / answered.max(1) as f64);
                }
                row
            })
            .collect();
        let f = fit::nonnegative_least_squares(&rows, &held, &weights);
        let error: f64 = rows
            .iter()
            .zip(&held)
            .zip(&weights)
            .map(|((row, h), w)| {
                (w * (h - row.iter().zip(&f.coefficients).map(|(x, c)| x * c).sum::<f64>())).powi(2)
            })
            .sum();
        (f, error, busy_at)
    };
    // The threshold that makes a connection busy, where the webhook memory runs can tell.
    let (f, _, busy_at) = if apart {
        BUSY_AT
            .into_iter()
            .map(fit_busy_at)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("thresholds to try")
    } else {
        fit_busy_at(0.0)
    };
    let part = |k: usize| f.coefficients.get(k).copied().unwrap_or(0.0);
    let per_busy_connection_bytes = if apart { part(4) } else { 0.0 };
    MemoryCost {
        mode,
        fixed_bytes: part(0),
        per_connection_bytes: part(1),
        per_endpoint_bytes: if apart { part(2) } else { 0.0 },
        per_attempt_per_second_bytes: if apart { part(3) } else { 0.0 },
        per_page_byte: if pages { part(2) } else { 0.0 },
        per_busy_connection_bytes,
        busy_at_attempts_per_second: if per_busy_connection_bytes > 0.0 {
            busy_at
        } else {
            0.0
        },
    }
}

/// Bytes read and written, each fitted as `per request × requests + per delivery ×
/// deliveries`, for events of the first run's payload (what another run's events carry
/// beyond it taken off first). A webhook attempt carries its event, so the sender's bytes
/// are fitted per attempt alone: in runs whose attempts are nearly all first tries, a part
/// per delivery could not be told from it. A poller's written bytes have a part per empty
/// answer apart from the part per answer with events, since an empty page (more so a 304)
/// writes less than a page's head.
pub(super) fn bytes(mode: Mode, runs: &[(&Scenario, &ModeResult)]) -> ByteCost {
    let per_attempt = events_ride_requests(mode);
    // Only where some run answered empty: otherwise the part is not measured, and a fit of
    // none would price every empty answer at nothing.
    let empties_apart = matches!(mode, Mode::Poll | Mode::ConditionalPoll)
        && runs.iter().any(|(_, m)| m.server.empty_responses > 0);
    let rows = |split: bool| -> Vec<Vec<f64>> {
        runs.iter()
            .map(|(_, m)| {
                let (requests, delivered) = (m.server.requests as f64, m.deliveries.delivered as f64);
                let empty = m.server.empty_responses as f64;
                match (per_attempt, split) {
                    (true, _) => vec![requests],
                    (false, false) => vec![requests, delivered],
                    (false, true) => vec![requests - empty, delivered, empty],
                }
            })
            .collect()
    };
    let payload = runs.first().map_or(0, |(s, _)| s.events.payload_bytes) as f64;
    let fit_of = |rows: &[Vec<f64>], y: Vec<f64>| {
        let weights: Vec<f64> = y.iter().map(|v| 1.0 / v.max(1.0)).collect();
        let mut c = fit::nonnegative_least_squares(rows, &y, &weights).coefficients;
        c.resize(3, 0.0);
        c
    };
    let read = fit_of(
        &rows(false),
        runs.iter().map(|(_, m)| m.server.bytes_read as f64).collect(),
    );
    let written = fit_of(
        &rows(empties_apart),
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
        written_per_empty: empties_apart.then_some(written[2]),
        payload_bytes: payload,
    }
}
