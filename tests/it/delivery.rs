//! Each mode delivers every event to every subscriber, at the latency its theory predicts.

use crate::util::{assert_all_delivered, run, run_one, tiny};

#[tokio::test]
async fn poll_delivers_every_event_and_waits_about_half_its_interval() {
    let m = run_one(&tiny("poll", "", "[poll]\ninterval = \"200ms\"\njitter = 0.1")).await;
    assert_all_delivered(&m);
    assert!(
        (60.0..=140.0).contains(&m.latency.p50_ms),
        "p50 {} ms",
        m.latency.p50_ms
    );
    // Half the interval (fixed slots), plus the answer's way back (half the measured round
    // trip) and the generator's lateness.
    let g = m.theory.given;
    assert!(g.round_trip_ms > 0.0 && g.round_trip_ms < 5.0, "{g:?}");
    assert!((m.theory.latency_p50_ms - 100.0 - g.round_trip_ms / 2.0 - g.generator_ms).abs() < 1e-9);
}

/// Pollers still behind when the drain runs out (pages of one event, 3,000 events a second on
/// the one topic they all follow: more than each can ask for, one round trip a page) stop
/// asking with the run: what they had not fetched is lost, and what each
/// saw is what the server counted handing it (the run fails when those disagree). They used
/// to go on asking while their pages said `more`, after the server's count had been read.
#[tokio::test]
async fn pollers_behind_when_the_run_stops_stop_asking_and_count_the_rest_lost() {
    let mut s = tiny(
        "poll",
        "rate = 3000\ntopics = 1\npayload_bytes = 64",
        "[poll]\ninterval = \"5ms\"\nschedule = \"after_answer\"\nlimit = 1",
    );
    s.clients.count = 100;
    s.drain = std::time::Duration::from_millis(100);
    // No warm-up backlog to work through first: on a loaded machine, pollers this slow once
    // spent the whole run on the warm-up's events and delivered none of the window's.
    s.warmup = std::time::Duration::ZERO;
    let m = run_one(&s).await;
    let d = &m.deliveries;
    assert!(
        d.lost > 0 && d.delivered > 0,
        "the pollers were to fall behind: {d:?}"
    );
}

#[tokio::test]
async fn conditional_poll_delivers_every_event() {
    let m = run_one(&tiny(
        "conditional_poll",
        "",
        "[conditional_poll]\ninterval = \"200ms\"",
    ))
    .await;
    assert_all_delivered(&m);
    assert!(
        (60.0..=140.0).contains(&m.latency.p50_ms),
        "p50 {} ms",
        m.latency.p50_ms
    );
}

#[tokio::test]
async fn long_poll_delivers_every_event_within_milliseconds() {
    let m = run_one(&tiny("long_poll", "", "[long_poll]\nwait = \"5s\"")).await;
    assert_all_delivered(&m);
    assert!(m.latency.p50_ms < 20.0, "p50 {} ms", m.latency.p50_ms);
}

#[tokio::test]
async fn sse_delivers_every_event_within_milliseconds() {
    let m = run_one(&tiny("sse", "", "")).await;
    assert_all_delivered(&m);
    assert!(m.latency.p50_ms < 20.0, "p50 {} ms", m.latency.p50_ms);
    assert_eq!(m.deliveries.duplicates, 0);
    assert_eq!(m.deliveries.out_of_order, 0);
}

#[tokio::test]
async fn websocket_delivers_every_event_within_milliseconds() {
    let m = run_one(&tiny("websocket", "", "")).await;
    assert_all_delivered(&m);
    assert!(m.latency.p50_ms < 20.0, "p50 {} ms", m.latency.p50_ms);
    assert_eq!(m.deliveries.duplicates, 0);
}

#[tokio::test]
async fn webhook_delivers_every_event_signed_within_milliseconds() {
    let m = run_one(&tiny("webhook", "", "[webhook]\nreceiver_hosts = 4")).await;
    assert_all_delivered(&m);
    assert!(m.latency.p50_ms < 20.0, "p50 {} ms", m.latency.p50_ms);
    // Every delivery was signed and every signature verified at the receiver.
    assert_eq!(m.deliveries.rejected, 0);
    assert_eq!(m.server.webhook.failures, 0);
    assert_eq!(m.deliveries.duplicates, 0);
}

#[tokio::test]
async fn every_mode_of_one_run_sees_the_same_schedule() {
    let mut s = tiny("poll", "", "[poll]\ninterval = \"100ms\"");
    s.modes = vec![pushpull::modes::Mode::Poll, pushpull::modes::Mode::Sse];
    let r = crate::util::run(&s).await;
    assert_eq!(r.modes.len(), 2);
    assert_eq!(
        r.modes[0].deliveries.events_measured,
        r.modes[1].deliveries.events_measured
    );
    assert_eq!(r.modes[0].deliveries.expected, r.modes[1].deliveries.expected);
    for m in &r.modes {
        assert_all_delivered(m);
    }
}

#[tokio::test]
async fn conditional_poll_answers_empty_polls_with_304_and_fewer_bytes() {
    // One event a second across 2 topics and polls every 50 ms: nearly every poll is empty.
    let quiet = "rate = 1\ntopics = 2\npayload_bytes = 64\narrival = \"constant\"";
    let plain = run_one(&tiny("poll", quiet, "[poll]\ninterval = \"50ms\"")).await;
    let conditional = run_one(&tiny(
        "conditional_poll",
        quiet,
        "[conditional_poll]\ninterval = \"50ms\"",
    ))
    .await;
    assert_all_delivered(&plain);
    assert_all_delivered(&conditional);
    let not_modified: u64 = conditional
        .server
        .requests_by_route
        .get("/events")
        .and_then(|m| m.get(&304))
        .copied()
        .unwrap_or(0);
    assert!(
        not_modified * 2 > conditional.server.empty_responses,
        "{not_modified} of {} empty answers were 304",
        conditional.server.empty_responses
    );
    assert!(
        conditional.server.empty_share > 0.8,
        "{}",
        conditional.server.empty_share
    );
    let per_request =
        |m: &pushpull::results::ModeResult| m.server.bytes_written as f64 / m.server.requests as f64;
    assert!(
        per_request(&conditional) < per_request(&plain) * 0.9,
        "conditional {:.0} B/request vs plain {:.0}",
        per_request(&conditional),
        per_request(&plain)
    );
}

#[tokio::test]
async fn the_raw_sender_delivers_every_event_unsigned_and_the_report_sets_it_beside_the_dispatcher() {
    let mut s = tiny(
        "webhook",
        "",
        "[webhook]\nreceiver_hosts = 4\n[sweep]\n\"webhook.sender\" = [\"dispatcher\", \"raw\"]",
    );
    s.duration = std::time::Duration::from_secs(4);
    let results = run(&s).await;
    assert_eq!(results.points.len(), 2);
    for p in &results.points {
        let m = &p.modes[0];
        assert_all_delivered(m);
        assert_eq!(
            (m.deliveries.rejected, m.deliveries.duplicates),
            (0, 0),
            "{}",
            p.label
        );
        assert_eq!(m.server.webhook.retries, 0, "{}", p.label);
    }
    assert!(results.points[0].scenario.webhook.signing);
    assert!(
        !results.points[1].scenario.webhook.signing,
        "the raw sender never signs"
    );
    let sections = pushpull::report::sweep_sections(&results);
    let ceiling = sections
        .iter()
        .find(|s| s.id == "ceiling")
        .expect("a ceiling section");
    assert_eq!(ceiling.rows.len(), 2);
    // 50 events a second on 2 topics to 10 clients: each event is owed to 5, about 250 a
    // second, which both senders keep up with on any machine.
    let offered = results.points[1].modes[0].deliveries.expected as f64 / 4.0;
    assert!((offered - 250.0).abs() < 50.0, "{offered}");
    let offered = pushpull::report::html::number(offered);
    assert_eq!(ceiling.rows[1].1[1], offered);
    let said =
        format!("The raw sender kept up with the {offered} offered a second, and so did the dispatcher");
    assert!(ceiling.note.contains(&said), "{}", ceiling.note);
}
