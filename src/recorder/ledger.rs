//! Each client's exact ledger: which seqs of each topic it has seen ([`SeqTracker`]), and
//! what every arrival was (new, late, duplicate, out of order), counted per topic and per
//! fault window.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Recorder;
use crate::event::{Cursor, Seq, TopicId, WireEvent};

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
    recorder: Arc<Recorder>,
}

impl Ledger {
    /// A ledger for a client following `topics`, recording into `recorder`.
    pub fn new(client: u32, topics: Vec<TopicId>, recorder: Arc<Recorder>) -> Self {
        Ledger {
            trackers: vec![SeqTracker::default(); topics.len()],
            per_topic: vec![Arrivals::default(); topics.len()],
            windows: Vec::new(),
            client,
            topics,
            counts: ClientCounts::default(),
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
            if seen != Seen::Duplicate {
                self.recorder.warmup_delivered(now_ns);
            }
            return seen;
        }
        let mut arrival = Arrivals::default();
        match seen {
            Seen::Duplicate => arrival.duplicates = 1,
            Seen::New | Seen::Reordered => {
                arrival.delivered = 1;
                arrival.out_of_order = u64::from(seen == Seen::Reordered);
                arrival.late = u64::from(self.recorder.record(ev, now_ns));
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

    #[test]
    fn the_window_counts_the_warm_ups_deliveries_that_arrive_inside_it_once() {
        let rec = Arc::new(Recorder::default());
        rec.start(crate::recorder::Timeline {
            start_ns: 0,
            measured_ns: (1_000, 2_000),
            late_after_ns: u64::MAX,
            windows: Vec::new(),
        });
        let mut l = Ledger::new(0, vec![0], rec.clone());
        let ev = |seq, measured| WireEvent {
            id: seq,
            topic: 0,
            seq,
            scheduled_ns: 0,
            emitted_ns: 0,
            measured,
        };
        l.observe_at(&ev(1, false), 500); // before the window
        l.observe_at(&ev(2, false), 1_000); // in it
        l.observe_at(&ev(2, false), 1_100); // a duplicate
        l.observe_at(&ev(3, false), 1_999); // in it
        l.observe_at(&ev(4, true), 1_500); // measured
        l.observe_at(&ev(5, false), 2_000); // after it
        assert_eq!(rec.delivered(), 1);
        assert_eq!(rec.delivered_in_window(), 3);
    }
}
