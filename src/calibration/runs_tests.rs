//! Which runs each part of the fit reads: the memory runs and the page runs move only the
//! memory, the failing receivers' runs and the runs over a round trip only the CPU.

use super::super::tests::{assert_priced, flat, runs};
use super::super::*;
use super::heartbeats_warning;

/// Every webhook run's memory made up, by hand, as 1 MB + 24 KiB per connection the sender
/// held + 1 KB per endpoint + 250 B per attempt a second (+ `busy`'s bytes for each connection
/// busy at its attempts a second, when given); five runs of the memory scenario added, whose
/// connections, endpoints and attempts a second differ apart. Fitted with and without them.
fn memory_made_up(busy: Option<(f64, f64)>) -> (Calibration, Calibration) {
    let made_up = |conns: u64, endpoints: f64, per_second: f64| {
        let busy = busy.map_or(0.0, |(bytes, at)| bytes * (conns as f64).min(per_second / at));
        1e6 + 24.0 * 1024.0 * conns as f64 + 1e3 * endpoints + 250.0 * per_second + busy
    };
    let mut r = runs();
    for p in &mut r.points {
        let clients = f64::from(p.scenario.clients.count);
        for m in p.modes.iter_mut().filter(|m| m.mode == Mode::Webhook) {
            let held = made_up(m.server.peak_connections, clients, m.server.requests_per_second);
            m.server.memory_per_client_bytes = held / clients;
        }
    }
    let alone = r.clone();
    let template = r.points[0].clone();
    for (clients, conns, per_second) in [
        (500u32, 206u64, 50.0),
        (8000, 25, 500.0),
        (500, 48, 5000.0),
        (2000, 1000, 1333.0),
        (500, 16, 50.0),
    ] {
        let mut p = template.clone();
        p.label = format!("memory: {clients} endpoints");
        p.scenario.name = MEMORY_SCENARIO_NAME.to_string();
        p.scenario.clients.count = clients;
        p.modes.retain(|m| m.mode == Mode::Webhook);
        let m = &mut p.modes[0];
        m.server.peak_connections = conns;
        m.server.requests_per_second = per_second;
        m.server.memory_per_client_bytes =
            made_up(conns, f64::from(clients), per_second) / f64::from(clients);
        r.points.push(p);
    }
    let none = |_: &Scenario, _: &ModeResult, _: &Calibration| [0.0; 3];
    (
        Calibration::fit(&r, &none, &flat).unwrap(),
        Calibration::fit(&alone, &none, &flat).unwrap(),
    )
}

#[test]
fn the_memory_runs_tell_the_webhook_senders_endpoints_and_attempts_from_its_connections_and_move_nothing_else(
) {
    let (c, before) = memory_made_up(None);
    let w = c.memory(Mode::Webhook).unwrap();
    assert!((w.fixed_bytes / 1e6 - 1.0).abs() < 1e-6, "{w:?}");
    assert!(
        (w.per_connection_bytes / (24.0 * 1024.0) - 1.0).abs() < 1e-6,
        "{w:?}"
    );
    assert!((w.per_endpoint_bytes / 1e3 - 1.0).abs() < 1e-6, "{w:?}");
    assert!(
        (w.per_attempt_per_second_bytes / 250.0 - 1.0).abs() < 1e-6,
        "{w:?}"
    );
    assert!(w.per_busy_connection_bytes < 1.0, "{w:?}");
    // The calibration scenario's runs alone cannot tell the parts apart: they are fitted as
    // a fixed part and a part per connection, as before.
    let b = before.memory(Mode::Webhook).unwrap();
    assert_eq!(
        (
            b.per_endpoint_bytes,
            b.per_attempt_per_second_bytes,
            b.per_busy_connection_bytes
        ),
        (0.0, 0.0, 0.0)
    );
    // Nothing else is fitted from the memory runs.
    assert_only_the_memory_of_moved(&[Mode::Webhook], &c, &before);
}

#[test]
fn a_busy_connections_part_and_what_makes_one_busy_are_found_where_the_runs_hold_them() {
    // As above, each connection carrying 4 attempts a second or more holding 20 KiB more: the
    // fit finds the part and the threshold among those it tries, and the rest as before.
    let (c, _) = memory_made_up(Some((20.0 * 1024.0, 4.0)));
    let w = c.memory(Mode::Webhook).unwrap();
    assert_eq!(w.busy_at_attempts_per_second, 4.0, "{w:?}");
    assert!(
        (w.per_busy_connection_bytes / (20.0 * 1024.0) - 1.0).abs() < 1e-6,
        "{w:?}"
    );
    assert!(
        (w.per_connection_bytes / (24.0 * 1024.0) - 1.0).abs() < 1e-6,
        "{w:?}"
    );
    assert!((w.fixed_bytes / 1e6 - 1.0).abs() < 1e-6, "{w:?}");
    // A run held its memory as the part prices it: 100 connections at 200 attempts a second
    // are 50 busy.
    let held = Held {
        connections: 100,
        attempts_per_second: 200.0,
        ..Held::default()
    };
    let without = MemoryCost {
        per_busy_connection_bytes: 0.0,
        ..w
    };
    assert!((w.held(&held) - without.held(&held) - 50.0 * 20.0 * 1024.0).abs() < 1.0);
}

/// That calibration `c`, fitted with runs for memory alone, differs from `before`, fitted
/// without them, in the memory of `modes` and nothing else.
fn assert_only_the_memory_of_moved(modes: &[Mode], c: &Calibration, before: &Calibration) {
    assert_eq!(c.cpu, before.cpu);
    assert_eq!(c.runs, before.runs);
    assert_eq!(c.bytes, before.bytes);
    assert_eq!(c.clients, before.clients);
    let others = |c: &Calibration| {
        c.memory
            .iter()
            .filter(|m| !modes.contains(&m.mode))
            .copied()
            .collect::<Vec<_>>()
    };
    assert_eq!(others(c), others(before));
}

#[test]
fn the_page_runs_tell_what_a_pollers_pages_hold_from_its_connections_and_move_nothing_else() {
    // Every poller's memory made up, by hand, as 1 MB + 16 KiB per connection + 4 bytes for
    // each byte of its mean page (bytes written per answer that was not empty); five runs of
    // the page scenario added, whose connections and pages differ apart.
    let made_up = |conns: u64, page: f64| 1e6 + 16.0 * 1024.0 * conns as f64 + 4.0 * page;
    let pollers = |m: &ModeResult| matches!(m.mode, Mode::Poll | Mode::ConditionalPoll);
    let mut r = runs();
    for p in &mut r.points {
        let clients = f64::from(p.scenario.clients.count);
        for m in p.modes.iter_mut().filter(|m| pollers(m)) {
            let pages = m.server.requests - m.server.empty_responses;
            let page = m.server.bytes_written as f64 / pages.max(1) as f64;
            m.server.memory_per_client_bytes = made_up(m.server.peak_connections, page) / clients;
        }
    }
    let alone = r.clone();
    let template = r.points[0].clone();
    for (clients, page) in [
        (20u32, 35e3),
        (20, 390e3),
        (100, 385e3),
        (100, 104e3),
        (20, 775e3),
    ] {
        let mut p = template.clone();
        p.label = format!("pages: {clients} clients, {page} B");
        p.scenario.name = PAGES_SCENARIO_NAME.to_string();
        p.scenario.clients.count = clients;
        p.modes.retain(|m| pollers(m));
        for m in &mut p.modes {
            m.server.peak_connections = u64::from(clients);
            (m.server.requests, m.server.empty_responses) = (110, 10);
            m.server.bytes_written = (page * 100.0) as u64;
            m.server.memory_per_client_bytes = made_up(u64::from(clients), page) / f64::from(clients);
        }
        r.points.push(p);
    }
    let none = |_: &Scenario, _: &ModeResult, _: &Calibration| [0.0; 3];
    let c = Calibration::fit(&r, &none, &flat).unwrap();
    let before = Calibration::fit(&alone, &none, &flat).unwrap();
    for mode in [Mode::Poll, Mode::ConditionalPoll] {
        let m = c.memory(mode).unwrap();
        assert!((m.fixed_bytes / 1e6 - 1.0).abs() < 1e-6, "{m:?}");
        assert!(
            (m.per_connection_bytes / (16.0 * 1024.0) - 1.0).abs() < 1e-6,
            "{m:?}"
        );
        assert!((m.per_page_byte / 4.0 - 1.0).abs() < 1e-6, "{m:?}");
        assert_eq!((m.per_endpoint_bytes, m.per_attempt_per_second_bytes), (0.0, 0.0));
        // Without the page runs the part is not fitted.
        assert_eq!(before.memory(mode).unwrap().per_page_byte, 0.0);
    }
    // Nothing else is fitted from the page runs.
    assert_only_the_memory_of_moved(&[Mode::Poll, Mode::ConditionalPoll], &c, &before);
}

#[test]
fn a_retrys_cpu_is_fitted_from_the_runs_whose_receivers_fail_and_nothing_else_is() {
    // Every run's CPU made up, by hand, as 10 µs for each operation counted and 120 µs for
    // each retry besides; the failing receivers' runs are the fixture's webhook runs again
    // under the failures scenario's name, every delivery retried once (twice the attempts,
    // half of them retries), their bytes and memory made absurd. The fit finds the retry's
    // 120 µs, and every other part of the calibration is what the other runs alone give.
    let none = |_: &Scenario, _: &ModeResult, _: &Calibration| [0.0; 3];
    let made_up = |m: &ModeResult, clients: f64| {
        let counts = Counts::measured(m, clients, 0);
        Op::ALL
            .iter()
            .map(|&op| counts.get(op) * if op == Op::WebhookRetry { 120e-6 } else { 10e-6 })
            .sum::<f64>()
    };
    let mut r = runs();
    for p in &mut r.points {
        let clients = f64::from(p.scenario.clients.count);
        for m in &mut p.modes {
            m.server.cpu_seconds = made_up(m, clients);
        }
    }
    let alone = Calibration::fit(&r, &none, &flat).unwrap();
    let mut failing: Vec<_> = r
        .points
        .iter()
        .filter(|p| p.modes.iter().any(|m| m.mode == Mode::Webhook))
        .cloned()
        .collect();
    for p in &mut failing {
        p.label = format!("failures: {}", p.label);
        p.scenario.name = FAILURES_SCENARIO_NAME.to_string();
        p.modes.retain(|m| m.mode == Mode::Webhook);
        let clients = f64::from(p.scenario.clients.count);
        let m = &mut p.modes[0];
        m.server.requests *= 2;
        m.server.webhook.attempts = m.server.requests;
        m.server.webhook.retries = m.server.requests / 2;
        m.server.bytes_written *= 10;
        m.server.memory_per_client_bytes *= 10.0;
        m.server.cpu_seconds = made_up(m, clients);
    }
    assert!(failing.len() >= 3, "{}", failing.len());
    r.points.extend(failing);
    let c = Calibration::fit(&r, &none, &flat).unwrap();
    assert_priced(&c, Op::WebhookRetry, 120e3);
    assert_priced(&c, Op::WebhookAttempt, 10e3);
    assert_eq!(alone.cpu_ns(Op::WebhookRetry), 0.0);
    assert_eq!(
        (&c.bytes, &c.memory, &c.packets, &c.clients),
        (&alone.bytes, &alone.memory, &alone.packets, &alone.clients)
    );
}

#[test]
fn a_reply_from_afars_cpu_is_fitted_from_the_runs_over_a_round_trip_and_nothing_else_is() {
    // Every run's CPU made up, by hand, as 10 µs for each operation counted and 30 µs for
    // each reply from afar that the model finds waking the server, which it counts (here) as
    // one a delivery in the runs over a round trip and none on loopback; those runs are the
    // fixture's long-poll and webhook runs again under the round-trip scenario's name, their
    // bytes and memory made absurd. The fit finds the reply's 30 µs, and every other part of
    // the calibration is what the other runs alone give.
    let wakes = |s: &Scenario, m: &ModeResult, _: &Calibration| {
        let far = s.name == ROUND_TRIP_SCENARIO_NAME;
        [0.0, 0.0, if far { m.deliveries.delivered as f64 } else { 0.0 }]
    };
    let made_up = |m: &ModeResult, clients: f64, replies: f64| {
        let counts = Counts::measured(m, clients, 0);
        Op::ALL.iter().map(|&op| counts.get(op) * 10e-6).sum::<f64>() + replies * 30e-6
    };
    let mut r = runs();
    for p in &mut r.points {
        let clients = f64::from(p.scenario.clients.count);
        for m in &mut p.modes {
            m.server.cpu_seconds = made_up(m, clients, 0.0);
        }
    }
    let alone = Calibration::fit(&r, &wakes, &flat).unwrap();
    let mut far: Vec<_> = r.points.clone();
    for p in &mut far {
        p.label = format!("round trip: {}", p.label);
        p.scenario.name = ROUND_TRIP_SCENARIO_NAME.to_string();
        p.modes
            .retain(|m| matches!(m.mode, Mode::LongPoll | Mode::Webhook));
        let clients = f64::from(p.scenario.clients.count);
        for m in &mut p.modes {
            m.server.bytes_written *= 10;
            m.server.memory_per_client_bytes *= 10.0;
            m.server.cpu_seconds = made_up(m, clients, m.deliveries.delivered as f64);
        }
    }
    assert!(far.iter().map(|p| p.modes.len()).sum::<usize>() >= 4);
    r.points.extend(far);
    let c = Calibration::fit(&r, &wakes, &flat).unwrap();
    assert_priced(&c, Op::ReplyWake, 30e3);
    assert_priced(&c, Op::LongPoll, 10e3);
    assert!(c.prices_replies_from_afar && !alone.prices_replies_from_afar);
    assert_eq!(alone.cpu_ns(Op::ReplyWake), 0.0);
    assert_eq!(
        (&c.bytes, &c.memory, &c.packets, &c.clients),
        (&alone.bytes, &alone.memory, &alone.packets, &alone.clients)
    );
}

#[test]
fn runs_whose_windows_hold_heartbeats_are_warned_of() {
    let mut r = runs();
    assert_eq!(heartbeats_warning(&r), None, "none counted");
    for (n, m) in r
        .points
        .iter_mut()
        .flat_map(|p| p.modes.iter_mut())
        .filter(|m| m.mode.streams())
        .enumerate()
    {
        m.server.heartbeats = Some(if n < 2 { 7 } else { 0 });
    }
    let warning = heartbeats_warning(&r).expect("a warning");
    assert!(warning.contains("hold 14 heartbeats"), "{warning}");
}

#[test]
fn a_request_or_push_among_many_clients_is_priced_at_the_crowding_the_runs_cost_it() {
    // Every run's CPU made up, by hand, as 10 µs for each operation counted and 40 µs more
    // for each request answered and each delivery pushed, at its share of 500 clients held: the fixture's 20, 50, 100, 200 and
    // 1,000 clients pay 4, 10, 20, 40 and 100% of it. The fit finds the crowding at 500 and
    // its 40 µs; made up without it, it finds none.
    let none = |_: &Scenario, _: &ModeResult, _: &Calibration| [0.0; 3];
    let fit_for = |crowding_us: f64| {
        let mut r = runs();
        for p in &mut r.points {
            let clients = f64::from(p.scenario.clients.count);
            for m in &mut p.modes {
                let counts = Counts::measured(m, clients, 0);
                // Crowded at one client: every request and push counted in full.
                let touched = Counts::measured(m, clients, 1).get(Op::Crowded);
                let share = (clients / 500.0).min(1.0);
                m.server.cpu_seconds = Op::ALL.iter().map(|&op| counts.get(op) * 10e-6).sum::<f64>()
                    + touched * share * crowding_us * 1e-6;
            }
        }
        Calibration::fit(&r, &none, &flat).unwrap()
    };
    let c = fit_for(40.0);
    assert_eq!(c.crowded_at, 500);
    assert_priced(&c, Op::Crowded, 40e3);
    assert_priced(&c, Op::SseEvent, 10e3);
    assert!(c.crowded_at_alike.contains(&500), "{:?}", c.crowded_at_alike);
    let c = fit_for(0.0);
    assert!(
        c.crowded_at == 0 || c.cpu_ns(Op::Crowded) < 1e-3,
        "{} at {}",
        c.cpu_ns(Op::Crowded),
        c.crowded_at
    );
    assert_priced(&c, Op::SseEvent, 10e3);
}
