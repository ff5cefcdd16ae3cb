use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// The calibration runs as measured on the reference machine (their time series left out).
pub(super) fn runs() -> Results {
    serde_json::from_str(include_str!("../../tests/fixtures/calibration-runs.json")).unwrap()
}

/// Asserts that `c` prices `op` at `ns` (to a millionth).
pub(super) fn assert_priced(c: &Calibration, op: Op, ns: f64) {
    assert!(
        (c.cpu_ns(op) / ns - 1.0).abs() < 1e-6,
        "{op:?}: {} against {ns}",
        c.cpu_ns(op)
    );
}

/// A model whose latency is the same whatever the handoff, for the fits that test the rest.
pub(super) fn flat(_: &Scenario, _: &ModeResult, _: &Calibration) -> f64 {
    1.0
}

#[test]
fn wake_ups_that_settle_are_fitted_and_ones_that_do_not_are_said() {
    // One wake-up per event measured: the counts never move after the first round.
    let steady =
        |_: &Scenario, m: &ModeResult, _: &Calibration| [m.deliveries.events_measured as f64, 0.0, 0.0];
    let c = Calibration::fit(&runs(), &steady, &flat).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    for run in &c.runs {
        assert_eq!(
            run.counts.get(&Op::Wake).copied().unwrap_or(0.0),
            run.counts[&Op::Event]
        );
    }
    // Counts that flip between two values each round (of as many calls as runs) never settle.
    let r = runs();
    let per_round: usize = r.points.iter().map(|p| p.modes.len()).sum();
    let calls = AtomicUsize::new(0);
    let flipping = |_: &Scenario, _: &ModeResult, _: &Calibration| {
        let round = calls.fetch_add(1, Ordering::SeqCst) / per_round;
        [if round.is_multiple_of(2) { 100.0 } else { 200.0 }, 0.0, 0.0]
    };
    let c = Calibration::fit_waking_after(&r, &flipping, 0, 0, &[]).unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        WAKE_ROUNDS * per_round,
        "every round counted every run"
    );
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("still moved by up to"),
        "{}",
        c.warnings[0]
    );
}

#[test]
fn the_idle_threshold_is_the_one_whose_wake_ups_explain_the_runs() {
    // Made up, by hand: each run's CPU is 1 ms per event published and 0.5 ms per wake-up,
    // and an event wakes the server when the gap between events (1 / rate) is longer than
    // 3 ms: the runs at 2, 20 and 50 events/s wake for each event, those at 400 and 1,000
    // (gaps of 2.5 and 1 ms) never. Any threshold from 2.5 ms to 20 ms counts the same
    // wake-ups and fits exactly; one below 2.5 ms counts wake-ups that did not happen.
    let gap_ns = |s: &Scenario| 1e9 / s.events.rate;
    let mut r = runs();
    for p in &mut r.points {
        let gap = gap_ns(&p.scenario);
        for m in &mut p.modes {
            let events = m.deliveries.events_measured as f64;
            let wakes = if gap > 3e6 { events } else { 0.0 };
            m.server.cpu_seconds = events * 1e-3 + wakes * 0.5e-3;
        }
    }
    let wakes = |s: &Scenario, m: &ModeResult, c: &Calibration| {
        let events = m.deliveries.events_measured as f64;
        [
            if gap_ns(s) > c.falls_asleep_ns as f64 {
                events
            } else {
                0.0
            },
            0.0,
            0.0,
        ]
    };
    let c = Calibration::fit(&r, &wakes, &flat).unwrap();
    assert!(
        (2_500_000..20_000_000).contains(&c.falls_asleep_ns),
        "{}",
        c.falls_asleep_ns
    );
    assert!(c.fit_error() < 1e-6, "{}", c.fit_error());
    // Of the thresholds tried, 3, 5 and 10 ms count the same wake-ups and fit exactly alike.
    for t in [3_000_000, 5_000_000, 10_000_000] {
        assert!(
            c.falls_asleep_alike_ns.contains(&t),
            "{:?}",
            c.falls_asleep_alike_ns
        );
    }
    assert_priced(&c, Op::Wake, 0.5e6);
    let every_idle_core = Calibration::fit_waking_after(&r, &wakes, 0, 0, &[]).unwrap();
    assert!(
        every_idle_core.fit_error() > 0.01,
        "{}",
        every_idle_core.fit_error()
    );
}

#[test]
fn a_fit_is_within_noise_of_another_unless_its_runs_are_worse_by_more_than_their_spread() {
    // Ten runs of 1 s of CPU each, fitted at 1 + e. By hand, on d = e_a² − e_b² per run:
    let fit = |errors: &[f64]| {
        let mut c = Calibration::reference();
        c.runs = errors
            .iter()
            .map(|e| Run {
                point: String::new(),
                mode: Mode::Poll,
                counts: BTreeMap::new(),
                cpu_seconds: 1.0,
                fitted_cpu_seconds: 1.0 + e,
            })
            .collect();
        c
    };
    let tenth = fit(&[0.1; 10]);
    // the same errors: d = 0, within;
    assert!(fit(&[0.1; 10]).fits_within_noise_of(&tenth));
    // 11% in every run: d = 0.0021 in each, no spread: worse beyond noise;
    assert!(!fit(&[0.11; 10]).fits_within_noise_of(&tenth));
    // 20% and 0% by turns: d = 0.03 and −0.01, a mean of 0.01 and a standard error of
    // 0.02 × √(10/9) / √10 = 0.0067: within two of it; and the other way, d's mean −0.01.
    let spread = fit(&[0.2, 0.0, 0.2, 0.0, 0.2, 0.0, 0.2, 0.0, 0.2, 0.0]);
    assert!(spread.fits_within_noise_of(&tenth));
    assert!(tenth.fits_within_noise_of(&spread));
}

#[test]
fn memory_is_fitted_per_connection_held_not_per_client() {
    // The webhook runs' memory made up, by hand, as 1 MB + 40 KiB per connection the sender
    // held, the connections unrelated to the clients (7, 30, 90, 15, 60 against 20 to 1,000
    // clients); every other mode's left as measured.
    let mut r = runs();
    let connections = [7u64, 30, 90, 15, 60];
    let mut made = 0;
    for (p, &conns) in r.points.iter_mut().zip(&connections) {
        let clients = f64::from(p.scenario.clients.count);
        for m in p.modes.iter_mut().filter(|m| m.mode == Mode::Webhook) {
            m.server.peak_connections = conns;
            m.server.memory_per_client_bytes = (1e6 + 40.0 * 1024.0 * conns as f64) / clients;
            made += 1;
        }
    }
    assert_eq!(made, connections.len());
    let none = |_: &Scenario, _: &ModeResult, _: &Calibration| [0.0; 3];
    let c = Calibration::fit(&r, &none, &flat).unwrap();
    let w = c.memory(Mode::Webhook).unwrap();
    assert!((w.fixed_bytes - 1e6).abs() < 1.0, "{w:?}");
    assert!((w.per_connection_bytes - 40.0 * 1024.0).abs() < 1e-3, "{w:?}");
    assert!(
        (w.held(&Held {
            connections: 100,
            ..Held::default()
        }) - (1e6 + 4096e3))
            .abs()
            < 1.0,
        "{w:?}"
    );
}

#[test]
fn a_calibration_of_an_older_layout_is_refused_with_what_to_do() {
    // Layout 2 had a threshold of idle past which a job paid a whole wake-up, where a core
    // now falls asleep after an idle of some mean; its files (their costs fitted so) are told
    // to calibrate again, not read as though fitted the new way, nor told that they are no
    // calibration at all.
    let old = include_str!("reference.json")
        .replace("\"schema_version\": 3", "\"schema_version\": 2")
        .replace("falls_asleep_ns", "wake_after_idle_ns");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.json");
    std::fs::write(&path, old).unwrap();
    let e = format!("{:#}", Calibration::load(&path).unwrap_err());
    assert!(
        e.contains("has calibration schema 2") && e.contains("run `pushpull calibrate` again"),
        "{e}"
    );
}

#[test]
fn the_clients_cpu_is_fitted_per_mode_from_the_drivers() {
    // The driver's CPU made up as 3 ms a second + 20 µs a request + 10 µs an event for the
    // pollers and 2 ms a second + 8 µs an event for the streams: the fit gives them back.
    let mut r = runs();
    for p in &mut r.points {
        for m in &mut p.modes {
            let (second, request, event) = match m.mode {
                Mode::Poll | Mode::ConditionalPoll => (3e-3, 20e-6, 10e-6),
                _ => (2e-3, 0.0, 8e-6),
            };
            let events = (m.deliveries.delivered + m.deliveries.duplicates) as f64;
            m.client.cpu_seconds =
                second * m.measured_seconds + request * m.client.requests as f64 + event * events;
        }
    }
    let c = Calibration::fit(
        &r,
        &|_: &Scenario, _: &ModeResult, _: &Calibration| [0.0; 3],
        &flat,
    )
    .unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.max(1.0);
    for d in &c.clients {
        let (second, request, event) = match d.mode {
            Mode::Poll | Mode::ConditionalPoll => (3e6, 20e3, 10e3),
            _ => (2e6, 0.0, 8e3),
        };
        assert!(
            close(d.second_ns, second) && close(d.request_ns, request) && close(d.event_ns, event),
            "{d:?}"
        );
    }
    assert_eq!(c.clients.len(), 6);
}

#[test]
fn bytes_are_fitted_for_one_payload_and_carry_another_events_whole() {
    // Every run's bytes made up, by hand: a request's answer writes 150 bytes, each event
    // written 120 + its payload (a webhook attempt 300 + its event's payload), and half the
    // runs' events carry 1,024 bytes instead of 256.
    let mut r = runs();
    for (k, p) in r.points.iter_mut().enumerate() {
        let payload = if k % 2 == 0 { 256 } else { 1024 };
        p.scenario.events.payload_bytes = payload;
        for m in &mut p.modes {
            let (requests, delivered) = (m.server.requests as f64, m.deliveries.delivered as f64);
            let written = match m.mode {
                Mode::Webhook => (300.0 + payload as f64) * requests,
                _ => 150.0 * requests + (120.0 + payload as f64) * delivered,
            };
            m.server.bytes_written = written.round() as u64;
        }
    }
    let none = |_: &Scenario, _: &ModeResult, _: &Calibration| [0.0; 3];
    let c = Calibration::fit(&r, &none, &flat).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() < 0.5;
    for mode in [Mode::Poll, Mode::LongPoll, Mode::Sse] {
        let b = c.bytes(mode).unwrap();
        assert_eq!(b.payload_bytes, 256.0, "the first run's payload");
        assert!(close(b.written_per_delivery, 376.0), "{b:?}");
        let big = b.carrying(2000);
        assert!(close(big.written_per_delivery, 2120.0), "{big:?}");
        assert_eq!(big.written_per_request, b.written_per_request);
    }
    let w = c.bytes(Mode::Webhook).unwrap();
    assert!(
        close(w.written_per_request, 556.0) && w.written_per_delivery == 0.0,
        "{w:?}"
    );
    assert!(close(w.carrying(64).written_per_request, 364.0), "{w:?}");
}

#[test]
fn a_pollers_empty_answers_are_priced_apart_from_its_pages() {
    // Every poller's bytes made up, by hand: an empty page writes 170 bytes and a 304 none of
    // a body (95), a page with events 230 and each event in it 376.
    let mut r = runs();
    for p in &mut r.points {
        for m in &mut p.modes {
            let empty_each = match m.mode {
                Mode::Poll => 170.0,
                Mode::ConditionalPoll => 95.0,
                _ => continue,
            };
            let empty = m.server.empty_responses as f64;
            let pages = m.server.requests as f64 - empty;
            let written = empty_each * empty + 230.0 * pages + 376.0 * m.deliveries.delivered as f64;
            m.server.bytes_written = written.round() as u64;
        }
    }
    let none = |_: &Scenario, _: &ModeResult, _: &Calibration| [0.0; 3];
    let c = Calibration::fit(&r, &none, &flat).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() < 0.5;
    for (mode, empty_each) in [(Mode::Poll, 170.0), (Mode::ConditionalPoll, 95.0)] {
        let b = c.bytes(mode).unwrap();
        assert!(
            b.written_per_empty.is_some_and(|e| close(e, empty_each))
                && close(b.written_per_request, 230.0)
                && close(b.written_per_delivery, 376.0),
            "{b:?}"
        );
        assert!(close(b.written(0), empty_each) && close(b.written(3), 230.0 + 3.0 * 376.0));
        assert!(close(
            b.written_for(10.0, 4.0, 12.0),
            4.0 * empty_each + 6.0 * 230.0 + 12.0 * 376.0
        ));
    }
    // The other modes have no part of their own for an answer without events.
    assert!(c.bytes(Mode::LongPoll).unwrap().written_per_empty.is_none());
    // Nor have pollers whose runs never answered empty: the part was not measured.
    for p in &mut r.points {
        for m in &mut p.modes {
            m.server.empty_responses = 0;
        }
    }
    let c = Calibration::fit(&r, &none, &flat).unwrap();
    assert!(c
        .bytes(Mode::ConditionalPoll)
        .unwrap()
        .written_per_empty
        .is_none());
}

#[test]
fn a_page_costs_no_less_than_an_empty_poll() {
    // Made up: each run's CPU is 40 µs per empty poll and `page_us` per page, nothing else
    // (a µs besides, so that every run weighs alike).
    let fit_for = |page_us: f64| {
        let mut r = runs();
        for p in &mut r.points {
            let clients = f64::from(p.scenario.clients.count);
            for m in &mut p.modes {
                let n = Counts::measured(m, clients, 0);
                m.server.cpu_seconds = (n.get(Op::EmptyPoll) * 40.0 + n.get(Op::Page) * page_us + 1.0) * 1e-6;
            }
        }
        let none = |_: &Scenario, _: &ModeResult, _: &Calibration| [0.0; 3];
        Calibration::fit_waking_after(&r, &none, 0, 0, &[]).unwrap()
    };
    // A page dearer than an empty poll is found at its price.
    let c = fit_for(60.0);
    assert_priced(&c, Op::EmptyPoll, 40e3);
    assert_priced(&c, Op::Page, 60e3);
    // One said to be cheaper, as loose fits had it, is held at an empty poll's price.
    let c = fit_for(10.0);
    assert!(c.cpu_ns(Op::Page) > 0.0);
    assert!(
        (c.cpu_ns(Op::Page) / c.cpu_ns(Op::EmptyPoll) - 1.0).abs() < 1e-9,
        "page {} against an empty poll's {}",
        c.cpu_ns(Op::Page),
        c.cpu_ns(Op::EmptyPoll)
    );
}

#[test]
fn the_wake_ups_are_counted_with_the_clients_beside_the_server_as_the_runs_had_them() {
    // The measured runs had their clients on the server's machine, holding its cores for
    // their part: the model that counts the runs' wake-ups is given the clients' CPU fitted
    // on the same runs, in every round and for every threshold.
    let r = runs();
    let expected = ClientCpu::fit_each_mode(&r);
    assert!(!expected.is_empty());
    let (calls, without) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let wakes = |_: &Scenario, m: &ModeResult, c: &Calibration| {
        calls.fetch_add(1, Ordering::SeqCst);
        if c.clients != expected {
            without.fetch_add(1, Ordering::SeqCst);
        }
        [m.deliveries.events_measured as f64, 0.0, 0.0]
    };
    let c = Calibration::fit(&r, &wakes, &flat).unwrap();
    assert!(calls.load(Ordering::SeqCst) > 0);
    assert_eq!(
        without.load(Ordering::SeqCst),
        0,
        "of {} counts",
        calls.load(Ordering::SeqCst)
    );
    assert_eq!(c.clients, expected);
}
