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
    let ws = "[websocket]\nbuffer = 8\nslow_clients = 0.5\nslow_pause = \"1500ms\"\nretry = \"50ms\"";
    let mut s = tiny("websocket", events, ws);
    s.drain = std::time::Duration::from_secs(10);
    let m = run_one(&s).await;
    assert_all_delivered(&m);
    assert!(m.deliveries.slow_disconnects >= 1, "{:?}", m.deliveries);
    assert!(m.deliveries.reconnects >= 1, "{:?}", m.deliveries);
}
