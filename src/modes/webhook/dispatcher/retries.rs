//! Retries waiting for their time: one heap ordered by when each is due, served by one task
//! that sleeps until the earliest. A waiting retry is 48 bytes in the heap; a timer task per
//! retry, as before, held several hundred and a place in tokio's scheduler each.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Inner, Job};

/// The waiting retries.
#[derive(Default)]
pub(super) struct Retries {
    heap: Mutex<BinaryHeap<Reverse<Due>>>,
    /// Wakes the task when a retry may have become the earliest.
    wake: Notify,
    /// Ties in `at` keep the order they came in.
    pushed: std::sync::atomic::AtomicU64,
}

/// One retry and when it is due.
struct Due {
    at: Instant,
    seq: u64,
    job: Job,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Retries {
    /// Puts `job` off until `at`.
    pub(super) fn push(&self, at: Instant, job: Job) {
        let seq = self.pushed.fetch_add(1, Relaxed);
        self.heap
            .lock()
            .expect("retries lock")
            .push(Reverse(Due { at, seq, job }));
        self.wake.notify_one();
    }

    /// The retries due by `now`, in order, and when the next one is due.
    fn take_due(&self, now: Instant) -> (Vec<Job>, Option<Instant>) {
        let mut heap = self.heap.lock().expect("retries lock");
        let mut due = Vec::new();
        while heap.peek().is_some_and(|Reverse(d)| d.at <= now) {
            due.push(heap.pop().expect("peeked").0.job);
        }
        (due, heap.peek().map(|Reverse(d)| d.at))
    }

    /// Forgets every waiting retry; returns how many there were.
    fn clear(&self) -> usize {
        let mut heap = self.heap.lock().expect("retries lock");
        let n = heap.len();
        heap.clear();
        n
    }
}

/// Queues each retry when it is due, until the run is cancelled.
pub(super) async fn serve(inner: Arc<Inner>) {
    loop {
        let (due, next) = inner.retries.take_due(Instant::now());
        for job in due {
            inner.stats.webhook.waiting.fetch_sub(1, Relaxed);
            inner.enqueue(job);
        }
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            // A permit is kept when no one waits, so a push between the take and here wakes us.
            _ = inner.retries.wake.notified() => {}
            _ = inner.cancel.cancelled() => {
                let n = inner.retries.clear();
                inner.stats.webhook.waiting.fetch_sub(n as u64, Relaxed);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_waiting_retry_holds_48_bytes() {
        assert_eq!(std::mem::size_of::<super::Due>(), 48);
    }
}
