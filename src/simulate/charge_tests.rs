//! What the model's runs are charged, by hand.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::simulate::mode_result;

/// A calibration that charges only `costs` (ns each), on `cores` cores.
fn priced(costs: &[(Op, f64)]) -> crate::calibration::Calibration {
    let mut c = crate::calibration::Calibration::reference();
    for cost in &mut c.cpu {
        cost.cpu_ns = costs
            .iter()
            .find(|(op, _)| *op == cost.op)
            .map_or(0.0, |(_, ns)| *ns);
    }
    c
}

/// 10 SSE clients on one topic, 100 events/s for 10 s.
fn ten_sse_clients() -> Scenario {
    Scenario::parse(
        Path::new("c.toml"),
        "name = \"c\"\nduration = \"10s\"\nwarmup = \"0s\"\nmodes = [\"sse\"]\n\
         [events]\nrate = 100\n[clients]\ncount = 10\n",
    )
    .unwrap()
}

#[test]
fn the_server_is_charged_the_calibrated_cost_of_what_it_did() {
    // 10 SSE clients on one topic, 100 events/s for 10 s: CPU = 10 s × 1 ms + each event
    // published × 10 µs + each of the 10 writes per event × 2 µs, by hand.
    let s = ten_sse_clients();
    let c = priced(&[(Op::Second, 1e6), (Op::Event, 10e3), (Op::SseEvent, 2e3)]);
    let model = Model::new(Some(Duration::from_millis(1)), c);
    let m = mode_result(&s, Mode::Sse, &model, &crate::simulate::quietly);
    let events = m.deliveries.events_measured as f64;
    assert_eq!(m.deliveries.delivered as f64, 10.0 * events);
    let by_hand = 10.0 * 1e-3 + events * 10e-6 + 10.0 * events * 2e-6;
    assert!(
        (m.server.cpu_seconds / by_hand - 1.0).abs() < 1e-9,
        "{} vs {by_hand}",
        m.server.cpu_seconds
    );
    // Each event's ten writes queue on the two cores: the last follower waits for
    // five writes, 10 µs, after the 0.5 ms one way.
    assert!((m.latency.max_ms - 0.51).abs() < 0.005, "{:?}", m.latency);
}

#[test]
fn the_webhook_senders_memory_counts_its_connections_endpoints_and_attempts_a_second() {
    // 40 endpoints on one topic, 10 events a second evenly spaced for 10 s, each answered
    // at the first attempt: 400 attempts a second. Its memory, by hand: 1 MB + 20 KB for
    // each connection its pools held at most + 1 KB for each endpoint + 300 B for each
    // attempt a second + 5 KB for each connection busy (each that carries 100 attempts a
    // second: 400 / 100 = 4 of them, among the connections held).
    let s = Scenario::parse(
        Path::new("w.toml"),
        "name = \"w\"\nduration = \"10s\"\nwarmup = \"0s\"\nmodes = [\"webhook\"]\n\
         [events]\nrate = 10\narrival = \"constant\"\ntopics = 1\n[clients]\ncount = 40\n",
    )
    .unwrap();
    let mut c = priced(&[]);
    let w = c.memory.iter_mut().find(|m| m.mode == Mode::Webhook).unwrap();
    (w.fixed_bytes, w.per_connection_bytes) = (1e6, 20e3);
    (w.per_endpoint_bytes, w.per_attempt_per_second_bytes) = (1e3, 300.0);
    (w.per_busy_connection_bytes, w.busy_at_attempts_per_second) = (5e3, 100.0);
    let model = Model::new(Some(Duration::from_millis(1)), c);
    let m = mode_result(&s, Mode::Webhook, &model, &crate::simulate::quietly);
    assert!(
        (m.server.requests_per_second / 400.0 - 1.0).abs() < 0.01,
        "{}",
        m.server.requests_per_second
    );
    let peak = m.server.peak_connections as f64;
    assert!(peak >= 4.0, "{peak}");
    let by_hand = 1e6 + 20e3 * peak + 1e3 * 40.0 + 300.0 * 400.0 + 5e3 * 4.0;
    let held = m.server.memory_per_client_bytes * 40.0;
    assert!((held / by_hand - 1.0).abs() < 0.01, "{held} vs {by_hand}");
}

#[test]
fn a_pollers_memory_counts_its_connections_and_its_mean_page() {
    // 10 pollers of one topic asking 1 s after each answer, 20 events a second: pages of
    // about 20 events. Each event written is 500 bytes and each answer's head 200 (the
    // calibration's bytes, for its own payload): about 10,200 bytes a page. Memory, by
    // hand: 1 MB + 16 KB for each connection + 4 bytes for each byte of the mean page.
    let s = Scenario::parse(
        Path::new("p.toml"),
        "name = \"p\"\nduration = \"20s\"\nwarmup = \"2s\"\nmodes = [\"poll\"]\n\
         [events]\nrate = 20\narrival = \"constant\"\ntopics = 1\n[clients]\ncount = 10\n\
         [poll]\ninterval = \"1s\"\nschedule = \"after_answer\"\n",
    )
    .unwrap();
    let mut c = priced(&[]);
    let p = c.memory.iter_mut().find(|m| m.mode == Mode::Poll).unwrap();
    (p.fixed_bytes, p.per_connection_bytes, p.per_page_byte) = (1e6, 16e3, 4.0);
    let b = c.bytes.iter_mut().find(|b| b.mode == Mode::Poll).unwrap();
    (b.written_per_request, b.written_per_delivery) = (200.0, 500.0);
    b.payload_bytes = s.events.payload_bytes as f64;
    let model = Model::new(Some(Duration::from_millis(1)), c);
    let m = mode_result(&s, Mode::Poll, &model, &crate::simulate::quietly);
    assert_eq!(m.server.empty_responses, 0, "every poll finds about 20 events");
    let page = m.server.bytes_written as f64 / m.server.requests as f64;
    assert!((page / 10_200.0 - 1.0).abs() < 0.02, "{page}");
    let by_hand = 1e6 + 16e3 * 10.0 + 4.0 * page;
    let held = m.server.memory_per_client_bytes * 10.0;
    assert!((held / by_hand - 1.0).abs() < 1e-9, "{held} vs {by_hand}");
}

#[test]
fn past_the_cores_capacity_the_queue_grows_and_latency_with_it() {
    // 200 pollers every 100 ms, each empty poll 1 ms of CPU: 2,000 polls/s need 2 cores.
    // On 4 cores they are answered in about a millisecond; on 1 they queue for seconds.
    let s = Scenario::parse(
        Path::new("k.toml"),
        "name = \"k\"\nduration = \"20s\"\nwarmup = \"0s\"\nmodes = [\"poll\"]\n\
         [events]\nrate = 1\n[clients]\ncount = 200\n[poll]\ninterval = \"100ms\"\nschedule = \"after_answer\"\n",
    )
    .unwrap();
    let c = priced(&[(Op::EmptyPoll, 1e6), (Op::Page, 1e6)]);
    let on = |cores: u32| {
        let mut model = Model::new(Some(Duration::ZERO), c.clone());
        model.cores = cores;
        mode_result(&s, Mode::Poll, &model, &crate::simulate::quietly)
    };
    let (roomy, starved) = (on(4), on(1));
    assert!(roomy.warnings.is_empty(), "{:?}", roomy.warnings);
    assert!(
        starved
            .warnings
            .iter()
            .any(|w| w.contains("1 cores were saturated")),
        "{:?}",
        starved.warnings
    );
    // After an answer each client waits 100 ms: with room, ~2,000 polls/s; on one core
    // the core's 1,000 polls/s is all there is.
    assert!(
        roomy.server.requests_per_second > 1800.0,
        "{}",
        roomy.server.requests_per_second
    );
    assert!(
        (starved.server.requests_per_second / 1000.0 - 1.0).abs() < 0.02,
        "{}",
        starved.server.requests_per_second
    );
    assert!(
        starved.latency.p50_ms > 1.5 * roomy.latency.p50_ms,
        "{:?} {:?}",
        starved.latency,
        roomy.latency
    );
}

/// One client, no event in the window (the schedule's first, at 0, falls in the
/// warm-up; the next comes 10,000 s later on average), a heartbeat every second, over a
/// window of 20 s.
fn quiet_stream() -> Scenario {
    Scenario::parse(
        Path::new("h.toml"),
        "name = \"h\"\nduration = \"20s\"\nwarmup = \"1s\"\nmodes = [\"sse\", \"websocket\"]\n\
         [events]\nrate = 0.0001\n[clients]\ncount = 1\n[sse]\nheartbeat = \"1s\"\n\
         [websocket]\nheartbeat = \"1s\"\n",
    )
    .unwrap()
}

#[test]
fn a_quiet_streams_heartbeats_go_as_frames_and_a_websocket_ping_takes_its_pong_too() {
    // A quiet stream: about 20 heartbeats in the window, as the phase falls. At 2
    // segments a frame, by hand: an SSE comment and its ACK, 2 each; a WebSocket ping,
    // the pong that ACKs it and the pong's own ACK, 3 each. The same clock beats both
    // streams alike.
    let s = quiet_stream();
    let mut c = priced(&[]);
    for p in &mut c.packets {
        (p.per_request, p.per_delivery, p.per_connection) = (0.0, 2.0, 0.0);
    }
    let model = Model::new(Some(Duration::from_millis(1)), c);
    let segments = |mode| {
        let m = mode_result(&s, mode, &model, &crate::simulate::quietly);
        assert_eq!(m.deliveries.delivered, 0, "{mode}: the stream stays quiet");
        m.server.tcp.segments().expect("packets are modelled")
    };
    let (sse, websocket) = (segments(Mode::Sse), segments(Mode::Websocket));
    assert!(
        (38..=42).contains(&sse),
        "{sse} segments: about 20 comments and their ACKs"
    );
    assert_eq!(websocket * 2, sse * 3, "{websocket} segments against SSE's {sse}");
}

#[test]
fn a_quiet_streams_heartbeats_cost_the_server_a_write_and_a_wake_up_each() {
    // A quiet stream: 20 heartbeats in the window (as above), each written by the
    // stream's timer a second after the last, the cores long idle. By hand: 20 × (a
    // write of 2 µs + a request's wake-up of 100 µs, the timer firing in a parked
    // worker's poll as a request's readiness does).
    let s = quiet_stream();
    let c = priced(&[
        (Op::SseEvent, 2e3),
        (Op::WebsocketEvent, 2e3),
        (Op::RequestWake, 100e3),
    ]);
    let model = Model::new(Some(Duration::from_millis(1)), c);
    for mode in [Mode::Sse, Mode::Websocket] {
        let m = mode_result(&s, mode, &model, &crate::simulate::quietly);
        assert_eq!(m.deliveries.delivered, 0, "{mode}: the stream stays quiet");
        let by_hand = 20.0 * (2e-6 + 100e-6);
        assert!(
            (m.server.cpu_seconds / by_hand - 1.0).abs() < 1e-9,
            "{mode}: {} vs {by_hand}",
            m.server.cpu_seconds
        );
    }
}

#[test]
fn packets_come_from_a_calibration_that_fitted_them_and_not_from_one_that_did_not() {
    let s = Scenario::parse(
        Path::new("p.toml"),
        "name = \"p\"\nduration = \"20s\"\nmodes = [\"sse\", \"poll\"]\n[events]\nrate = 10\n\
         [clients]\ncount = 5\n",
    )
    .unwrap();
    let reference = crate::calibration::Calibration::reference();
    let model = Model::new(Some(Duration::from_millis(2)), reference.clone());
    for mode in [Mode::Sse, Mode::Poll] {
        let m = mode_result(&s, mode, &model, &crate::simulate::quietly);
        let p = reference.packets(mode).expect("the reference fits packets");
        let (requests, delivered) = (m.server.requests as f64, m.window_deliveries() as f64);
        // No connection opens in the window: the clients connect before it.
        assert_eq!(
            m.server.tcp.segments(),
            Some(p.segments(requests, delivered, 0.0).round() as u64),
            "{mode}"
        );
    }
    let mut without = reference;
    without.packets.clear();
    let m = mode_result(
        &s,
        Mode::Sse,
        &Model::new(Some(Duration::from_millis(2)), without),
        &crate::simulate::quietly,
    );
    assert_eq!(m.server.tcp.segments(), None);
}

#[test]
fn the_cpus_error_from_the_calibration_is_its_counts_against_the_costs_covariance() {
    // The SSE run above, its three costs uncertain: a second by 100 µs, an event published by
    // 1 µs, a write by 0.5 µs, the first two correlated at −0.5. By hand, the CPU's variance is
    // Σ nᵢnⱼ covᵢⱼ over the run's 10 seconds, E events and 10E writes.
    let s = ten_sse_clients();
    let mut c = priced(&[(Op::Second, 1e6), (Op::Event, 10e3), (Op::SseEvent, 2e3)]);
    let at = |op: Op| c.cpu.iter().position(|k| k.op == op).unwrap();
    let (second, event, write) = (at(Op::Second), at(Op::Event), at(Op::SseEvent));
    let mut cov = vec![vec![0.0; c.cpu.len()]; c.cpu.len()];
    cov[second][second] = 100e3f64.powi(2);
    cov[event][event] = 1e3f64.powi(2);
    cov[write][write] = 500f64.powi(2);
    cov[second][event] = -0.5 * 100e3 * 1e3;
    cov[event][second] = cov[second][event];
    c.cpu_covariance = cov;
    let model = Model::new(Some(Duration::from_millis(1)), c);
    let m = mode_result(&s, Mode::Sse, &model, &crate::simulate::quietly);
    let e = m.deliveries.events_measured as f64;
    let variance = (10.0 * 100e3f64).powi(2) + (e * 1e3).powi(2) + (10.0 * e * 500.0).powi(2)
        - 2.0 * 10.0 * e * 0.5 * 100e3 * 1e3;
    let per_1k_ms = variance.sqrt() / 1e9 / (10.0 * e) * 1e6;
    let got = m.server.cpu_calibration_error_ms_per_1k().expect("loadings");
    assert!((got / per_1k_ms - 1.0).abs() < 1e-9, "{got} against {per_1k_ms}");
    // A calibration without the covariance gives none.
    let mut bare = priced(&[(Op::Second, 1e6)]);
    bare.cpu_covariance.clear();
    let m = mode_result(
        &s,
        Mode::Sse,
        &Model::new(Some(Duration::from_millis(1)), bare),
        &crate::simulate::quietly,
    );
    assert_eq!(m.server.cpu_calibration_error_ms_per_1k(), None);
}

#[test]
fn a_sender_whose_workers_all_hold_slow_answers_says_when_deliveries_waited_for_one() {
    // 10 endpoints of one topic, 10 events a second evenly, 20 workers, a 10 ms round trip,
    // the server costing nothing: an event's ten attempts take ten workers for 10 ms, and
    // nothing waits. With every receiver 0.5 s slow from 5 s to 7 s, each attempt holds its
    // worker 0.5 s: 100 attempts a second need 50 workers, so deliveries wait from 5 s on,
    // some 120 of them by the fault's end (200 come, the 20 workers take about 40 a second),
    // and the queue drains as the last slow answers free their workers, before 7.5 s.
    let s = |faults: &str| {
        Scenario::parse(
            Path::new("w.toml"),
            &format!(
                "name = \"w\"\nduration = \"20s\"\nwarmup = \"1s\"\nmodes = [\"webhook\"]\n\
                 [events]\nrate = 10\ntopics = 1\narrival = \"constant\"\n[clients]\ncount = 10\n\
                 [webhook]\nconcurrency = 20\n{faults}"
            ),
        )
        .unwrap()
    };
    let model = Model::new(Some(Duration::from_millis(10)), priced(&[]));
    let healthy = mode_result(&s(""), Mode::Webhook, &model, &crate::simulate::quietly);
    assert!(
        healthy.warnings.iter().all(|w| !w.contains("workers")),
        "{:?}",
        healthy.warnings
    );
    let slow = mode_result(
        &s("[[faults]]\nkind = \"receiver_slow\"\nat = \"5s\"\nfor = \"2s\"\ndelay = \"500ms\"\n"),
        Mode::Webhook,
        &model,
        &crate::simulate::quietly,
    );
    let said: Vec<&String> = slow.warnings.iter().filter(|w| w.contains("workers")).collect();
    assert_eq!(said.len(), 1, "{:?}", slow.warnings);
    assert!(
        said[0].contains("the webhook sender's 20 workers were all busy in part of the window (5–8 s since"),
        "{}",
        said[0]
    );
    assert!(
        !slow.warnings.iter().any(|w| w.contains("cores")),
        "{:?}",
        slow.warnings
    );
}

#[test]
fn a_push_or_a_request_among_many_clients_pays_its_share_of_the_crowding() {
    // SSE writes at 10 µs each and 20 µs more at the crowding of the clients held, crowded
    // at 1,000: by hand, 500 clients pay half of it (20 µs a delivery), 2,000 all of it
    // (30 µs), each at 1 event a second on one topic that every client follows.
    let mut c = priced(&[(Op::SseEvent, 10e3), (Op::Crowded, 20e3)]);
    c.crowded_at = 1_000;
    let model = Model::new(Some(Duration::from_millis(1)), c);
    for (clients, us) in [(500, 20.0), (2_000, 30.0)] {
        let s = Scenario::parse(
            Path::new("crowd.toml"),
            &format!(
                "name = \"crowd\"\nduration = \"4s\"\nwarmup = \"1s\"\nmodes = [\"sse\"]\n\
                 [events]\nrate = 1\narrival = \"constant\"\n[clients]\ncount = {clients}\n"
            ),
        )
        .unwrap();
        let m = mode_result(&s, Mode::Sse, &model, &crate::simulate::quietly);
        let delivered = m.server.deliveries_in_window.unwrap() as f64;
        assert!(delivered >= f64::from(clients) * 3.0, "{delivered}");
        let per_delivery_us = m.server.cpu_seconds / delivered * 1e6;
        assert!(
            (per_delivery_us / us - 1.0).abs() < 1e-9,
            "{clients} clients: {per_delivery_us} µs"
        );
    }
}

#[test]
fn each_poll_and_each_long_polls_request_and_event_pay_the_crowding() {
    // Crowding alone priced, 1 µs each at all of it (crowded at 1 client): every request a
    // poller's server answers pays it once; a long poll's answer once for the request and once
    // for each event in it. By hand from the model's own counts of requests and deliveries.
    let mut c = priced(&[(Op::Crowded, 1e3)]);
    c.crowded_at = 1;
    let model = Model::new(Some(Duration::from_millis(1)), c);
    let s = Scenario::parse(
        Path::new("p.toml"),
        "name = \"p\"\nduration = \"4s\"\nwarmup = \"1s\"\nmodes = [\"poll\", \"long_poll\"]\n\
         [events]\nrate = 20\narrival = \"constant\"\n[clients]\ncount = 50\n[poll]\ninterval = \"200ms\"\n",
    )
    .unwrap();
    let poll = mode_result(&s, Mode::Poll, &model, &crate::simulate::quietly);
    assert!(poll.server.requests > 500, "{}", poll.server.requests);
    let by_hand = poll.server.requests as f64 * 1e-6;
    assert!(
        (poll.server.cpu_seconds / by_hand - 1.0).abs() < 1e-9,
        "{} vs {by_hand}",
        poll.server.cpu_seconds
    );
    let long = mode_result(&s, Mode::LongPoll, &model, &crate::simulate::quietly);
    let by_hand = (long.server.requests + long.deliveries.delivered) as f64 * 1e-6;
    assert!(
        (long.server.cpu_seconds / by_hand - 1.0).abs() < 1e-9,
        "{} vs {by_hand}",
        long.server.cpu_seconds
    );
}

#[test]
fn a_poller_opens_a_connection_with_its_first_request_and_after_the_server_closed_an_idle_one() {
    // Only a connection opened priced, 1 µs. 100 pollers every 40 s, past the server's 30 s
    // wait for a next request: by hand, every request in the window opens a connection, and
    // each connection is open 30 s of every 40 (75 of them at a time on average, ± 4.3, so the
    // most at once within a few of those above). Every 20 s, within the
    // wait: a connection for each first request after the 5 s warm-up (phases uniform over
    // the interval: 75 of 100, ± 4.3), and all 100 held.
    let c = priced(&[(Op::Connection, 1e3)]);
    let model = Model::new(Some(Duration::from_millis(1)), c);
    let pollers = |interval: u64, warmup: u64| {
        let s = Scenario::parse(
            Path::new("idle.toml"),
            &format!(
                "name = \"idle\"\nduration = \"80s\"\nwarmup = \"{warmup}s\"\ndrain = \"41s\"\nmodes = [\"poll\"]\n\
                 [events]\nrate = 1\ntopics = 100\n[clients]\ncount = 100\n[poll]\ninterval = \"{interval}s\"\n"
            ),
        )
        .unwrap();
        mode_result(&s, Mode::Poll, &model, &crate::simulate::quietly)
    };
    let sparse = pollers(40, 41);
    assert_eq!(sparse.server.requests, 200);
    assert!(
        (sparse.server.cpu_seconds / 200e-6 - 1.0).abs() < 1e-9,
        "{}",
        sparse.server.cpu_seconds
    );
    assert!(
        (75..=92).contains(&sparse.server.peak_connections),
        "{}",
        sparse.server.peak_connections
    );
    let kept = pollers(20, 5);
    let opened = kept.server.cpu_seconds / 1e-6;
    assert!((60.0..=90.0).contains(&opened), "{opened}");
    assert!((opened - opened.round()).abs() < 1e-6, "{opened}");
    assert_eq!(kept.server.peak_connections, 100);
}
