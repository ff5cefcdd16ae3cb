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
    /// what a healthy delivery of this mode needs: a poller's longest wait (interval plus
    /// jitter) and, for every mode, 250 ms for the trip and for a busy machine.
    pub fn late_after(self, s: &Scenario) -> std::time::Duration {
        let slack = std::time::Duration::from_millis(250);
        let poll = |p: &crate::scenario::PollParams| p.interval.mul_f64(1.0 + p.jitter) + slack;
        s.late_after.unwrap_or_else(|| match self {
            Mode::Poll => poll(&s.poll),
            Mode::ConditionalPoll => poll(&s.conditional_poll),
            Mode::LongPoll | Mode::Sse | Mode::Websocket | Mode::Webhook => slack,
        })
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
    /// request's added trip. True when the run stopped meanwhile.
    pub async fn before_request(&mut self) -> bool {
        self.hold_while_paused().await || self.trip().await
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

    /// Spends one added one-way trip; true when the run stopped meanwhile.
    async fn trip(&mut self) -> bool {
        let d = self.one_way();
        !d.is_zero() && crate::clock::sleep_or_stop(d, &self.stop).await
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
mod theory_tests {
    //! Each mode's theory against a small seeded Monte-Carlo of the same process, written here
    //! independently of the formulas, or against values worked out by hand.

    use super::*;
    use rand::Rng;
    use rand_distr::{Distribution, Exp};

    fn scenario(extra: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\nduration = \"10s\"\n[events]\nrate = 20\ntopics = 20\n[clients]\ncount = 200\n{extra}"
        );
        Scenario::parse(std::path::Path::new("t.toml"), &text).unwrap()
    }

    fn given(lambda: f64, round_trip_ms: f64) -> Given {
        Given {
            client_event_rate: lambda,
            round_trip_ms,
            generator_ms: 0.0,
            ..Given::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    fn within(measured: f64, predicted: f64, share: f64) -> bool {
        (measured / predicted - 1.0).abs() <= share
    }

    /// The Monte-Carlo's empty share and requests per event against the prediction's.
    fn assert_matches(p: &Prediction, empty: f64, per_event: f64) {
        assert!(
            (empty - p.empty_share).abs() < 0.005,
            "{empty} vs {}",
            p.empty_share
        );
        assert!(
            within(per_event, p.requests_per_delivery, 0.01),
            "{per_event} vs {}",
            p.requests_per_delivery
        );
    }

    /// One poller over a long stretch: Poisson arrivals at `lambda`, polls at the instants
    /// `polls` yields. Returns (empty share, requests per event, median wait s, mean wait s).
    fn simulate_poller(lambda: f64, polls: &[f64]) -> (f64, f64, f64, f64) {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let exp = Exp::new(lambda).unwrap();
        let (first, last) = (polls[0], *polls.last().unwrap());
        let mut t = first + exp.sample(&mut rng);
        let mut waits = Vec::new();
        let mut empty = 0;
        let mut i = 1;
        while i < polls.len() {
            // Arrivals before this poll are fetched by it.
            let mut got = 0;
            while t <= polls[i] && t < last {
                waits.push(polls[i] - t);
                got += 1;
                t += exp.sample(&mut rng);
            }
            if got == 0 {
                empty += 1;
            }
            i += 1;
        }
        waits.sort_by(f64::total_cmp);
        let n = (polls.len() - 1) as f64;
        let mean = waits.iter().sum::<f64>() / waits.len() as f64;
        (
            empty as f64 / n,
            n / waits.len() as f64,
            waits[waits.len() / 2],
            mean,
        )
    }

    #[test]
    fn pollers_on_fixed_slots_match_a_monte_carlo() {
        // λ = 1 event/s per client, T = 1 s, ± 20% jitter that does not add up.
        let (lambda, t, j) = (1.0, 1.0, 0.2);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let polls: Vec<f64> = (0..200_000)
            .map(|k| k as f64 * t + j * t * rng.gen_range(-1.0..=1.0))
            .collect();
        let (empty, per_event, median, mean) = simulate_poller(lambda, &polls);
        let p = Mode::Poll.predict(
            &scenario("[poll]\ninterval = \"1s\"\njitter = 0.2\nschedule = \"fixed\""),
            &given(lambda, 0.0),
        );
        assert_matches(&p, empty, per_event);
        assert!(
            within(median * 1000.0, p.latency_p50_ms, 0.02),
            "{median} vs {}",
            p.latency_p50_ms
        );
        assert!(
            within(mean * 1000.0, p.latency_mean_ms, 0.01),
            "{mean} vs {}",
            p.latency_mean_ms
        );
        // By hand without jitter: e^(−1) empty, one request per event, half a second's wait.
        let p = Mode::Poll.predict(
            &scenario("[poll]\ninterval = \"1s\"\njitter = 0.0"),
            &given(1.0, 0.0),
        );
        assert!(close(p.empty_share, (-1.0f64).exp()));
        assert!(close(p.requests_per_delivery, 1.0));
        assert!(close(p.latency_p50_ms, 500.0));
        assert!(close(p.requests_per_second, 200.0));
    }

    #[test]
    fn pollers_after_each_answer_match_a_monte_carlo() {
        // λ = 4 events/s, T = 250 ms ± 10%, and a 10 ms round trip that lengthens every gap;
        // the answer's way back is half of it.
        let (lambda, t, j, rtt) = (4.0, 0.25, 0.1, 0.010);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut at = 0.0;
        let polls: Vec<f64> = (0..200_000)
            .map(|_| {
                let now = at;
                at += t * (1.0 + j * rng.gen_range(-1.0..=1.0)) + rtt;
                now
            })
            .collect();
        let (empty, per_event, _, mean) = simulate_poller(lambda, &polls);
        let p = Mode::ConditionalPoll.predict(
            &scenario("[conditional_poll]\ninterval = \"250ms\"\njitter = 0.1\nschedule = \"after_answer\""),
            &given(lambda, rtt * 1000.0),
        );
        assert_matches(&p, empty, per_event);
        // The theory's mean adds the answer's way back to the wait for the poll.
        assert!(
            within(mean * 1000.0 + rtt * 500.0, p.latency_mean_ms, 0.01),
            "{mean} vs {}",
            p.latency_mean_ms
        );
    }

    #[test]
    fn long_polls_match_a_monte_carlo_at_lambda_w_one() {
        // λ = 1, W = 1 s, the server's jitter U(0, W/16): each request ends with the next
        // event or at its deadline.
        let (lambda, w) = (1.0, 1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let exp = Exp::new(lambda).unwrap();
        let (mut requests, mut empty, mut events) = (0u64, 0u64, 0u64);
        let mut next_event = exp.sample(&mut rng);
        let mut t = 0.0;
        while events < 200_000 {
            requests += 1;
            let deadline = t + w + rng.gen_range(0.0..w / 16.0);
            if next_event <= deadline {
                events += 1;
                t = next_event;
                next_event = t + exp.sample(&mut rng);
            } else {
                empty += 1;
                t = deadline;
            }
        }
        let p = Mode::LongPoll.predict(&scenario("[long_poll]\nwait = \"1s\""), &given(lambda, 0.0));
        let (share, per_event) = (empty as f64 / requests as f64, requests as f64 / events as f64);
        assert_matches(&p, share, per_event);
        // Without the jitter it would be 1/(1 − e^(−1)) = 1.58 and 36.8%; the jitter lengthens
        // each wait by W/32 on average, which shaves a little off both.
        assert!(
            p.requests_per_delivery > 1.5 && p.requests_per_delivery < 1.582,
            "{}",
            p.requests_per_delivery
        );
        assert!(
            p.empty_share > 0.35 && p.empty_share < (-1.0f64).exp(),
            "{}",
            p.empty_share
        );
        assert!(close(p.connections, 200.0));
    }

    #[test]
    fn push_latency_is_the_generators_lateness_plus_one_round_trip() {
        let g = Given {
            client_event_rate: 1.0,
            round_trip_ms: 0.12,
            generator_ms: 0.004,
            ..Given::default()
        };
        for mode in [Mode::LongPoll, Mode::Sse, Mode::Websocket, Mode::Webhook] {
            let p = mode.predict(&scenario(""), &g);
            assert!(close(p.latency_p50_ms, 0.124), "{mode}: {}", p.latency_p50_ms);
            assert_eq!(p.given, g);
        }
    }

    #[test]
    fn a_stream_costs_one_request_and_one_connection_per_client() {
        let p = Mode::Websocket.predict(&scenario(""), &given(1.0, 0.0));
        assert!(close(p.connections, 200.0));
        // The opening request comes before the measured period.
        assert_eq!(p.requests_per_delivery, 0.0);
        assert_eq!(p.empty_share, 0.0);
    }

    #[test]
    fn a_webhook_costs_one_request_per_delivery_plus_its_failures() {
        let p = Mode::Webhook.predict(
            &scenario(
                "[webhook]\nretry = [\"100ms\", \"500ms\", \"1s\"]\nreceiver_fail_attempts = 2\nconcurrency = 64",
            ),
            &given(1.0, 0.0),
        );
        assert!(close(p.requests_per_delivery, 3.0));
        assert!(close(p.latency_p50_ms, 600.0));
        assert!(close(p.requests_per_second, 600.0));
        assert!(close(p.connections, 64.0));
        // Without retries left, failures cannot be made up: the preset `github` has none.
        let p = Mode::Webhook.predict(
            &scenario("[webhook]\nretry = \"github\"\nreceiver_fail_attempts = 2"),
            &given(1.0, 0.0),
        );
        assert!(close(p.requests_per_delivery, 1.0));
    }

    #[test]
    fn a_scaled_retry_schedule_is_said_with_its_scale() {
        let s = scenario("[webhook]\nretry = \"standard\"\ntime_scale = 0.002");
        let p = Mode::Webhook.predict(&s, &Given::from_scenario(&s));
        assert!(
            p.explanation.contains(
                "Standard Webhooks preset scaled by time_scale = 0.002: 0s, 10ms, 600ms, 3s 600ms, 14s 400ms, 36s, 1m 12s, 1m 12s"
            ),
            "{}",
            p.explanation
        );
        let s = scenario("[webhook]\nretry = \"github\"");
        let p = Mode::Webhook.predict(&s, &Given::from_scenario(&s));
        assert!(p.explanation.contains("No automatic retry"));
    }

    #[test]
    fn bursts_average_with_their_gaps() {
        let s = scenario("");
        let mut bursty = s.clone();
        bursty.events.arrival = crate::scenario::Arrival::Bursty;
        bursty.events.rate = 500.0;
        bursty.events.burst_size = 50;
        bursty.events.burst_gap = std::time::Duration::from_secs(2);
        // 50 events in 0.1 s, then 2 s of quiet: 50 / 2.1 s.
        assert!(close(bursty.mean_event_rate(), 50.0 / 2.1));
        assert!(close(s.mean_event_rate(), 20.0));
    }
}
