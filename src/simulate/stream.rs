//! SSE and WebSocket streams in the model: every client holds one stream, opened before the
//! schedule starts, and the server writes each event to each follower as it is scheduled,
//! each write a job for its cores; it arrives one way after its write. No request is made
//! while the stream lasts.
//!
//! Faults, as the real server and client have them:
//! - `stream_cut` closes the stream of each client it hits when its window opens. The client
//!   sees the close, waits `retry` and connects again; while the window lasts the server
//!   refuses it (503, `Retry-After` the seconds left, rounded up) and the client backs off
//!   ([`reconnect_delay`]). Once accepted, the server writes the backlog after the client's
//!   cursor in one job, and the stream goes on.
//! - `client_pause` leaves what arrives unread until the pause ends. The server queues it, and
//!   past the send queue's bound (`buffer` events, or `buffer_bytes`) applies the
//!   slow-consumer policy: `disconnect` closes the stream (the client sees it when the pause
//!   ends, reconnects after `retry` and resumes from its cursor), `drop_oldest` drops the
//!   oldest queued event, which is lost. The sockets' own few KiB of buffer are not modelled.
//! - `latency` adds its delay to each way.
//!
//! A stream left quiet for its `heartbeat` gets one, a write its own timer starts
//! (`heartbeats.rs` keeps which are due).
//!
//! A WebSocket stream's send buffer keeps the size its largest batch grew it to (one frame for
//! a stream written an event at a time, its backlog for one resumed), which its memory counts
//! (`send_buffers.rs`).
//!
//! A server holding its most connections (`admission.rs`) lets the first clients in and turns
//! the rest away (503, `Retry-After: 1`), and they back off as from a cut; a stream closed by
//! a cut or the slow-consumer policy gives its connection back, and whoever connects next may
//! take it.

use std::collections::{HashMap, VecDeque};

use super::admission::{Admission, Admitted};
use super::faults::Faults;
use super::heartbeats::Heartbeats;
use super::log::Log;
use super::queue::Queue;
use super::send_buffers::{event_json_bytes, SendBuffers};
use super::server::{Server, Woken};
use super::{Outcome, Progress, Wire, PROGRESS_EVERY};
use crate::calibration::Op;
use crate::event::Mode;
use crate::modes::http::reconnect_delay;
use crate::scenario::{FaultKind, Scenario, SlowConsumer};

/// Simulates `s`'s stream clients over `wire`.
pub fn run(s: &Scenario, mode: Mode, wire: &mut Wire, server: &mut Server, progress: Progress) -> Outcome {
    let log = Log::new(s);
    let out = Outcome::owed(s, &log);
    let params = if mode == Mode::Websocket {
        &s.websocket
    } else {
        &s.sse
    };
    let mut m = Streams {
        faults: Faults::new(s, mode),
        hit: HashMap::new(),
        actions: Queue::with_capacity(64),
        // What arrives after the drain is lost, as in `run`.
        horizon: (s.warmup + s.duration + s.drain).as_nanos() as u64,
        window: s.warmup.as_nanos() as u64..(s.warmup + s.duration).as_nanos() as u64,
        write: if mode == Mode::Websocket {
            Op::WebsocketEvent
        } else {
            Op::SseEvent
        },
        retry: params.retry,
        policy: params.slow_consumer,
        room: room(s, params.buffer, params.buffer_bytes),
        admission: Admission::new(s),
        // Every stream is open when the schedule starts.
        beats: Heartbeats::new(s.clients.count, params.heartbeat),
        buffers: (mode == Mode::Websocket)
            .then(|| SendBuffers::new(s.clients.count as usize, s.events.topics, s.events.payload_bytes)),
        log,
        out,
        wire,
        server,
    };
    // The clients a cut or a pause hits, and when those begin and end.
    for c in 0..m.log.clients as u32 {
        let cuts: Vec<_> = m.faults.windows(c, |k| *k == FaultKind::StreamCut).collect();
        let pauses: Vec<_> = m.faults.windows(c, |k| *k == FaultKind::ClientPause).collect();
        for (from, _) in &cuts {
            m.actions.push(*from, Action::Cut(c));
        }
        for (_, to) in &pauses {
            m.actions.push(*to, Action::PauseEnds(c));
        }
        if !cuts.is_empty() || !pauses.is_empty() {
            m.hit.insert(c, Stream::default());
        }
    }
    // Past the server's limit, the clients' first attempts are turned away.
    if m.admission.binds() {
        for c in 0..m.log.clients as u32 {
            if m.admission.admit(c as usize, 0) == Admitted::Refused {
                m.hit.entry(c).or_default().down = true;
                m.refuse(0, c, TURNED_AWAY);
            }
        }
    }
    let events = m.log.events();
    let mut next = 0;
    loop {
        // An action due before the next event goes first; one due with it goes after, so an
        // event scheduled as a reconnect is accepted is in its backlog. A heartbeat due with
        // an event gives way to its write.
        let event_at = events.get(next).map(|e| e.0);
        let beat_at = m.beats.next_due();
        if let Some(due) =
            beat_at.filter(|&b| event_at.is_none_or(|e| b < e) && m.actions.next_due().is_none_or(|a| b < a))
        {
            let (_, c) = m.beats.pop().expect("due");
            if due <= m.horizon {
                m.beat(due, c);
            }
            continue;
        }
        if let Some(due) = m.actions.next_due().filter(|&d| event_at.is_none_or(|e| d < e)) {
            let (_, action) = m.actions.pop().expect("due");
            if due <= m.horizon {
                m.act(due, action);
            }
            continue;
        }
        let Some(&(at, topic, measured)) = events.get(next) else {
            break;
        };
        next += 1;
        m.out.actions += 1;
        if m.out.actions.is_multiple_of(PROGRESS_EVERY) {
            progress(at);
        }
        // Each follower's write is a job of its own; they share the cores.
        for i in 0..m.log.followers(topic).len() {
            let c = m.log.followers(topic)[i];
            m.live(c, at, measured);
        }
    }
    m.admission.count(&mut m.out);
    // The buffers of the streams open at the end: a closed one went with its connection.
    let hit = &m.hit;
    m.out.send_buffers = m
        .buffers
        .take()
        .map(|b| b.held(|c| !hit.get(&c).is_some_and(|st| st.down)));
    m.out
}

/// The `Retry-After` of a connection turned away because the server holds its most.
const TURNED_AWAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Events a client's send queue holds before the slow-consumer policy applies: `buffer`, or
/// as many of the scenario's events as fit in `buffer_bytes` (at least one), whichever is less.
fn room(s: &Scenario, buffer: usize, buffer_bytes: usize) -> usize {
    let size = event_json_bytes(s.events.topics, s.events.payload_bytes);
    buffer.min(buffer_bytes / size).max(1)
}

/// Something that happens to one client's stream.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// A `stream_cut` closes it.
    Cut(u32),
    /// Its `client_pause` ends.
    PauseEnds(u32),
    /// The client asks to connect again.
    Reconnects(u32),
    /// That request reaches the server; whether it was sent in the measured window.
    Arrives(u32, bool),
}

/// A stream a fault hits.
#[derive(Debug, Default)]
struct Stream {
    /// Closed: the server writes nothing to it until the client is accepted again.
    down: bool,
    /// Closed while the client was paused: it sees so when the pause ends.
    closed_unseen: bool,
    /// Connection attempts failed in a row.
    failures: u32,
    /// Events written while the client reads nothing: when each was scheduled, and whether
    /// it is measured.
    queued: VecDeque<(u64, bool)>,
}

/// One model run's state.
struct Streams<'a> {
    log: Log,
    out: Outcome,
    faults: Faults,
    hit: HashMap<u32, Stream>,
    actions: Queue<Action>,
    wire: &'a mut Wire,
    server: &'a mut Server,
    horizon: u64,
    window: std::ops::Range<u64>,
    write: Op,
    retry: std::time::Duration,
    policy: SlowConsumer,
    room: usize,
    admission: Admission,
    /// The streams' heartbeats to come.
    beats: Heartbeats,
    /// The WebSocket streams' send buffers (none for SSE, which keeps none).
    buffers: Option<SendBuffers>,
}

impl Streams<'_> {
    /// Client `c`'s heartbeat is due at `now`: if its stream is open, the server's timer
    /// writes one (a job like a write of an event, woken by its timer in a parked worker's
    /// poll), counted if in the window.
    fn beat(&mut self, now: u64, c: u32) {
        if !self.hit.is_empty() && self.hit.get(&c).is_some_and(|st| st.down) {
            return;
        }
        self.server.serve(now, Woken::ByTimer, &[(self.write, 1.0)]);
        self.out.heartbeats += u64::from(self.window.contains(&now));
        self.beats.wrote(c, now);
    }

    /// The server writes the event scheduled at `at` to follower `c`.
    fn live(&mut self, c: u32, at: u64, measured: bool) {
        if !self.hit.is_empty() && self.hit.get(&c).is_some_and(|st| st.down) {
            return;
        }
        self.beats.wrote(c, at);
        if let Some(b) = &mut self.buffers {
            b.wrote(c, 1);
        }
        let stream = if self.hit.is_empty() {
            None
        } else {
            self.hit.get_mut(&c)
        };
        let arrives = self
            .server
            .serve(at, Woken::ByEvent, &[(self.write, 1.0), (Op::Crowded, 1.0)])
            + self.wire.answer(1);
        if let Some(st) = stream {
            if self.faults.resume(c, arrives) > arrives {
                // Unread: the server queues it, up to its bound.
                if st.queued.len() >= self.room {
                    match self.policy {
                        SlowConsumer::DropOldest => {
                            st.queued.pop_front();
                            self.out.dropped_oldest += 1;
                        }
                        SlowConsumer::Disconnect => {
                            // The queue goes with the connection: the client resumes from
                            // the first event it did not read.
                            let first = st.queued.front().map_or(at, |q| q.0);
                            st.queued.clear();
                            (st.down, st.closed_unseen) = (true, true);
                            self.out.slow_disconnects += 1;
                            self.admission.release(c as usize);
                            self.log.seek(c as usize, first);
                            return;
                        }
                    }
                }
                st.queued.push_back((at, measured));
                return;
            }
        }
        let read = arrives + self.faults.delay(c, arrives);
        self.arrived(at, measured, read);
    }

    /// An event scheduled at `at` that arrives at `read` counts if before the horizon (if
    /// measured, with its latency).
    fn arrived(&mut self, at: u64, measured: bool, read: u64) {
        if read > self.horizon {
            return;
        }
        self.out.landed(read, 1);
        if measured {
            self.out.arrived(at, read);
        }
    }

    fn act(&mut self, now: u64, action: Action) {
        match action {
            Action::Cut(c) => {
                if self.hit.get(&c).expect("a cut client is tracked").down {
                    return;
                }
                let st = self.hit.get_mut(&c).expect("a cut client is tracked");
                st.down = true;
                self.out.stream_cuts += 1;
                self.admission.release(c as usize);
                // The client has had what was written before; what it has not read yet it
                // reads when its pause ends, and sees the close then.
                self.log.seek(c as usize, now);
                let seen = now + self.wire.answer(0);
                let seen = seen + self.faults.delay(c, seen);
                if self.faults.resume(c, seen) > seen {
                    st.closed_unseen = true;
                } else {
                    let wait = reconnect_delay(self.retry, st.failures, None);
                    self.actions
                        .push(seen + wait.as_nanos() as u64, Action::Reconnects(c));
                }
            }
            Action::PauseEnds(c) => {
                let st = self.hit.get_mut(&c).expect("a paused client is tracked");
                let queued: Vec<_> = st.queued.drain(..).collect();
                let unseen = std::mem::take(&mut st.closed_unseen);
                let failures = st.failures;
                let read = now + self.faults.delay(c, now);
                for (at, measured) in queued {
                    self.arrived(at, measured, read);
                }
                if unseen {
                    let wait = reconnect_delay(self.retry, failures, None);
                    self.actions
                        .push(now + wait.as_nanos() as u64, Action::Reconnects(c));
                }
            }
            Action::Reconnects(c) => {
                // A paused client asks when its pause ends.
                let resumed = self.faults.resume(c, now);
                if resumed > now {
                    self.actions.push(resumed, action);
                    return;
                }
                self.out.reconnects += 1;
                let counted = self.window.contains(&now);
                let at_server = now + self.faults.delay(c, now) + self.wire.request();
                self.actions.push(at_server, Action::Arrives(c, counted));
            }
            Action::Arrives(c, counted) => self.accept(now, c, counted),
        }
    }

    /// A reconnect reaches the server at `now`: turned away while the server holds its most
    /// connections, refused while a cut lasts, else accepted with the backlog after the
    /// client's cursor. The stream's route counts it as a request (if `counted`: sent in the
    /// window) unless the connection was turned away before reaching it.
    fn accept(&mut self, now: u64, c: u32, counted: bool) {
        if self.admission.admit(c as usize, now) == Admitted::Refused {
            self.refuse(now, c, TURNED_AWAY);
            return;
        }
        self.out.requests += u64::from(counted);
        let cut = self
            .faults
            .windows(c, |k| *k == FaultKind::StreamCut)
            .find(|(from, to)| (*from..*to).contains(&now));
        if let Some((_, to)) = cut {
            // The client closes the connection the 503 came on.
            self.admission.release(c as usize);
            let asked = std::time::Duration::from_secs((to - now).div_ceil(1_000_000_000));
            self.refuse(now, c, asked);
            return;
        }
        let (faults, wire, server, write) =
            (&mut self.faults, &mut *self.wire, &mut *self.server, self.write);
        let st = self.hit.get_mut(&c).expect("a reconnecting client is tracked");
        (st.down, st.failures) = (false, 0);
        let (taken, _) = self
            .log
            .hand_out(c as usize, now, usize::MAX, &mut self.out, |taken| {
                let done = server.serve(
                    now,
                    Woken::ByRequest,
                    &[
                        (Op::Connection, 1.0),
                        (write, taken as f64),
                        (Op::Crowded, taken as f64),
                    ],
                );
                let back = done + wire.answer(taken);
                faults.read(c, back)
            });
        // A stream opened afresh: its quiet starts with its backlog written, or else its
        // first heartbeat is due as a new stream's is.
        if taken > 0 {
            self.beats.wrote(c, now);
        } else {
            self.beats.reopened(c, now);
        }
        if let Some(b) = &mut self.buffers {
            b.reopened(c, self.log.most_of_one_topic(c as usize));
        }
    }

    /// The server answers client `c`'s attempt at `now` with a 503 asking for `asked`; the
    /// client reads it and backs off.
    fn refuse(&mut self, now: u64, c: u32, asked: std::time::Duration) {
        let back = self.server.serve(now, Woken::ByRequest, &[(Op::Connection, 1.0)]) + self.wire.answer(0);
        let got = self.faults.read(c, back);
        let st = self.hit.get_mut(&c).expect("a refused client is tracked");
        st.failures += 1;
        self.out.client_errors += 1;
        let wait = reconnect_delay(self.retry, st.failures, Some(asked));
        self.actions
            .push(got + wait.as_nanos() as u64, Action::Reconnects(c));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::simulate::Network;

    /// The SSE streams of the scenario `text`, over a round trip of `round_trip_ms`, on a
    /// server that costs nothing.
    fn streamed(text: &str, round_trip_ms: u64) -> Outcome {
        let s = Scenario::parse(Path::new("s.toml"), text).unwrap();
        run(
            &s,
            Mode::Sse,
            &mut Wire::plain(&Network::of(Duration::from_millis(round_trip_ms))),
            &mut Server::instant(),
            &crate::simulate::quietly,
        )
    }

    #[test]
    fn a_quiet_stream_gets_a_heartbeat_every_heartbeat_and_only_those_in_the_window_count() {
        // One client, whose only event comes at 0 (the rest 10,000 s apart on average), a
        // heartbeat every 3 s: by hand, beats at 3, 6, 9, 12, 15 and 18 s, of which the
        // window of 5 s to 17 s holds 6, 9, 12 and 15.
        let o = streamed(
            "name = \"q\"\nduration = \"12s\"\nwarmup = \"5s\"\ndrain = \"5s\"\nmodes = [\"sse\"]\n\
             [events]\nrate = 0.0001\n[clients]\ncount = 1\n[sse]\nheartbeat = \"3s\"\n",
            1,
        );
        assert_eq!(o.heartbeats, 4);
    }

    #[test]
    fn heartbeats_come_as_often_as_poisson_quiets_give_them() {
        // Each client's topic gets a Poisson event every 10 s (100 events/s over 1,000
        // topics), and a heartbeat goes after each 5 s of quiet. By renewal: a gap between
        // events holds floor(gap / 5 s) heartbeats, E = Σ_k e^(−λ·5k) = e^(−0.5)/(1 − e^(−0.5))
        // = 1.541 a gap, 0.1541 a second; 1,000 clients over 600 s: 92,460.
        let o = streamed(
            "name = \"h\"\nduration = \"600s\"\nwarmup = \"60s\"\nmodes = [\"sse\"]\n\
             [events]\nrate = 100\ntopics = 1000\n[clients]\ncount = 1000\n\
             [sse]\nheartbeat = \"5s\"\n",
            1,
        );
        let expected = 1000.0 * 600.0 * 0.1 * (-0.5f64).exp() / (1.0 - (-0.5f64).exp());
        let ratio = o.heartbeats as f64 / expected;
        assert!(
            (ratio - 1.0).abs() < 0.03,
            "{} heartbeats, {expected:.0} expected",
            o.heartbeats
        );
    }

    #[test]
    fn every_follower_gets_every_event_one_way_later() {
        let o = streamed(
            "name = \"s\"\nduration = \"60s\"\nwarmup = \"5s\"\nmodes = [\"sse\"]\n\
             [events]\nrate = 50\ntopics = 7\n[clients]\ncount = 30\ntopics_per_client = 2\n",
            6,
        );
        assert_eq!(o.delivered, o.expected);
        // 50 events/s for 60 s, each followed by 30 × 2 / 7 clients on average.
        let per_event = o.expected as f64 / (50.0 * 60.0);
        assert!((per_event - 60.0 / 7.0).abs() < 0.2, "{per_event}");
        let l = &o.latency;
        assert!(
            l.equivalent(l.min(), 3000) && l.equivalent(l.max(), 3000),
            "{} to {}",
            l.min(),
            l.max()
        );
        assert_eq!(o.requests, 0);
    }
}
