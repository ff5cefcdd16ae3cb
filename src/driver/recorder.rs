//! What the clients saw: latency histograms (sharded, so thousands of clients do not fight over
//! one lock) and each client's exact ledger of deliveries, duplicates, reordering and gaps.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::event::{Cursor, Seq, TopicId, WireEvent};
use crate::results::histogram::{new_coarse_histogram, new_histogram, HIST_MAX_US};

/// The two latencies of every measured delivery, and the same split by time.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Receive time − scheduled time: what a client experiences.
    pub scheduled: Histogram<u64>,
    /// Receive time − actual emission time: the delivery path alone, without generator lag.
    pub emitted: Histogram<u64>,
    /// Latency of the late deliveries: `[0]` over the whole run, `[1 + f]` for events
    /// scheduled in fault `f`'s window.
    pub late: Vec<Histogram<u64>>,
    /// Latency by the whole second (since the generator started) the event was scheduled in.
    pub by_second: Vec<Histogram<u64>>,
}

impl Latencies {
    fn new() -> Self {
        Latencies {
            scheduled: new_histogram(),
            emitted: new_histogram(),
            late: Vec::new(),
            by_second: Vec::new(),
        }
    }

    fn add(&mut self, other: &Latencies) {
        self.scheduled.add(&other.scheduled).expect("same bounds");
        self.emitted.add(&other.emitted).expect("same bounds");
        add_all(&mut self.late, &other.late);
        add_all(&mut self.by_second, &other.by_second);
    }
}

fn add_all(into: &mut Vec<Histogram<u64>>, from: &[Histogram<u64>]) {
    for (i, h) in from.iter().enumerate() {
        grow(into, i).add(h).expect("same bounds");
    }
}

fn grow(v: &mut Vec<Histogram<u64>>, i: usize) -> &mut Histogram<u64> {
    while v.len() <= i {
        v.push(new_coarse_histogram());
    }
    &mut v[i]
}

/// The run's clock, known once the generator starts: where fault windows lie and when a
/// delivery counts as late. Times are on the server's clock.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// When the generator started.
    pub start_ns: u64,
    /// A delivery whose latency exceeds this is late.
    pub late_after_ns: u64,
    /// Each fault's window, `[from, to)`.
    pub windows: Vec<(u64, u64)>,
}

impl Timeline {
    /// The fault windows an event scheduled at `scheduled_ns` falls in.
    pub fn windows_of(&self, scheduled_ns: u64) -> impl Iterator<Item = usize> + '_ {
        self.windows
            .iter()
            .enumerate()
            .filter(move |(_, (from, to))| scheduled_ns >= *from && scheduled_ns < *to)
            .map(|(i, _)| i)
    }
}

const SHARDS: usize = 16;

/// Shared by every client of one mode.
#[derive(Debug)]
pub struct Recorder {
    shards: Vec<Mutex<Latencies>>,
    delivered: AtomicU64,
    /// Server clock − driver clock, ns: added to the driver's readings so they compare with
    /// the server's stamps (0 when both share a host's monotonic clock).
    offset_ns: i64,
    timeline: OnceLock<Timeline>,
    /// How late pollers sent their polls against their slots, ns.
    sends: Mutex<Histogram<u64>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::with_clock_offset(0)
    }
}

impl Recorder {
    /// A recorder whose clients read the server's clock as the driver's plus `offset_ns`.
    pub fn with_clock_offset(offset_ns: i64) -> Self {
        Recorder {
            shards: (0..SHARDS).map(|_| Mutex::new(Latencies::new())).collect(),
            delivered: AtomicU64::new(0),
            offset_ns,
            timeline: OnceLock::new(),
            sends: Mutex::new(crate::clock::lateness_histogram()),
        }
    }

    /// Sets the run's timeline when the generator starts; later calls are ignored.
    pub fn start(&self, timeline: Timeline) {
        let _ = self.timeline.set(timeline);
    }

    /// The timeline, once the generator has started.
    pub fn timeline(&self) -> Option<&Timeline> {
        self.timeline.get()
    }

    /// Time since the generator started, on the server's clock; None before it starts.
    pub fn since_start(&self) -> Option<Duration> {
        let start = self.timeline.get()?.start_ns;
        Some(Duration::from_nanos(self.now_ns().saturating_sub(start)))
    }

    /// Now, on the server's clock.
    pub fn now_ns(&self) -> u64 {
        (clock::now_ns() as i64).saturating_add(self.offset_ns).max(0) as u64
    }

    /// Measured first deliveries so far, across all clients.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Relaxed)
    }

    /// Records a measured first delivery received at `now_ns`; says whether it was late.
    fn record(&self, shard: usize, ev: &WireEvent, now_ns: u64) -> bool {
        let us = |from: u64| (now_ns.saturating_sub(from) / 1_000).clamp(1, HIST_MAX_US);
        let scheduled_us = us(ev.scheduled_ns);
        let timeline = self.timeline.get();
        let mut l = self.shards[shard % SHARDS].lock().expect("recorder lock");
        l.scheduled.saturating_record(scheduled_us);
        l.emitted.saturating_record(us(ev.emitted_ns));
        let late = timeline.is_some_and(|t| now_ns.saturating_sub(ev.scheduled_ns) > t.late_after_ns);
        if let Some(t) = timeline {
            let second = (ev.scheduled_ns.saturating_sub(t.start_ns) / 1_000_000_000) as usize;
            grow(&mut l.by_second, second).saturating_record(scheduled_us);
            if late {
                grow(&mut l.late, 0).saturating_record(scheduled_us);
                for w in t.windows_of(ev.scheduled_ns) {
                    grow(&mut l.late, 1 + w).saturating_record(scheduled_us);
                }
            }
        }
        drop(l);
        self.delivered.fetch_add(1, Relaxed);
        late
    }

    /// Notes that a poll left `late_ns` after its slot.
    pub fn poll_sent(&self, late_ns: u64) {
        self.sends.lock().expect("sends lock").saturating_record(late_ns);
    }

    /// How late the polls left against their slots.
    pub fn poll_sends(&self) -> crate::clock::Lateness {
        crate::clock::Lateness::of(&self.sends.lock().expect("sends lock"))
    }

    /// All shards added together.
    pub fn merged(&self) -> Latencies {
        let mut out = Latencies::new();
        for s in &self.shards {
            out.add(&s.lock().expect("recorder lock"));
        }
        out
    }
}

/// Exact per-client counts; summed over clients for the results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCounts {
    /// Measured events received for the first time.
    pub delivered: u64,
    /// Of those, the ones that arrived later than the run's `late_after`.
    pub late: u64,
    /// Measured events received again.
    pub duplicates: u64,
    /// Measured events that arrived after a later event of the same topic.
    pub out_of_order: u64,
    /// Events the server said were gone (expired cursor) when the client asked for them.
    pub gap_events: u64,
    /// Times the client had to connect again (not counting the first connection).
    pub reconnects: u64,
    /// Requests the client made (polls, stream opens, webhook requests answered).
    pub requests: u64,
    /// Requests or connections that failed.
    pub errors: u64,
    /// Webhook requests refused for a bad signature, timestamp or missing header.
    pub rejected: u64,
}

impl std::ops::AddAssign for ClientCounts {
    fn add_assign(&mut self, o: ClientCounts) {
        self.delivered += o.delivered;
        self.late += o.late;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.gap_events += o.gap_events;
        self.reconnects += o.reconnects;
        self.requests += o.requests;
        self.errors += o.errors;
        self.rejected += o.rejected;
    }
}

/// One client's arrivals of measured events: over one topic, or of the events scheduled in
/// one fault window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Arrivals {
    /// First arrivals.
    pub delivered: u64,
    /// Of those, late ones.
    pub late: u64,
    /// Arrivals of an event already had.
    pub duplicates: u64,
    /// Arrivals after a later event of the topic.
    pub out_of_order: u64,
}

impl std::ops::AddAssign for Arrivals {
    fn add_assign(&mut self, o: Arrivals) {
        self.delivered += o.delivered;
        self.late += o.late;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
    }
}

/// Which seqs of one topic a client has seen, exactly, in little memory when they arrive in order.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    /// Every seq up to here has been seen (or skipped past).
    contiguous: Seq,
    /// Seen seqs above `contiguous`.
    above: BTreeSet<Seq>,
    /// Highest seq seen.
    max_seen: Seq,
    /// Ranges settled by [`SeqTracker::skip_to`] without being seen, inclusive.
    skipped: Vec<(Seq, Seq)>,
}

/// What one observed event was to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time, in order.
    New,
    /// First time, after a later event of its topic.
    Reordered,
    /// Seen before.
    Duplicate,
}

impl SeqTracker {
    /// Notes `seq` and says whether it was new.
    pub fn observe(&mut self, seq: Seq) -> Seen {
        if seq <= self.contiguous || self.above.contains(&seq) {
            return Seen::Duplicate;
        }
        let reordered = seq < self.max_seen;
        self.max_seen = self.max_seen.max(seq);
        if seq == self.contiguous + 1 {
            self.contiguous = seq;
            while self.above.remove(&(self.contiguous + 1)) {
                self.contiguous += 1;
            }
        } else {
            self.above.insert(seq);
        }
        if reordered {
            Seen::Reordered
        } else {
            Seen::New
        }
    }

    /// Treats every seq up to `seq` as settled: the client will not ask for them again.
    pub fn skip_to(&mut self, seq: Seq) {
        if seq > self.contiguous {
            let first_unseen = self.contiguous + 1;
            // Seqs above `contiguous` already seen are not skipped: note the unseen runs only.
            let mut from = first_unseen;
            for &s in self.above.range(..=seq) {
                if s > from {
                    self.skipped.push((from, s - 1));
                }
                from = s + 1;
            }
            if from <= seq {
                self.skipped.push((from, seq));
            }
            self.contiguous = seq;
            self.above = self.above.split_off(&(seq + 1));
            while self.above.remove(&(self.contiguous + 1)) {
                self.contiguous += 1;
            }
            self.max_seen = self.max_seen.max(seq);
        }
    }

    /// Highest seq seen.
    pub fn max_seen(&self) -> Seq {
        self.max_seen
    }

    /// The seqs in `from..=to` never seen, in order. Cheap when nothing is missing.
    pub fn unseen(&self, from: Seq, to: Seq) -> Vec<Seq> {
        let mut out: Vec<Seq> = self
            .skipped
            .iter()
            .flat_map(|&(a, b)| a.max(from)..=b.min(to))
            .collect();
        out.extend((from.max(self.contiguous + 1)..=to).filter(|s| !self.above.contains(s)));
        out.sort_unstable();
        out
    }
}

/// One client's view: which events of its topics it has seen, and its counts.
#[derive(Debug)]
pub struct Ledger {
    /// The client's index.
    pub client: u32,
    /// The client's topics, in the order its cursors list them.
    pub topics: Vec<TopicId>,
    trackers: Vec<SeqTracker>,
    /// The counts so far.
    pub counts: ClientCounts,
    /// Measured deliveries, duplicates and reorderings per topic, in `topics` order.
    per_topic: Vec<Arrivals>,
    /// Counts of the events scheduled in each fault window.
    windows: Vec<Arrivals>,
    shard: usize,
    recorder: Arc<Recorder>,
}

impl Ledger {
    /// A ledger for a client following `topics`, recording into `recorder` (shard by client id).
    pub fn new(client: u32, topics: Vec<TopicId>, recorder: Arc<Recorder>) -> Self {
        Ledger {
            trackers: vec![SeqTracker::default(); topics.len()],
            per_topic: vec![Arrivals::default(); topics.len()],
            windows: Vec::new(),
            client,
            topics,
            counts: ClientCounts::default(),
            shard: client as usize,
            recorder,
        }
    }

    /// Records a received event (reading the clock now) and says what it was.
    pub fn observe(&mut self, ev: &WireEvent) -> Seen {
        let now = self.recorder.now_ns();
        self.observe_at(ev, now)
    }

    /// Now, on the server's clock.
    pub fn now_ns(&self) -> u64 {
        self.recorder.now_ns()
    }

    /// The recorder this ledger records into.
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// Time since the generator started; None before it starts.
    pub fn since_start(&self) -> Option<Duration> {
        self.recorder.since_start()
    }

    /// Records a received event received at `now_ns`.
    pub fn observe_at(&mut self, ev: &WireEvent, now_ns: u64) -> Seen {
        let Some(i) = self.topics.iter().position(|t| *t == ev.topic) else {
            // An event of a topic the client did not ask for: the server is wrong; count it.
            self.counts.errors += 1;
            return Seen::Duplicate;
        };
        let seen = self.trackers[i].observe(ev.seq);
        if !ev.measured {
            return seen;
        }
        let mut arrival = Arrivals::default();
        match seen {
            Seen::Duplicate => arrival.duplicates = 1,
            Seen::New | Seen::Reordered => {
                arrival.delivered = 1;
                arrival.out_of_order = u64::from(seen == Seen::Reordered);
                arrival.late = u64::from(self.recorder.record(self.shard, ev, now_ns));
            }
        }
        self.per_topic[i] += arrival;
        self.counts.delivered += arrival.delivered;
        self.counts.late += arrival.late;
        self.counts.duplicates += arrival.duplicates;
        self.counts.out_of_order += arrival.out_of_order;
        if let Some(t) = self.recorder.timeline() {
            for w in t.windows_of(ev.scheduled_ns) {
                if self.windows.len() <= w {
                    self.windows.resize(t.windows.len(), Arrivals::default());
                }
                self.windows[w] += arrival;
            }
        }
        seen
    }

    /// Counts of the events scheduled in fault window `w`.
    pub fn window_counts(&self, w: usize) -> Arrivals {
        self.windows.get(w).copied().unwrap_or_default()
    }

    /// The measured seqs `from..=to` of `topics[i]` this client never received.
    pub fn unseen(&self, i: usize, from: Seq, to: Seq) -> Vec<Seq> {
        self.trackers[i].unseen(from, to)
    }

    /// The server said events of `topics[i]` after `from` and before `to` are gone.
    pub fn gap(&mut self, i: usize, from: Seq, earliest: Seq) {
        self.counts.gap_events += earliest.saturating_sub(from + 1);
        self.trackers[i].skip_to(earliest.saturating_sub(1));
    }

    /// Measured counts for each of the client's topics.
    pub fn topic_counts(&self) -> impl Iterator<Item = (TopicId, Arrivals)> + '_ {
        self.topics.iter().copied().zip(self.per_topic.iter().copied())
    }

    /// The highest seq seen per topic: where to resume a stream.
    pub fn cursor(&self) -> Cursor {
        Cursor(self.trackers.iter().map(SeqTracker::max_seen).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_counts_duplicates_and_reordering_exactly() {
        let mut t = SeqTracker::default();
        assert_eq!(t.observe(1), Seen::New);
        assert_eq!(t.observe(3), Seen::New);
        assert_eq!(t.observe(2), Seen::Reordered);
        assert_eq!(t.observe(2), Seen::Duplicate);
        assert_eq!(t.observe(3), Seen::Duplicate);
        assert_eq!(t.observe(4), Seen::New);
        assert_eq!(t.contiguous, 4);
        assert!(t.above.is_empty());
    }

    #[test]
    fn skip_settles_a_gap() {
        let mut t = SeqTracker::default();
        t.observe(1);
        t.observe(4);
        t.observe(9);
        t.skip_to(7);
        assert_eq!(t.contiguous, 7);
        assert_eq!(t.observe(8), Seen::Reordered);
        assert_eq!(t.contiguous, 9);
        // Skipped seqs count as unseen; the one seen inside the skipped range does not.
        assert_eq!(t.unseen(1, 12), vec![2, 3, 5, 6, 7, 10, 11, 12]);
        assert_eq!(t.unseen(8, 9), Vec::<Seq>::new());
    }

    #[test]
    fn ledger_counts_only_measured_events_and_records_latency() {
        let rec = Arc::new(Recorder::default());
        let mut l = Ledger::new(0, vec![2], rec.clone());
        let ev = |seq, measured| WireEvent {
            id: seq,
            topic: 2,
            seq,
            scheduled_ns: 0,
            emitted_ns: 0,
            measured,
        };
        l.observe_at(&ev(1, false), 5_000);
        l.observe_at(&ev(2, true), 7_000);
        l.observe_at(&ev(2, true), 8_000);
        assert_eq!(l.counts.delivered, 1);
        assert_eq!(l.counts.duplicates, 1);
        assert_eq!(rec.delivered(), 1);
        assert_eq!(rec.merged().scheduled.len(), 1);
        assert_eq!(rec.merged().scheduled.max(), 7);
        assert_eq!(l.cursor(), Cursor(vec![2]));
    }
}
