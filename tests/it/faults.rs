//! What happens when things go wrong: failing receivers, expired cursors, slow consumers.

use crate::util::{assert_all_delivered, run_one, tiny};

#[tokio::test]
async fn webhook_retries_until_receiver_recovers() {
    let m = run_one(&tiny(
        "webhook",
        "",
        "[webhook]\nreceiver_fail_attempts = 2\nretry = [\"20ms\", \"50ms\", \"100ms\"]\nreceiver_hosts = 2",
    ))
    .await;
    assert_all_delivered(&m);
    let w = m.server.webhook;
    assert!(w.retries >= 2 * m.deliveries.delivered, "{w:?}");
    assert!(w.failures >= 2 * m.deliveries.delivered, "{w:?}");
    assert_eq!(m.deliveries.dead_letters, 0);
    assert_eq!(m.deliveries.duplicates, 0);
    // Two failures and the retries behind them: at least 20 ms + 50 ms (less 20% jitter).
    assert!(m.latency.p50_ms >= 50.0, "p50 {} ms", m.latency.p50_ms);
}

#[tokio::test]
async fn webhook_gives_up_into_dead_letters_when_retries_run_out() {
    let m = run_one(&tiny(
        "webhook",
        "rate = 20\ntopics = 1",
        "[webhook]\nreceiver_fail_attempts = 5\nretry = [\"10ms\"]",
    ))
    .await;
    let d = &m.deliveries;
    assert_eq!(d.delivered, 0, "{d:?}");
    // Nothing is lost without a trace: every owed delivery sits in the dead-letter list.
    assert_eq!(m.outcomes.dead_lettered, d.expected, "{:?}", m.outcomes);
    assert_eq!(d.lost, 0);
    assert_eq!(d.subscribers_with_loss, 10);
    crate::util::assert_topics_add_up(&m);
    // Warm-up messages die too; every owed one is among the dead letters.
    assert!(d.dead_letters >= d.expected, "{d:?}");
}

#[tokio::test]
async fn expired_cursor_gets_410_and_the_poller_counts_what_it_missed() {
    // 200 events/s on one topic, only 20 retained, a poll every 500 ms: most are gone by then.
    let events =
        "rate = 200\ntopics = 1\npayload_bytes = 16\narrival = \"constant\"\n[events.retention]\ncount = 20";
    let m = run_one(&tiny(
        "poll",
        events,
        "[poll]\ninterval = \"500ms\"\njitter = 0.0",
    ))
    .await;
    let d = &m.deliveries;
    let gone = m
        .server
        .requests_by_route
        .get("/events")
        .and_then(|r| r.get(&410))
        .copied()
        .unwrap_or(0);
    assert!(gone > 0, "no 410 answers: {:?}", m.server.requests_by_route);
    assert!(d.lost > 0, "{d:?}");
    assert_eq!(d.delivered + d.lost, d.expected, "{d:?}");
    assert!(
        d.gap_events >= d.lost,
        "the client saw fewer gaps than it lost: {d:?}"
    );
}

#[tokio::test]
async fn slow_websocket_consumer_is_disconnected_resumes_and_loses_nothing() {
    // Half the clients stop reading for 1.5 s; 64 KiB events at 100/s fill their sockets and an
    // 8-event queue, so the server disconnects them; the log still holds everything.
    let events = "rate = 100\ntopics = 1\npayload_bytes = 65536\narrival = \"constant\"";
    let ws = "[websocket]\nbuffer = 8\nretry = \"50ms\"\n\
              [[faults]]\nkind = \"client_pause\"\nat = \"300ms\"\nfor = \"1500ms\"\nshare = 0.5";
    let mut s = tiny("websocket", events, ws);
    s.drain = std::time::Duration::from_secs(10);
    let m = run_one(&s).await;
    assert_all_delivered(&m);
    assert!(m.deliveries.slow_disconnects >= 1, "{:?}", m.deliveries);
    assert!(m.deliveries.reconnects >= 1, "{:?}", m.deliveries);
}

/// A webhook scenario of `tiny` shape (10 clients, 50 events/s on 2 topics, 1.2 s) with these
/// `[webhook]` settings and faults.
fn webhook(settings: &str, faults: &str) -> pushpull::scenario::Scenario {
    tiny(
        "webhook",
        "",
        &format!("[webhook]\nreceiver_hosts = 2\n{settings}\n{faults}"),
    )
}

/// The accounting of the only fault window.
fn window(m: &pushpull::results::ModeResult) -> &pushpull::results::Outcomes {
    assert_eq!(m.fault_windows.len(), 1, "{:?}", m.fault_windows);
    let w = &m.fault_windows[0].outcomes;
    assert!(w.expected > 0, "no event fell in the window: {w:?}");
    w
}

#[tokio::test]
async fn receiver_down_every_event_still_arrives_after_at_least_one_retry() {
    // Answering 503 or hanging up: either way the sender retries until the receiver is back.
    for answer in ["503", "\"close\""] {
        let m = run_one(&webhook(
            "retry = [\"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\"]",
            &format!(
                "[[faults]]\nkind = \"receiver_down\"\nanswer = {answer}\nat = \"400ms\"\nfor = \"500ms\""
            ),
        ))
        .await;
        assert_all_delivered(&m);
        let (w, hook) = (window(&m), m.server.webhook);
        assert_eq!(w.lost + w.dead_lettered, 0, "{answer}: {w:?}");
        assert_eq!(hook.dead_letters, 0, "{answer}: {hook:?}");
        // Every delivery owed in the window failed at least once, and every failure was retried.
        assert!(hook.failures >= w.expected, "{answer}: {hook:?} vs {w:?}");
        assert_eq!(hook.retries, hook.failures, "{answer}: {hook:?}");
    }
}

#[tokio::test]
async fn retry_after_from_a_downed_receiver_is_obeyed() {
    let m = run_one(&webhook(
        "retry = [\"50ms\", \"50ms\", \"50ms\", \"50ms\"]",
        "[[faults]]\nkind = \"receiver_down\"\nretry_after = \"1s\"\nat = \"400ms\"\nfor = \"300ms\"",
    ))
    .await;
    assert_all_delivered(&m);
    let (w, hook) = (window(&m), m.server.webhook);
    // The schedule says 50 ms; the receiver said 1 s, and was believed every time.
    assert_eq!(hook.retry_after_obeyed, hook.failures, "{hook:?}");
    assert_eq!(hook.retries, hook.failures, "{hook:?}");
    // Events of the window waited 1 s (the few at its very edge reached the receiver after it).
    assert!(w.late * 10 >= w.expected * 9, "{w:?}");
    assert!(w.late_p50_ms >= 950.0, "{w:?}");
}

#[tokio::test]
async fn receiver_slow_duplicates_equal_the_answers_that_came_too_late() {
    let m = run_one(&webhook(
        "timeout = \"100ms\"\nretry = [\"50ms\", \"50ms\", \"50ms\", \"50ms\", \"50ms\", \"50ms\", \"50ms\", \"50ms\"]",
        "[[faults]]\nkind = \"receiver_slow\"\ndelay = \"300ms\"\nat = \"400ms\"\nfor = \"300ms\"",
    ))
    .await;
    assert_all_delivered(&m);
    let hook = m.server.webhook;
    assert!(hook.timeouts > 0, "{hook:?}");
    assert_eq!(hook.dead_letters, 0, "{hook:?}");
    // The receiver did the work each time; the sender, not hearing back in time, sent again.
    assert_eq!(
        m.deliveries.duplicates, hook.timeouts,
        "{hook:?} {:?}",
        m.deliveries
    );
    assert_eq!(window(&m).duplicates, hook.timeouts);
}

#[tokio::test]
async fn receiver_flaky_fails_about_its_share_and_retries_make_up_for_it() {
    let m = run_one(&webhook(
        &format!("retry = [{}]", vec!["\"5ms\""; 20].join(", ")),
        "[[faults]]\nkind = \"receiver_flaky\"\nprobability = 0.5\nat = \"0s\"\nfor = \"1200ms\"",
    ))
    .await;
    assert_all_delivered(&m);
    let hook = m.server.webhook;
    assert_eq!(hook.dead_letters, 0, "{hook:?}");
    // Every failure was retried; a few retries are of warm-up failures, counted before.
    assert!(
        hook.retries >= hook.failures && hook.retries <= hook.failures + 30,
        "{hook:?}"
    );
    let share = hook.failures as f64 / hook.attempts as f64;
    assert!(
        (0.35..0.65).contains(&share),
        "{share} of attempts failed: {hook:?}"
    );
}

#[tokio::test]
async fn receiver_gone_disables_the_endpoint_and_dead_letters_the_rest() {
    let m = run_one(&webhook(
        "retry = [\"50ms\", \"50ms\"]",
        "[[faults]]\nkind = \"receiver_gone\"\nat = \"500ms\"\nfor = \"300ms\"\nshare = 0.3",
    ))
    .await;
    let (o, hook) = (&m.outcomes, m.server.webhook);
    assert_eq!(hook.disabled_endpoints, 3, "{hook:?}");
    assert_eq!(hook.retries, 0, "410 is not retried: {hook:?}");
    assert_eq!(o.lost, 0, "nothing vanishes: {o:?}");
    assert!(o.dead_lettered > 0, "{o:?}");
    assert_eq!(m.deliveries.subscribers_with_loss, 3, "{:?}", m.deliveries);
    assert_eq!(m.fault_windows[0].clients_hit, 3);
}

#[tokio::test]
async fn an_endpoint_failing_past_disable_after_is_disabled() {
    let m = run_one(&webhook(
        "disable_after = \"300ms\"\nretry = [\"100ms\", \"100ms\", \"100ms\", \"100ms\", \"100ms\", \"100ms\"]",
        "[[faults]]\nkind = \"receiver_down\"\nat = \"200ms\"\nfor = \"1s\"\nshare = 0.2",
    ))
    .await;
    let (o, hook) = (&m.outcomes, m.server.webhook);
    assert_eq!(hook.disabled_endpoints, 2, "{hook:?}");
    assert_eq!(o.lost, 0, "{o:?}");
    assert!(o.dead_lettered > 0, "{o:?}");
    assert_eq!(m.deliveries.subscribers_with_loss, 2, "{:?}", m.deliveries);
}

#[tokio::test]
async fn stream_cut_closes_streams_refuses_them_for_the_window_and_clients_resume() {
    for mode in ["sse", "websocket"] {
        let cut = format!(
            "[{mode}]\nretry = \"50ms\"\n[[faults]]\nkind = \"stream_cut\"\nat = \"400ms\"\nfor = \"300ms\"\nshare = 0.5"
        );
        let m = run_one(&tiny(mode, "", &cut)).await;
        let d = &m.deliveries;
        assert_eq!(d.delivered, d.expected, "{mode}: {d:?}");
        assert_eq!(d.duplicates, 0, "{mode}: resumed from the last id: {d:?}");
        assert_eq!(d.stream_cuts, 5, "{mode}: {d:?}");
        // Each cut client tried once during the window (503, Retry-After: 1), then got back in.
        assert_eq!(d.client_errors, 5, "{mode}: {d:?}");
        assert_eq!(d.reconnects, 10, "{mode}: {d:?}");
        assert!(window(&m).late > 0, "{mode}: {:?}", m.fault_windows);
    }
}

#[tokio::test]
async fn client_pause_delays_pollers_and_long_pollers_who_then_catch_up() {
    for (mode, table) in [("poll", "[poll]\ninterval = \"100ms\""), ("long_poll", "")] {
        let pause = format!("{table}\n[[faults]]\nkind = \"client_pause\"\nat = \"300ms\"\nfor = \"600ms\"");
        let m = run_one(&tiny(mode, "", &pause)).await;
        assert_all_delivered(&m);
        let w = window(&m);
        assert!(w.late > 0, "{mode}: {w:?}");
        assert!(m.latency.max_ms >= 400.0, "{mode}: {:?}", m.latency);
    }
}

#[tokio::test]
async fn latency_adds_half_a_round_trip_to_pushes_and_up_to_a_whole_one_to_long_polls() {
    let latency = "[[faults]]\nkind = \"latency\"\ndelay = \"100ms\"\nat = \"0s\"\nfor = \"1200ms\"";
    // A push crosses the wire once (50 ms); a long poller's events also wait while its next
    // request is on its way (25 events/s each, so most arrive during that 100 ms round trip).
    for (mode, expected) in [
        ("sse", 48.0..90.0),
        ("webhook", 48.0..90.0),
        ("long_poll", 60.0..160.0),
    ] {
        let m = run_one(&tiny(mode, "", latency)).await;
        assert_all_delivered(&m);
        let p50 = m.latency.p50_ms;
        assert!(
            expected.contains(&p50),
            "{mode}: p50 {p50} ms, expected {expected:?}"
        );
    }
}
