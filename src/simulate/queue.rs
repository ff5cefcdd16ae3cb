//! One queue of pending actions in time order. Actions due at the same nanosecond come out
//! in the order they went in, so a run is the same for the same seed.
//!
//! A calendar queue (Brown, 1988): a wheel of buckets a fixed width apart, each holding the
//! actions due in its slice of time, so that a push is an append and a pop takes the earliest
//! of one small bucket. Actions beyond one turn of the wheel wait in a heap until the wheel
//! comes round to them. A binary heap of a million clients' next actions spent most of its
//! time on cache misses down twenty levels of the heap.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// An action due at `due_ns`, the `seq`th pushed.
#[derive(Debug)]
struct Entry<T> {
    due_ns: u64,
    seq: u64,
    what: T,
}

impl<T> Entry<T> {
    fn key(&self) -> (u64, u64) {
        (self.due_ns, self.seq)
    }
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key().cmp(&o.key())
    }
}

/// Buckets in the wheel (a power of two).
const BUCKETS: usize = 1 << 14;
/// Each bucket's slice of time: 2^20 ns, about a millisecond; one turn is about 17 s.
const WIDTH_SHIFT: u32 = 20;

/// Pending actions (a client's next request, a delivery's next attempt), earliest first.
#[derive(Debug)]
pub struct Queue<T = u32> {
    /// Bucket `i` holds actions due in slices `i`, `i + BUCKETS`, …, within one turn from
    /// `now_slice`. The bucket being drained is kept sorted latest first.
    buckets: Vec<Vec<Entry<T>>>,
    /// The slice the wheel is at: nothing earlier is pending.
    now_slice: u64,
    /// Whether the current bucket is sorted.
    sorted: bool,
    /// Actions pushed into the current slice while its bucket is drained: a heap beside the
    /// sorted bucket, since inserting into the bucket moves every later action (a million
    /// long polls refused together come back together, and each one pushed again into a
    /// bucket of hundreds of thousands moved them all).
    fresh: BinaryHeap<Reverse<Entry<T>>>,
    /// Actions a turn or more ahead.
    later: BinaryHeap<Reverse<Entry<T>>>,
    /// Actions in the buckets.
    in_wheel: usize,
    pushed: u64,
    /// Room a bucket keeps when it empties: what one holds on average when the expected
    /// number of actions is pending.
    room: usize,
}

impl<T> Queue<T> {
    /// An empty queue; `n` is how many actions are expected to be pending at once.
    pub fn with_capacity(n: usize) -> Self {
        let per_bucket = n / BUCKETS;
        Queue {
            buckets: (0..BUCKETS).map(|_| Vec::with_capacity(per_bucket)).collect(),
            now_slice: 0,
            sorted: false,
            fresh: BinaryHeap::new(),
            later: BinaryHeap::new(),
            in_wheel: 0,
            pushed: 0,
            room: per_bucket,
        }
    }

    /// Schedules `what` at `due_ns` (an action due before the queue's present is due now).
    pub fn push(&mut self, due_ns: u64, what: T) {
        let e = Entry {
            due_ns,
            seq: self.pushed,
            what,
        };
        self.pushed += 1;
        let slice = (due_ns >> WIDTH_SHIFT).max(self.now_slice);
        if slice >= self.now_slice + BUCKETS as u64 {
            self.later.push(Reverse(e));
            return;
        }
        self.in_wheel += 1;
        if slice == self.now_slice && self.sorted {
            self.fresh.push(Reverse(e));
        } else {
            self.buckets[slice as usize % BUCKETS].push(e);
        }
    }

    /// The earliest action, if any: `(due ns, what)`.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        self.settle()?;
        let bucket = &mut self.buckets[self.now_slice as usize % BUCKETS];
        let e = match self.fresh.peek() {
            Some(Reverse(f)) if bucket.last().is_none_or(|b| f.key() < b.key()) => {
                self.fresh.pop().expect("peeked").0
            }
            _ => bucket.pop().expect("settled on a non-empty slice"),
        };
        self.in_wheel -= 1;
        Some((e.due_ns, e.what))
    }

    /// When the earliest action is due.
    pub fn next_due(&mut self) -> Option<u64> {
        self.settle()?;
        let bucket = self.buckets[self.now_slice as usize % BUCKETS]
            .last()
            .map(|e| e.due_ns);
        let fresh = self.fresh.peek().map(|Reverse(e)| e.due_ns);
        bucket.into_iter().chain(fresh).min()
    }

    /// Actions scheduled so far.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// Turns the wheel to the earliest pending action and sorts its bucket; None when nothing
    /// is pending.
    fn settle(&mut self) -> Option<()> {
        loop {
            let bucket = &self.buckets[self.now_slice as usize % BUCKETS];
            // Only entries of this turn count: a bucket also holds nothing of later turns,
            // since those wait in `later`.
            if !bucket.is_empty() || !self.fresh.is_empty() {
                if !self.sorted {
                    let bucket = &mut self.buckets[self.now_slice as usize % BUCKETS];
                    bucket.sort_unstable_by_key(|e| Reverse(e.key()));
                    self.sorted = true;
                }
                return Some(());
            }
            // A burst that passed through left the bucket room for far more than it usually
            // holds: give it back, or every bucket a wave of actions sweeps keeps its peak.
            let room = self.room;
            let bucket = &mut self.buckets[self.now_slice as usize % BUCKETS];
            if bucket.capacity() > 4 * room.max(16) {
                bucket.shrink_to(room);
            }
            if self.in_wheel == 0 {
                // Jump straight to the next action a turn or more ahead.
                let Reverse(next) = self.later.peek()?;
                self.now_slice = next.due_ns >> WIDTH_SHIFT;
            } else {
                self.now_slice += 1;
            }
            self.sorted = false;
            // Bring in what has come within one turn.
            while let Some(Reverse(e)) = self.later.peek() {
                if (e.due_ns >> WIDTH_SHIFT) >= self.now_slice + BUCKETS as u64 {
                    break;
                }
                let Reverse(e) = self.later.pop().expect("peeked");
                let slice = (e.due_ns >> WIDTH_SHIFT).max(self.now_slice);
                self.buckets[slice as usize % BUCKETS].push(e);
                self.in_wheel += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn earliest_first_and_ties_in_the_order_they_came() {
        let mut q = Queue::with_capacity(4);
        q.push(30, 1);
        q.push(10, 2);
        q.push(30, 0);
        q.push(10, 9);
        assert_eq!(q.next_due(), Some(10));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(10, 2), (10, 9), (30, 1), (30, 0)]);
        assert_eq!(q.pushed(), 4);
    }

    #[test]
    fn actions_pushed_into_the_slice_being_drained_take_their_turn_among_its_own() {
        // Three due at 10 ns; once the first is out (the slice is being drained), one more at
        // 10 ns and one at 20 go in beside the two left, and one at 5 ns: earlier than the
        // rest, so next. Then the 10s in the order they went in, then the 20, by hand.
        let mut q = Queue::with_capacity(0);
        for what in [1, 2, 3] {
            q.push(10, what);
        }
        assert_eq!(q.pop(), Some((10, 1)));
        q.push(10, 4);
        q.push(20, 5);
        q.push(5, 6);
        assert_eq!(q.next_due(), Some(5));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(5, 6), (10, 2), (10, 3), (10, 4), (20, 5)]);
    }

    #[test]
    fn the_same_order_as_a_heap_whatever_the_delays() {
        // A simulation's pattern: pop the earliest, push new actions from its time onwards,
        // at delays from nothing to many turns of the wheel.
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut q = Queue::with_capacity(64);
        let mut reference = BinaryHeap::new();
        let mut seq = 0u64;
        let mut push = |q: &mut Queue<u64>, r: &mut BinaryHeap<Reverse<(u64, u64)>>, due: u64| {
            q.push(due, seq);
            r.push(Reverse((due, seq)));
            seq += 1;
        };
        for _ in 0..500 {
            let due = rng.gen_range(0..5_000_000_000);
            push(&mut q, &mut reference, due);
        }
        let mut popped = 0;
        while let Some((due, what)) = q.pop() {
            let Reverse(expected) = reference.pop().expect("as many");
            assert_eq!((due, what), expected, "after {popped}");
            popped += 1;
            if popped < 20_000 {
                for _ in 0..rng.gen_range(0..3) {
                    let delay = match rng.gen_range(0..4) {
                        0 => 0,
                        1 => rng.gen_range(0..1 << WIDTH_SHIFT),
                        2 => rng.gen_range(0..5_000_000_000),
                        _ => rng.gen_range(0..200_000_000_000),
                    };
                    push(&mut q, &mut reference, due + delay);
                }
            }
        }
        assert!(reference.is_empty());
        assert!(popped > 20_000);
    }

    #[test]
    fn a_bucket_a_burst_passed_through_gives_its_room_back() {
        // 10,000 actions due in one slice, then one a slice later: once the wheel has moved
        // on, the burst's bucket keeps room for what a bucket usually holds, not for 10,000.
        let mut q = Queue::with_capacity(0);
        for i in 0..10_000 {
            q.push(5, i);
        }
        q.push(2 << WIDTH_SHIFT, 0);
        assert!(q.buckets[0].capacity() >= 10_000);
        for _ in 0..10_001 {
            q.pop().expect("pending");
        }
        assert!(q.buckets[0].capacity() <= 64, "{}", q.buckets[0].capacity());
    }
}
