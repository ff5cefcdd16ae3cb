//! When the model's streams are due a heartbeat: a heartbeat after the server last wrote to
//! a stream, and a stream's first (from the schedule's start, or from its reopening when it
//! reopened with nothing to write) a heartbeat and a share of another set by the client's id,
//! as the real server has it ([`first_heartbeat`]).
//!
//! Writes come in time order, and each is due a heartbeat later, so the heartbeats they make
//! due are appended to a queue in order: a push and a pop each, where a heap of a million
//! streams would spend its time on cache misses. A stream written again before its heartbeat
//! leaves that one behind in the queue, stale, and it is skipped. The streams' first
//! heartbeats wait in a queue of their own, sorted once; only the first heartbeat of a
//! reopened stream comes out of both orders, and those few wait in a heap.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use crate::modes::stream::first_heartbeat;

/// The streams' heartbeats to come.
#[derive(Debug)]
pub(super) struct Heartbeats {
    /// The interval, ns.
    every: u64,
    /// When each client's stream is next due one, ns.
    due: Vec<u64>,
    /// Heartbeats made due by writes, in time order (some stale: `due` says which still are).
    queue: VecDeque<(u64, u32)>,
    /// The streams' first heartbeats, in time order (stale once a stream is written).
    firsts: VecDeque<(u64, u32)>,
    /// The first heartbeats of reopened streams.
    reopened: BinaryHeap<Reverse<(u64, u32)>>,
}

impl Heartbeats {
    /// Heartbeats every `every` for `clients` streams, all open when the schedule starts.
    pub fn new(clients: u32, every: Duration) -> Heartbeats {
        let due: Vec<u64> = (0..clients).map(|c| first(c, every)).collect();
        let mut firsts: VecDeque<(u64, u32)> = due.iter().zip(0..).map(|(&at, c)| (at, c)).collect();
        firsts.make_contiguous().sort_unstable();
        Heartbeats {
            every: every.as_nanos().max(1) as u64,
            due,
            queue: VecDeque::new(),
            firsts,
            reopened: BinaryHeap::new(),
        }
    }

    /// The server wrote to client `c`'s stream at `at` (no earlier than anything before):
    /// its next heartbeat is due an interval later.
    pub fn wrote(&mut self, c: u32, at: u64) {
        let due = at + self.every;
        debug_assert!(
            self.queue.back().is_none_or(|b| b.0 <= due),
            "writes come in order"
        );
        self.due[c as usize] = due;
        self.queue.push_back((due, c));
    }

    /// Client `c`'s stream opened again at `at` with nothing to write: its first heartbeat
    /// is due as a new stream's is.
    pub fn reopened(&mut self, c: u32, at: u64) {
        let due = at + first(c, Duration::from_nanos(self.every));
        self.due[c as usize] = due;
        self.reopened.push(Reverse((due, c)));
    }

    /// When the next heartbeat is due, if any is.
    pub fn next_due(&mut self) -> Option<u64> {
        let due = &self.due;
        for queue in [&mut self.queue, &mut self.firsts] {
            while queue.front().is_some_and(|&(at, c)| due[c as usize] != at) {
                queue.pop_front();
            }
        }
        while self
            .reopened
            .peek()
            .is_some_and(|&Reverse((at, c))| due[c as usize] != at)
        {
            self.reopened.pop();
        }
        let queued = self.queue.front().map(|b| b.0);
        let first = self.firsts.front().map(|b| b.0);
        let reopened = self.reopened.peek().map(|b| b.0 .0);
        queued.into_iter().chain(first).chain(reopened).min()
    }

    /// The next heartbeat due: when, and whose stream. It is due no longer: the server
    /// writes it ([`Heartbeats::wrote`]), or the stream is closed and waits to reopen.
    pub fn pop(&mut self) -> Option<(u64, u32)> {
        let at = self.next_due()?;
        let beat = if self.queue.front().is_some_and(|b| b.0 == at) {
            self.queue.pop_front()
        } else if self.firsts.front().is_some_and(|b| b.0 == at) {
            self.firsts.pop_front()
        } else {
            self.reopened.pop().map(|Reverse(b)| b)
        }?;
        self.due[beat.1 as usize] = u64::MAX;
        Some(beat)
    }
}

/// Client `c`'s first heartbeat after its stream opens, ns.
fn first(c: u32, every: Duration) -> u64 {
    first_heartbeat(Some(c), every).as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_written_is_due_an_interval_later_and_its_earlier_heartbeat_is_gone() {
        // Every 10 ns for two clients: client 0's first at 10 + frac(0.618…) × 10 = 16,
        // client 1's at 10 + frac(1.236…) × 10 = 12, by hand.
        let mut h = Heartbeats::new(2, Duration::from_nanos(10));
        assert_eq!(h.next_due(), Some(12));
        h.wrote(1, 3);
        h.wrote(0, 5);
        // Client 1 written at 3: due at 13, not 12; client 0 at 5: due at 15, not 16.
        assert_eq!(h.pop(), Some((13, 1)));
        h.wrote(1, 13);
        assert_eq!(h.pop(), Some((15, 0)));
        // Closed: nothing is written, and nothing more is due for it until it reopens.
        h.reopened(0, 16);
        assert_eq!(h.pop(), Some((23, 1)));
        assert_eq!(h.pop(), Some((32, 0)), "reopened at 16, its first 16 later");
        assert_eq!(h.pop(), None);
    }
}
