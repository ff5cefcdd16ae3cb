//! The server's limit on connections in the model, against what the real clients do when
//! turned away, derived by hand: three clients of one topic on a 2 ms round trip (1 ms each
//! way) to a server that answers at once and holds two connections.

use std::path::Path;

use super::fault_tests::model;
use super::Outcome;
use crate::event::Mode;
use crate::scenario::Scenario;

/// Three clients of `mode` on one topic of 20 events/s for 30 s after a 1 s warm-up, the
/// server holding two connections.
fn scenario(mode: Mode, extra: &str) -> Scenario {
    let text = format!(
        "name = \"a\"\nseed = 4\nduration = \"30s\"\nwarmup = \"1s\"\ndrain = \"10s\"\nmodes = [\"{mode}\"]\n\
         [events]\nrate = 20\ntopics = 1\n[clients]\ncount = 3\n[server]\nmax_connections = 2\n{extra}"
    );
    Scenario::parse(Path::new("a.toml"), &text).unwrap()
}

/// Two clients have every event; the third, turned away each time, has none.
fn one_client_goes_without(mode: Mode, o: &Outcome) {
    assert_eq!(o.expected % 3, 0, "{mode}");
    assert_eq!(o.delivered, o.expected / 3 * 2, "{mode}");
    assert_eq!(o.peak_connections, 2, "{mode}");
}

#[test]
fn a_poller_turned_away_asks_again_at_each_slot() {
    let o = model(
        &scenario(Mode::Poll, "[poll]\ninterval = \"1s\"\njitter = 0.0"),
        Mode::Poll,
    );
    one_client_goes_without(Mode::Poll, &o);
    // One slot a second; those whose request reaches the server from 1 s to the drain's end
    // at 41 s are counted: 40. Each is an error, and each after its first a new connection.
    assert_eq!(o.connections_refused, 40);
    assert_eq!(o.client_errors, 41);
    assert_eq!(o.reconnects, 40);
}

#[test]
fn a_long_poller_turned_away_asks_again_after_the_retry_after() {
    let o = model(&scenario(Mode::LongPoll, ""), Mode::LongPoll);
    one_client_goes_without(Mode::LongPoll, &o);
    // Each refusal takes its round trip and the 1 s the server asks for: one every 1.002 s,
    // the first reaching the server at 1 ms, so those from 1 s to 41 s are the 2nd (1.003 s)
    // to the 41st (40.081 s).
    assert_eq!(o.connections_refused, 40);
    assert_eq!(
        o.requests % 2,
        0,
        "only the two held clients' requests reach a route"
    );
}

#[test]
fn a_stream_turned_away_backs_off_as_the_real_client_does() {
    for mode in [Mode::Sse, Mode::Websocket] {
        let o = model(&scenario(mode, ""), mode);
        one_client_goes_without(mode, &o);
        // Refused at 0, it reads the 503 at 1 ms and waits 1 s (retry and Retry-After), then
        // 2, 4, 8, 16 s as failures double the retry: attempts reach the server at 1.002,
        // 3.004, 7.006, 15.008 and 31.010 s (the next would be at 63 s).
        assert_eq!(o.connections_refused, 5, "{mode}");
        assert_eq!((o.client_errors, o.reconnects), (6, 5), "{mode}");
        assert_eq!(o.requests, 0, "{mode}: a turned-away reconnect reaches no route");
    }
    // The two held WebSockets each keep one frame; the third holds no connection, so no
    // buffer either (not one counted as empty, below the calibration's frame).
    let s = scenario(Mode::Websocket, "");
    let buffers = model(&s, Mode::Websocket)
        .send_buffers
        .expect("a WebSocket's buffers");
    let frame = super::send_buffers::frame_bytes(1, s.events.payload_bytes) as f64;
    let beyond = buffers.beyond(1, s.events.payload_bytes);
    assert_eq!(beyond, 0.0, "{} frames", beyond / frame);
}

#[test]
fn a_cut_stream_gives_its_connection_to_whoever_connects_next() {
    // Every stream is cut from 4 s to 14 s. The two held close and give their connections
    // back; each reconnects at 5.002 s, is let in, refused by the cut (Retry-After: 9) and
    // closes again, and is back for good at 14.004 s, resuming from its last event. The third
    // client is turned away at 1.002 and 3.004 s; at 7.006 s a connection is free, so the cut
    // refuses it instead (Retry-After: 7, its fourth failure: 8 s); at 15.008 and 31.010 s
    // both are held again and it is turned away.
    let cut = "[[faults]]\nkind = \"stream_cut\"\nat = \"4s\"\nfor = \"10s\"\nshare = 1.0";
    let o = model(&scenario(Mode::Sse, cut), Mode::Sse);
    one_client_goes_without(Mode::Sse, &o);
    assert_eq!(o.stream_cuts, 2);
    assert_eq!(o.connections_refused, 4);
    // The third client's six failures and one for each of the other two.
    assert_eq!(o.client_errors, 8);
}
