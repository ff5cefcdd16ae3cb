//! What SSE and WebSocket share on the server side: per-client bounded send queues fed by the
//! generator, the slow-consumer policy, and a session that first replays the log after the
//! client's cursor and then follows the queue, batching whatever is queued into one write.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Given, Prediction};
use crate::event::{Cursor, Event, Seq, TopicId};
use crate::scenario::{Scenario, SlowConsumer, StreamParams};
use crate::server::stats::Stats;
use crate::server::RunState;

/// Events of one topic a resumed stream is written at once from the log; a longer backlog
/// comes in batches of this many.
pub const BACKLOG_CHUNK: usize = 256;

/// A client's bounded queue of events not yet written to its connection.
pub struct SendQueue {
    inner: Mutex<QueueInner>,
    notify: Notify,
    /// Fired when the client must be disconnected (it overflowed its queue): the connection
    /// is closed at once, even while a write to it is blocked.
    closed: CancellationToken,
    bound: usize,
    bound_bytes: usize,
    policy: SlowConsumer,
    topics: Vec<TopicId>,
}

struct QueueInner {
    events: VecDeque<Arc<Event>>,
    /// Bytes of the queued events' JSON.
    bytes: usize,
    /// Set when the queue overflowed under the `disconnect` policy.
    overflowed: bool,
}

impl SendQueue {
    fn push(&self, event: &Arc<Event>, stats: &Stats) {
        let mut q = self.inner.lock().expect("queue lock");
        if q.overflowed {
            return;
        }
        let size = event.json.len();
        while !q.events.is_empty() && (q.events.len() >= self.bound || q.bytes + size > self.bound_bytes) {
            match self.policy {
                SlowConsumer::Disconnect => {
                    q.overflowed = true;
                    q.events.clear();
                    q.bytes = 0;
                    drop(q);
                    stats.counters.slow_disconnects.fetch_add(1, Relaxed);
                    self.closed.cancel();
                    self.notify.notify_one();
                    return;
                }
                SlowConsumer::DropOldest => {
                    if let Some(old) = q.events.pop_front() {
                        q.bytes -= old.json.len();
                    }
                    stats.counters.dropped_oldest.fetch_add(1, Relaxed);
                }
            }
        }
        q.bytes += size;
        q.events.push_back(event.clone());
        drop(q);
        self.notify.notify_one();
    }
}

/// Every attached stream client, by topic.
pub struct StreamHub {
    by_topic: RwLock<Vec<Vec<Arc<SendQueue>>>>,
    stats: Arc<Stats>,
}

impl StreamHub {
    /// A hub for `topics` topics.
    pub fn new(topics: u32, stats: Arc<Stats>) -> Self {
        StreamHub {
            by_topic: RwLock::new(vec![Vec::new(); topics as usize]),
            stats,
        }
    }

    /// Queues `event` for every client following its topic.
    pub fn publish(&self, event: &Arc<Event>) {
        let by_topic = self.by_topic.read().expect("hub lock");
        for q in &by_topic[event.topic as usize] {
            q.push(event, &self.stats);
        }
    }

    fn attach(&self, topics: &[TopicId], params: &StreamParams, closed: CancellationToken) -> Arc<SendQueue> {
        let q = Arc::new(SendQueue {
            inner: Mutex::new(QueueInner {
                events: VecDeque::new(),
                bytes: 0,
                overflowed: false,
            }),
            notify: Notify::new(),
            closed,
            bound: params.buffer,
            bound_bytes: params.buffer_bytes,
            policy: params.slow_consumer,
            topics: topics.to_vec(),
        });
        let mut by_topic = self.by_topic.write().expect("hub lock");
        for t in topics {
            by_topic[*t as usize].push(q.clone());
        }
        self.stats.counters.stream_subscribers.fetch_add(1, Relaxed);
        q
    }

    fn detach(&self, q: &Arc<SendQueue>) {
        let mut by_topic = self.by_topic.write().expect("hub lock");
        for t in &q.topics {
            by_topic[*t as usize].retain(|other| !Arc::ptr_eq(other, q));
        }
        self.stats.counters.stream_subscribers.fetch_sub(1, Relaxed);
    }
}

/// What a session has to write next.
pub enum Batch {
    /// Events, in order per topic, each with the client's cursor after it when the session was
    /// opened with resume ids (SSE's `id:`).
    Events(Vec<(Arc<Event>, Option<String>)>),
    /// Events of `topics[index]` after `from` and before `earliest` are no longer retained.
    Gap {
        /// Index into the client's topics.
        index: usize,
        /// Last seq the client had.
        from: Seq,
        /// First seq still held.
        earliest: Seq,
    },
    /// Nothing happened for a heartbeat interval.
    Heartbeat,
    /// The client fell behind its queue (slow consumer): close the connection.
    Overflowed,
    /// A `stream_cut` fault begins for this client: close the connection.
    Cut,
    /// The run is over.
    Ended,
}

/// One stream client's server side: replay after the cursor, then follow the live queue.
pub struct Session {
    run: Arc<RunState>,
    queue: Arc<SendQueue>,
    topics: Vec<TopicId>,
    sent: Cursor,
    backlog_done: bool,
    heartbeat: Duration,
    /// When the next heartbeat is due, unless something is written before.
    beat_at: tokio::time::Instant,
    cancel: CancellationToken,
    /// Whether each event carries the cursor after it (formatted per event, so only when used).
    resume_ids: bool,
    /// The simulated client's id, when it gave one (faults aim at clients by id).
    client: Option<u32>,
}

impl Session {
    /// Attaches a client following `topics` that has seen up to `cursor`; with `resume_ids`,
    /// every event is paired with the cursor after it. `closer` is fired to drop the
    /// connection at once when the client overflows its queue.
    pub fn open(
        run: Arc<RunState>,
        topics: Vec<TopicId>,
        cursor: Cursor,
        params: &StreamParams,
        resume_ids: bool,
        client: Option<u32>,
        closer: CancellationToken,
    ) -> Session {
        // Attach before reading the backlog, so nothing published in between is missed;
        // what arrives twice is dropped by seq below.
        let queue = run.streams.attach(&topics, params, closer);
        Session {
            cancel: run.cancel.clone(),
            queue,
            topics,
            sent: cursor,
            backlog_done: false,
            heartbeat: params.heartbeat,
            beat_at: tokio::time::Instant::now() + first_heartbeat(client, params.heartbeat),
            resume_ids,
            client,
            run,
        }
    }

    /// Fires when the connection must close now (the client overflowed its queue).
    pub fn closed(&self) -> &CancellationToken {
        &self.queue.closed
    }

    /// The client's cursor as of what has been handed out so far.
    pub fn cursor(&self) -> &Cursor {
        &self.sent
    }

    /// Waits for the next thing to write; the stream's quiet starts again once it is written.
    pub async fn next(&mut self) -> Batch {
        let batch = self.next_batch().await;
        self.beat_at = tokio::time::Instant::now() + self.heartbeat;
        batch
    }

    async fn next_batch(&mut self) -> Batch {
        if !self.backlog_done {
            if let Some(batch) = self.backlog() {
                return batch;
            }
            self.backlog_done = true;
        }
        loop {
            let drained: Vec<Arc<Event>> = {
                let mut q = self.queue.inner.lock().expect("queue lock");
                if q.overflowed {
                    return Batch::Overflowed;
                }
                q.bytes = 0;
                q.events.drain(..).collect()
            };
            let events = self.accept(drained);
            if !events.is_empty() {
                return Batch::Events(events);
            }
            // The next `stream_cut` for this client, known once the generator starts.
            let cut = self.run.stream_cut(self.client).map(|(from, _)| from);
            let watch_start = self.client.is_some() && !self.run.started.is_cancelled();
            tokio::select! {
                _ = self.queue.notify.notified() => {}
                _ = tokio::time::sleep_until(self.beat_at) => {
                    self.run.streams.stats.counters.heartbeats.fetch_add(1, Relaxed);
                    return Batch::Heartbeat;
                }
                _ = self.cancel.cancelled() => return Batch::Ended,
                _ = self.run.started.cancelled(), if watch_start => {}
                _ = crate::clock::sleep_until_ns(cut.unwrap_or_default()), if cut.is_some() => {
                    self.run.streams.stats.counters.stream_cuts.fetch_add(1, Relaxed);
                    return Batch::Cut;
                }
            }
        }
    }

    /// The next chunk of the log after the cursor, if any is left.
    fn backlog(&mut self) -> Option<Batch> {
        for i in 0..self.topics.len() {
            match self
                .run
                .log
                .read_after(self.topics[i], self.sent.0[i], BACKLOG_CHUNK)
            {
                Err(gone) => {
                    let from = self.sent.0[i];
                    self.sent.0[i] = gone.earliest - 1;
                    return Some(Batch::Gap {
                        index: i,
                        from,
                        earliest: gone.earliest,
                    });
                }
                Ok((events, _)) if !events.is_empty() => return Some(Batch::Events(self.accept(events))),
                Ok(_) => {}
            }
        }
        None
    }

    /// Keeps the events past the cursor and advances it, pairing each with its resume id.
    fn accept(&mut self, events: Vec<Arc<Event>>) -> Vec<(Arc<Event>, Option<String>)> {
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            let Some(i) = self.topics.iter().position(|t| *t == ev.topic) else {
                continue;
            };
            if ev.seq <= self.sent.0[i] {
                continue;
            }
            self.sent.0[i] = ev.seq;
            let id = self.resume_ids.then(|| self.sent.to_string());
            out.push((ev, id));
        }
        self.run
            .streams
            .stats
            .counters
            .stream_events_sent
            .fetch_add(out.len() as u64, Relaxed);
        self.run.handed(self.client, out.iter().map(|(e, _)| e));
        out
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.run.streams.detach(&self.queue);
    }
}

/// How long after a stream opens its first heartbeat is due, unless something is written
/// before: `heartbeat` and a share of another set by the client's id (the fractional part of
/// the id times the golden ratio, which spreads any number of clients evenly), so that streams
/// opened together (every client connects before the schedule starts) do not all beat at one
/// instant, a herd no server with clients connecting at their own times has; and none beats
/// before a whole heartbeat of quiet. A stream without an id waits the one heartbeat. The
/// simulator gives its streams the same.
pub fn first_heartbeat(client: Option<u32>, heartbeat: Duration) -> Duration {
    let Some(id) = client else {
        return heartbeat;
    };
    let share = ((f64::from(id) + 1.0) * 0.618_033_988_749_894_9).fract();
    heartbeat + Duration::from_nanos((heartbeat.as_nanos() as f64 * share).round() as u64)
}

/// A pushed event leaves as soon as it exists: latency is one trip over the wire, one request
/// (the stream's opening) per client, one connection per client.
pub fn predict(s: &Scenario, what: &str, g: &Given) -> Prediction {
    let clients = s.clients.count as f64;
    Prediction {
        latency_p50_ms: g.push_ms(),
        latency_mean_ms: g.push_ms(),
        requests_per_second: 0.0,
        // The opening requests come before the measured period; none follow while it lasts.
        requests_per_delivery: 0.0,
        empty_share: 0.0,
        connections: clients,
        explanation: format!(
            "The server writes each event to {what} as soon as it exists, so latency is the generator's lateness \
             ({:.3} ms) plus {}. Each of the \
             {clients:.0} clients makes one request, to open its stream before the schedule starts, and keeps one \
             connection open for the whole run; nothing is ever sent empty.",
            g.generator_ms,
            g.push_path_words()
        ),
        given: *g,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::WireEvent;

    fn queue(policy: SlowConsumer, bound: usize, bound_bytes: usize) -> SendQueue {
        SendQueue {
            inner: Mutex::new(QueueInner {
                events: VecDeque::new(),
                bytes: 0,
                overflowed: false,
            }),
            notify: Notify::new(),
            closed: CancellationToken::new(),
            bound,
            bound_bytes,
            policy,
            topics: vec![0],
        }
    }

    fn event(seq: u64) -> Arc<Event> {
        let wire = WireEvent {
            id: seq,
            topic: 0,
            seq,
            scheduled_ns: 0,
            emitted_ns: 0,
            measured: true,
        };
        Arc::new(Event::new(wire, 100))
    }

    #[test]
    fn the_byte_bound_drops_the_oldest_or_disconnects_whichever_comes_first() {
        let size = event(1).json.len();
        let stats = Stats::default();
        // Room for 1000 events but only 2.5 events' bytes: the third push drops the first.
        let q = queue(SlowConsumer::DropOldest, 1000, size * 5 / 2);
        for seq in 1..=3 {
            q.push(&event(seq), &stats);
        }
        let inner = q.inner.lock().unwrap();
        assert_eq!(inner.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(inner.bytes, 2 * size);
        assert_eq!(stats.counters.dropped_oldest.load(Relaxed), 1);
        drop(inner);
        // The same bound under `disconnect` closes the connection at the third push.
        let q = queue(SlowConsumer::Disconnect, 1000, size * 5 / 2);
        for seq in 1..=3 {
            q.push(&event(seq), &stats);
        }
        assert!(q.closed.is_cancelled());
        assert_eq!(stats.counters.slow_disconnects.load(Relaxed), 1);
        // An event bigger than the whole bound still goes through, alone.
        let q = queue(SlowConsumer::DropOldest, 1000, size / 2);
        q.push(&event(1), &stats);
        assert_eq!(q.inner.lock().unwrap().events.len(), 1);
    }
}
