//! One queue of pending actions in time order. Actions due at the same nanosecond come out
//! in the order they went in, so a run is the same for the same seed, whatever the heap does.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// An action due at `due_ns`, the `seq`th pushed.
#[derive(Debug)]
struct Entry<T> {
    due_ns: u64,
    seq: u64,
    what: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.due_ns, self.seq) == (o.due_ns, o.seq)
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
        (self.due_ns, self.seq).cmp(&(o.due_ns, o.seq))
    }
}

/// Pending actions (a client's next request, a delivery's next attempt), earliest first.
#[derive(Debug)]
pub struct Queue<T = u32> {
    heap: BinaryHeap<Reverse<Entry<T>>>,
    pushed: u64,
}

impl<T> Queue<T> {
    /// An empty queue with room for `n` actions.
    pub fn with_capacity(n: usize) -> Self {
        Queue {
            heap: BinaryHeap::with_capacity(n),
            pushed: 0,
        }
    }

    /// Schedules `what` at `due_ns`.
    pub fn push(&mut self, due_ns: u64, what: T) {
        let seq = self.pushed;
        self.heap.push(Reverse(Entry { due_ns, seq, what }));
        self.pushed += 1;
    }

    /// The earliest action, if any: `(due ns, what)`.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        self.heap.pop().map(|Reverse(e)| (e.due_ns, e.what))
    }

    /// When the earliest action is due.
    pub fn next_due(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(e)| e.due_ns)
    }

    /// Actions scheduled so far.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }
}

#[cfg(test)]
mod tests {
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
}
