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
fn push_latency_on_a_given_network_is_one_way() {
    // The model's network is propagation alone: 40 ms there and back, 20 ms one way.
    let g = Given {
        client_event_rate: 1.0,
        round_trip_ms: 40.0,
        generator_ms: 0.0,
        round_trip_modelled: true,
    };
    for mode in [Mode::LongPoll, Mode::Sse, Mode::Websocket, Mode::Webhook] {
        let p = mode.predict(&scenario(""), &g);
        assert!(close(p.latency_p50_ms, 20.0), "{mode}: {}", p.latency_p50_ms);
        assert!(
            p.explanation
                .contains("one way over the given network (20.000 ms"),
            "{mode}: {}",
            p.explanation
        );
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
