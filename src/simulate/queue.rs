//! One queue of pending actions in time order. Actions due at the same nanosecond come out
//! in the order they went in, so a run is the same for the same seed, whatever the heap does.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Pending actions: `(due ns, client)`, earliest first.
#[derive(Debug, Default)]
pub struct Queue {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    pushed: u64,
}

impl Queue {
    /// An empty queue with room for `n` actions.
    pub fn with_capacity(n: usize) -> Self {
        Queue {
            heap: BinaryHeap::with_capacity(n),
            pushed: 0,
        }
    }

    /// Schedules `client`'s next action at `due_ns`.
    pub fn push(&mut self, due_ns: u64, client: u32) {
        self.heap.push(Reverse((due_ns, self.pushed, client)));
        self.pushed += 1;
    }

    /// The earliest action, if any: `(due ns, client)`.
    pub fn pop(&mut self) -> Option<(u64, u32)> {
        self.heap.pop().map(|Reverse((at, _, c))| (at, c))
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
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(10, 2), (10, 9), (30, 1), (30, 0)]);
        assert_eq!(q.pushed(), 4);
    }
}
