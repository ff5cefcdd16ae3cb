//! Each fault kind in the model, against what the real client, server and dispatcher do,
//! derived by hand from the schedule: one client on a 2 ms round trip (1 ms each way) to a
//! server that answers at once, so every time below is exact.

use std::path::Path;
use std::time::Duration;

use super::server::Server;
use super::{long_poll, poll, stream, webhook, Network, Outcome, Wire};
use crate::event::Mode;
use crate::scenario::{Scenario, Schedule};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

/// One client of `mode` following one topic of 20 events/s for 30 s after a 1 s warm-up,
/// with `extra` (sections and `[[faults]]`).
fn scenario(mode: Mode, extra: &str) -> Scenario {
    let text = format!(
        "name = \"f\"\nseed = 9\nduration = \"30s\"\nwarmup = \"1s\"\ndrain = \"10s\"\nmodes = [\"{mode}\"]\n\
         [events]\nrate = 20\ntopics = 1\n[clients]\ncount = 1\n{extra}"
    );
    Scenario::parse(Path::new("f.toml"), &text).unwrap()
}

/// The model of `s`'s `mode` on a 2 ms round trip and an instant server.
pub(super) fn model(s: &Scenario, mode: Mode) -> Outcome {
    let wire = &mut Wire::plain(&Network::of(Duration::from_millis(2)));
    let server = &mut Server::instant();
    let quiet = &super::quietly;
    match mode {
        Mode::Poll => poll::run(s, false, wire, server, quiet),
        Mode::LongPoll => long_poll::run(s, wire, server, quiet),
        Mode::Sse | Mode::Websocket => stream::run(s, mode, wire, server, quiet),
        _ => webhook::run(s, wire, server, quiet),
    }
}

/// The measured events' scheduled times (ns) that `pick` accepts.
fn events(s: &Scenario, pick: impl Fn(u64) -> bool) -> u64 {
    let (warmup, end) = (
        s.warmup.as_nanos() as u64,
        (s.warmup + s.duration).as_nanos() as u64,
    );
    Schedule::new(&s.events, s.seed)
        .take_while(|(at, _)| *at < end)
        .filter(|(at, _)| *at >= warmup && pick(*at))
        .count() as u64
}

/// The mean wait, µs, from each measured event scheduled in `[from, to)` until `until`.
fn mean_wait(s: &Scenario, from: u64, to: u64, until: u64) -> f64 {
    let waits: Vec<u64> = Schedule::new(&s.events, s.seed)
        .map(|(at, _)| at)
        .skip_while(|&at| at < from)
        .take_while(|&at| at < to)
        .map(|at| until - at)
        .collect();
    waits.iter().sum::<u64>() as f64 / waits.len() as f64 / 1000.0
}

/// The first event scheduled at or after `from`, ns.
fn first_after(s: &Scenario, from: u64) -> u64 {
    Schedule::new(&s.events, s.seed)
        .map(|(at, _)| at)
        .find(|&at| at >= from)
        .unwrap()
}

/// Asserts that `o` accounts for every owed delivery and delivered all but `missing`.
fn all_but(o: &Outcome, missing: u64) {
    assert_eq!(o.delivered + missing, o.expected, "{o:?}");
}

#[test]
fn latency_adds_half_its_delay_to_each_way() {
    let s = scenario(
        Mode::Sse,
        "[[faults]]\nkind = \"latency\"\nat = \"0s\"\nfor = \"60s\"\ndelay = \"10ms\"\n",
    );
    let o = model(&s, Mode::Sse);
    all_but(&o, 0);
    // 1 ms of network and 5 ms of the fault's way down, for every event.
    let l = &o.latency;
    assert!(
        l.equivalent(l.min(), 6000) && l.equivalent(l.max(), 6000),
        "{} to {}",
        l.min(),
        l.max()
    );
}

#[test]
fn a_cut_stream_is_refused_until_the_window_ends_then_resumes_from_its_cursor() {
    let s = scenario(
        Mode::Sse,
        "[sse]\nretry = \"500ms\"\n[[faults]]\nkind = \"stream_cut\"\nat = \"10s\"\nfor = \"2s\"\n",
    );
    let o = model(&s, Mode::Sse);
    all_but(&o, 0);
    // The close reaches the client at 10.001 s; it asks again at 10.501 s, is refused at
    // 10.502 s with `Retry-After: 2` (1.498 s left, rounded up), hears so at 10.503 s, waits
    // the 2 s (more than its doubled 500 ms) and is accepted at 12.504 s; the backlog of
    // every event since the cut arrives at 12.505 s.
    assert_eq!((o.stream_cuts, o.reconnects, o.client_errors), (1, 2, 1));
    let back = 12_505 * MS;
    let held = events(&s, |at| (10 * S..=back - MS).contains(&at));
    let late: u64 = o
        .latency
        .iter_recorded()
        .filter(|v| v.value_iterated_to() > 1000)
        .map(|v| v.count_at_value())
        .sum();
    assert_eq!(late, held);
    let first = first_after(&s, 10 * S);
    assert!(
        o.latency.equivalent(o.latency.max(), (back - first) / 1000),
        "{}",
        o.latency.max()
    );
}

#[test]
fn a_resumed_websocket_keeps_a_send_buffer_grown_to_its_backlog() {
    let cut =
        "[websocket]\nretry = \"500ms\"\n[[faults]]\nkind = \"stream_cut\"\nat = \"10s\"\nfor = \"2s\"\n";
    let s = scenario(Mode::Websocket, cut);
    let payload = s.events.payload_bytes;
    let frame = super::send_buffers::frame_bytes(1, payload) as f64;
    // Accepted again at 12.504 s (as the SSE stream above), it is written every event since
    // the cut in one batch: the buffer doubles from one frame until it holds them all.
    let n = events(&s, |at| (10 * S..=12_504 * MS).contains(&at));
    let grown = frame * (n as f64).log2().ceil().exp2();
    let buffers = model(&s, Mode::Websocket)
        .send_buffers
        .expect("a WebSocket's buffers");
    assert!(
        (buffers.beyond(1, payload) - (grown - frame)).abs() < 1e-9,
        "{n} events: {buffers:?}"
    );
    // Without the cut it holds one frame, what the calibration's did; SSE keeps none.
    let plain = model(&scenario(Mode::Websocket, ""), Mode::Websocket)
        .send_buffers
        .unwrap();
    assert_eq!(plain.beyond(1, payload), 0.0);
    assert!(
        model(&scenario(Mode::Sse, &cut.replace("websocket", "sse")), Mode::Sse)
            .send_buffers
            .is_none()
    );
}

#[test]
fn a_paused_stream_client_reads_at_the_pause_end_and_a_full_queue_meets_its_policy() {
    let pause = "[[faults]]\nkind = \"client_pause\"\nat = \"10s\"\nfor = \"4s\"\n";
    // Events arriving in [10 s, 14 s), scheduled a way earlier, wait for the pause's end.
    let queued = |s: &Scenario| events(s, |at| (10 * S - MS..14 * S - MS).contains(&at));

    let s = scenario(Mode::Sse, pause);
    let o = model(&s, Mode::Sse);
    all_but(&o, 0);
    // Read at 14 s, but for those scheduled in its last millisecond, which arrive after it.
    let mean = o.windows[0].latency.mean();
    let expected = mean_wait(&s, 10 * S, 14 * S, 14 * S);
    assert!(
        (mean / expected - 1.0).abs() < 0.01,
        "{mean} µs, by hand {expected}"
    );

    let s = scenario(
        Mode::Sse,
        &format!("[sse]\nbuffer = 10\nslow_consumer = \"drop_oldest\"\n{pause}"),
    );
    let o = model(&s, Mode::Sse);
    assert_eq!(o.dropped_oldest, queued(&s) - 10);
    all_but(&o, o.dropped_oldest);

    let s = scenario(
        Mode::Sse,
        &format!("[sse]\nbuffer = 10\nretry = \"500ms\"\n{pause}"),
    );
    let o = model(&s, Mode::Sse);
    all_but(&o, 0);
    // Closed at the eleventh; seen at 14 s, asked again at 14.5 s, the backlog there at 14.502 s.
    assert_eq!((o.slow_disconnects, o.reconnects), (1, 1));
    let first = first_after(&s, 10 * S - MS);
    assert!(
        o.latency
            .equivalent(o.latency.max(), (14_502 * MS - first) / 1000),
        "{}",
        o.latency.max()
    );
}

#[test]
fn paused_pollers_ask_nothing_until_the_pause_ends() {
    let pause = "[[faults]]\nkind = \"client_pause\"\nat = \"10s\"\nfor = \"4s\"\n";
    for mode in [Mode::Poll, Mode::LongPoll] {
        let s = scenario(
            mode,
            &format!("[poll]\ninterval = \"100ms\"\njitter = 0.0\n{pause}"),
        );
        let o = model(&s, mode);
        all_but(&o, 0);
        // Whatever is scheduled in the pause is fetched when it ends: asked at 14 s, answered
        // at 14.002 s (a long poller reads the answer it was sent in the pause at 14 s).
        let mean = o.windows[0].latency.mean();
        let expected = mean_wait(&s, 10 * S, 14 * S, 14 * S + 2 * MS);
        assert!(
            (mean - expected).abs() < 2000.0,
            "{mode}: {mean} µs, by hand {expected}"
        );
        // The rest wait less than an interval.
        let p50 = o.latency.value_at_quantile(0.5);
        assert!(p50 < 100_000, "{mode}: {p50}");
    }
}

#[test]
fn a_downed_receiver_is_retried_no_sooner_than_its_retry_after() {
    let s = scenario(
        Mode::Webhook,
        "[webhook]\nretry = [\"100ms\", \"100ms\", \"100ms\"]\n\
         [[faults]]\nkind = \"receiver_down\"\nat = \"10s\"\nfor = \"3s\"\nretry_after = \"2s\"\n",
    );
    let o = model(&s, Mode::Webhook);
    all_but(&o, 0);
    // An attempt reaching the receiver in [10 s, 13 s) is refused; its answer is back a
    // millisecond later, and the next attempt goes 2 s after that (the 100 ms the schedule
    // asks is less), reaching 2.002 s after the first. An event scheduled before 10.997 s
    // (reaching before 10.998 s) fails twice and arrives 4.005 s after it was scheduled.
    let twice = events(&s, |at| (10 * S - MS..10_997 * MS - MS).contains(&at));
    let once = events(&s, |at| (10_997 * MS - MS..13 * S - MS).contains(&at));
    assert_eq!(o.retries, 2 * twice + once);
    assert!(o.latency.max().abs_diff(4_005_000) < 4_005, "{}", o.latency.max());
}

#[test]
fn a_receiver_that_hangs_up_is_retried_on_the_schedule_and_gives_out() {
    let s = scenario(
        Mode::Webhook,
        "[webhook]\nretry = [\"1s\"]\n\
         [[faults]]\nkind = \"receiver_down\"\nanswer = \"close\"\nat = \"10s\"\nfor = \"3s\"\n",
    );
    let o = model(&s, Mode::Webhook);
    // One retry, 1 s ± 20% after the failure: it fails again if it too lands before 13 s.
    let surely = events(&s, |at| (10 * S - MS..(13 * S - 1_205 * MS)).contains(&at));
    let maybe = events(&s, |at| (10 * S - MS..(13 * S - 795 * MS)).contains(&at));
    assert!(
        (surely..=maybe).contains(&o.dead_letters),
        "{} not in {surely}..={maybe}",
        o.dead_letters
    );
    all_but(&o, o.dead_letters);
}

#[test]
fn a_flaky_receiver_takes_one_over_one_minus_p_attempts() {
    let s = scenario(
        Mode::Webhook,
        "[webhook]\nretry = [\"10ms\", \"10ms\", \"10ms\", \"10ms\", \"10ms\", \"10ms\", \"10ms\", \"10ms\", \
         \"10ms\", \"10ms\", \"10ms\", \"10ms\"]\n\
         [[faults]]\nkind = \"receiver_flaky\"\nat = \"0s\"\nfor = \"60s\"\nprobability = 0.25\n",
    );
    let o = model(&s, Mode::Webhook);
    all_but(&o, 0);
    // Attempts until a success: geometric, 1 / (1 − 0.25) on average; 600 messages.
    let per = o.requests as f64 / o.delivered as f64;
    assert!((per - 4.0 / 3.0).abs() < 0.06, "{per}");
}

#[test]
fn a_gone_receiver_is_disabled_and_everything_it_is_owed_dead_lettered() {
    let s = scenario(
        Mode::Webhook,
        "[[faults]]\nkind = \"receiver_gone\"\nat = \"10s\"\nfor = \"1s\"\n",
    );
    let o = model(&s, Mode::Webhook);
    // From the first 410 on, the endpoint stays disabled, after the window too.
    let after = events(&s, |at| at >= 10 * S - MS);
    assert_eq!(o.dead_letters, after);
    all_but(&o, after);
}

#[test]
fn a_slow_receiver_past_the_timeout_gets_duplicates() {
    let s = scenario(
        Mode::Webhook,
        "[webhook]\ntimeout = \"2s\"\nretry = [\"100ms\", \"100ms\", \"100ms\"]\n\
         [[faults]]\nkind = \"receiver_slow\"\nat = \"10s\"\nfor = \"3s\"\ndelay = \"3s\"\n",
    );
    let o = model(&s, Mode::Webhook);
    all_but(&o, 0);
    // Taken at once (1 ms), answered too late: the sender gives up 2 s after sending and
    // tries again 100 ms ± 20% later, a duplicate; while that one also lands before 13 s, a
    // third attempt follows, another duplicate.
    assert!(
        o.latency.max() < 2000,
        "the first arrival counts: {}",
        o.latency.max()
    );
    let hit = events(&s, |at| (10 * S - MS..13 * S - MS).contains(&at));
    let surely_twice = events(&s, |at| (10 * S - MS..13 * S - 2_122 * MS).contains(&at));
    let maybe_twice = events(&s, |at| (10 * S - MS..13 * S - 2_078 * MS).contains(&at));
    assert!(
        (hit + surely_twice..=hit + maybe_twice).contains(&o.duplicates),
        "{} duplicates for {hit} events hit",
        o.duplicates
    );
}

#[test]
fn a_slow_receiver_holds_only_its_endpoints_share_of_the_workers() {
    // 100 receivers of one topic at 100 events/s, 64 workers; one receiver answers after 2 s.
    // With its share (16 of the 64), the other 99 keep their 1 ms; allowed every worker, it
    // takes them all within 0.64 s and the rest queue behind it, as the dispatcher's own test
    // finds.
    let run = |share: &str| {
        let text = format!(
            "name = \"f\"\nseed = 9\nduration = \"10s\"\nwarmup = \"1s\"\ndrain = \"60s\"\nmodes = [\"webhook\"]\n\
             [events]\nrate = 100\ntopics = 1\n[clients]\ncount = 100\n\
             [webhook]\ntimeout = \"10s\"\nconcurrency = 64\n{share}\n\
             [[faults]]\nkind = \"receiver_slow\"\nat = \"0s\"\nfor = \"60s\"\nshare = 0.01\ndelay = \"2s\"\n"
        );
        model(
            &Scenario::parse(Path::new("f.toml"), &text).unwrap(),
            Mode::Webhook,
        )
    };
    let fair = run("");
    all_but(&fair, 0);
    // The slow receiver's own deliveries wait in its lane: 1% of them, all at the top.
    let p98 = fair.latency.value_at_quantile(0.98);
    assert!(p98 < 50_000, "{p98} µs");
    let unfair = run("endpoint_concurrency = 64");
    let p50 = unfair.latency.value_at_quantile(0.5);
    assert!(p50 > 500_000, "{p50} µs");
}

#[test]
fn an_answer_arriving_after_the_drain_is_lost_as_in_run() {
    // The drain ends at 41 s (1 s warm-up, 30 s, 10 s drain): an answer carrying the
    // window's events that lands just after it delivers none of them; just before, all.
    let s = scenario(Mode::Poll, "");
    let handed = |arrives: u64| {
        let mut log = super::log::Log::new(&s);
        let mut out = Outcome::owed(&s, &log);
        let (taken, _) = log.hand_out(0, 41 * S, usize::MAX, &mut out, |_| arrives);
        (taken as u64, out.delivered)
    };
    let (taken, delivered) = handed(41 * S);
    assert_eq!(delivered, events(&s, |_| true));
    // The client has been handed them all the same: they are not owed again.
    assert_eq!(handed(41 * S + 1), (taken, 0));
}
