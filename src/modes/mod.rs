//! The six delivery modes. Each file holds both ends of one mode's wire (the server route and
//! the client simulator) and its theory (what latency and cost to expect from the scenario).
//!
//! | mode | file |
//! |---|---|
//! | `poll`, `conditional_poll` | [`poll`] (one route serves both; the client differs by `If-None-Match`) |
//! | `long_poll` | [`long_poll`] |
//! | `sse` | [`sse`], sharing the send queues of [`stream`] |
//! | `websocket` | [`websocket`], sharing the send queues of [`stream`] |
//! | `webhook` | [`webhook`]: dispatcher, signature, retries, receiver |

pub mod http;
pub mod long_poll;
pub mod poll;
pub mod slots;
pub mod sse;
pub mod stream;
pub mod webhook;
pub mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::CancellationToken;

use crate::recorder::Ledger;
use crate::scenario::faults::ClientFaults;
use crate::scenario::{FaultKind, Scenario};
use crate::server::AppState;

pub use crate::event::Mode;
pub use crate::results::{Given, Prediction};

/// What each mode needs of a scenario and its theory (the vocabulary itself is [`Mode`], in
/// [`crate::event`]).
impl Mode {
    /// How long a delivery may take before it counts as late: the scenario's `late_after`, or
    /// what a healthy delivery of this mode needs: a poller's longest wait between two polls
    /// ([`PollParams::longest_gap`](crate::scenario::PollParams::longest_gap)) and, for
    /// every mode, 250 ms for the trip and for a busy machine.
    pub fn late_after(self, s: &Scenario) -> std::time::Duration {
        let slack = std::time::Duration::from_millis(250);
        s.late_after
            .unwrap_or_else(|| s.poller(self).map_or(slack, |p| p.longest_gap() + slack))
    }

    /// What theory predicts for this mode under `scenario`, given what the run itself set.
    pub fn predict(self, scenario: &Scenario, given: &Given) -> Prediction {
        let mut p = match self {
            Mode::Poll => poll::predict(scenario, &scenario.poll, false, given),
            Mode::ConditionalPoll => poll::predict(scenario, &scenario.conditional_poll, true, given),
            Mode::LongPoll => long_poll::predict(scenario, given),
            Mode::Sse => stream::predict(scenario, "an open text/event-stream", given),
            Mode::Websocket => stream::predict(scenario, "an open WebSocket", given),
            Mode::Webhook => webhook::predict(scenario, given),
        };
        p.given = *given;
        p
    }
}

/// Everything one simulated client needs.
pub struct ClientCtx {
    /// The client's index, `0..clients.count`.
    pub id: u32,
    /// Where the server listens.
    pub server: SocketAddr,
    /// The scenario being run.
    pub scenario: Arc<Scenario>,
    /// Where the client records what it receives.
    pub ledger: Ledger,
    /// Fires when the driver has collected enough; the client returns its ledger.
    pub stop: CancellationToken,
    /// The client's own seeded randomness (phase, jitter).
    pub rng: ChaCha8Rng,
    /// The faults this client lives through.
    pub faults: ClientFaults,
}

impl ClientCtx {
    /// A client context; its randomness derives from the scenario seed and the client id.
    pub fn new(
        id: u32,
        server: SocketAddr,
        scenario: Arc<Scenario>,
        ledger: Ledger,
        stop: CancellationToken,
        faults: ClientFaults,
    ) -> Self {
        let rng = client_rng(scenario.seed, id);
        ClientCtx {
            id,
            server,
            scenario,
            ledger,
            stop,
            rng,
            faults,
        }
    }

    /// Before a request (or a connection attempt): wait out a `client_pause`, then spend the
    /// request's added trip. True when the run has stopped, before or meanwhile: a poller
    /// behind when the run stops asks no more (its pages' `more` would keep it asking).
    pub async fn before_request(&mut self) -> bool {
        self.stop.is_cancelled() || self.hold_while_paused().await || self.trip().await
    }

    /// After an answer arrived: spend its added trip, then, if a `client_pause` is on, read
    /// it only when the pause ends. True when the run stopped meanwhile.
    pub async fn after_answer(&mut self) -> bool {
        self.trip().await || self.hold_while_paused().await
    }

    /// When a stream frame read now counts as arrived: now, plus the added down trip (a TCP
    /// stream delivers frames one after another, so the delay is stamped, not slept).
    pub fn arrival_ns(&mut self) -> u64 {
        self.ledger.now_ns() + self.one_way().as_nanos() as u64
    }

    /// While a `client_pause` is on, stops doing anything until it ends; true when the run
    /// stopped meanwhile.
    pub async fn hold_while_paused(&mut self) -> bool {
        if self.faults.0.is_empty() {
            return false;
        }
        while let Some(until) = self.faults.paused_until(self.ledger.since_start()) {
            let now = self.ledger.since_start().unwrap_or_default();
            if crate::clock::sleep_or_stop(until.saturating_sub(now), &self.stop).await {
                return true;
            }
        }
        self.stop.is_cancelled()
    }

    /// The added one-way trip time now (zero unless a `latency` fault is on).
    fn one_way(&mut self) -> std::time::Duration {
        if self.faults.0.is_empty() {
            return std::time::Duration::ZERO;
        }
        let t = self.ledger.since_start();
        self.faults.one_way_delay(t, &mut self.rng)
    }

    /// Spends one added one-way trip, within 50 µs rather than on tokio's millisecond
    /// ticks (which would add 1 ms to it on average); true when the run stopped meanwhile.
    async fn trip(&mut self) -> bool {
        let d = self.one_way();
        !d.is_zero() && crate::clock::sleep_closely_or_stop(d, &self.stop).await
    }

    /// Whether a `client_pause` hits this client at some point (it then reads through a small
    /// socket buffer, so the server feels it fall behind sooner).
    pub fn pauses(&self) -> bool {
        self.faults.any(|k| *k == FaultKind::ClientPause)
    }
}

/// Runs one client of a pull or stream mode until `ctx.stop` fires, and returns its ledger.
/// Webhook clients are receivers instead; see [`webhook::receiver`].
pub async fn run_client(mode: Mode, ctx: ClientCtx) -> Ledger {
    match mode {
        Mode::Poll => poll::client(ctx, false).await,
        Mode::ConditionalPoll => poll::client(ctx, true).await,
        Mode::LongPoll => long_poll::client(ctx).await,
        Mode::Sse => sse::client(ctx).await,
        Mode::Websocket => websocket::client(ctx).await,
        Mode::Webhook => unreachable!("webhook clients are receivers, started by the driver"),
    }
}

/// Every mode's server routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(poll::router())
        .merge(long_poll::router())
        .merge(sse::router())
        .merge(websocket::router())
        .merge(webhook::router())
}

/// Client `id`'s own random numbers for a run seeded `seed`: where its polls fall, its
/// share of a fault's delays. The simulator draws the same ones, so a modelled poller polls
/// when the real one does.
pub fn client_rng(seed: u64, id: u32) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ (u64::from(id) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Reads the optional `client` query parameter: the simulated client's id, which faults aim at.
pub(crate) fn client_id(
    query: &std::collections::HashMap<String, String>,
) -> Result<Option<u32>, crate::server::ApiError> {
    query
        .get("client")
        .map(|c| c.parse::<u32>())
        .transpose()
        .map_err(|_| crate::server::ApiError::BadRequest("`client` must be a whole number".into()))
}

/// Reads the `topics` and `after` query parameters every pull and stream route takes.
pub(crate) fn topics_and_cursor(
    query: &std::collections::HashMap<String, String>,
    topic_count: u32,
) -> Result<(Vec<crate::event::TopicId>, crate::event::Cursor), crate::server::ApiError> {
    use crate::server::ApiError;
    let topics = query
        .get("topics")
        .ok_or_else(|| ApiError::BadRequest("missing query parameter `topics`".into()))?;
    let topics = crate::event::parse_topics(topics, topic_count).map_err(ApiError::BadRequest)?;
    let cursor = match query.get("after") {
        None => crate::event::Cursor::start(topics.len()),
        Some(a) => a.parse::<crate::event::Cursor>().map_err(ApiError::BadRequest)?,
    };
    if cursor.0.len() != topics.len() {
        return Err(ApiError::BadRequest(format!(
            "`after` has {} positions but `topics` names {} topics",
            cursor.0.len(),
            topics.len()
        )));
    }
    Ok((topics, cursor))
}

#[cfg(test)]
mod theory_tests;
