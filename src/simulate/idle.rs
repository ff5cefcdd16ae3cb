//! A poller's connection as `run`'s server keeps it: opened by the client's first request
//! (whenever its phase puts it, the warm-up's or the window's), and closed once it has waited
//! [`HEADER_READ_TIMEOUT`] for the next request, so that a poller asking less often than that
//! opens a new connection for each request; and how many the server holds at once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::api::HEADER_READ_TIMEOUT;

/// Each client's connection and when the server closes it.
pub struct Idle {
    /// When each client's connection closes unless a request comes first; 0 while it has none,
    /// [`u64::MAX`] while its first request is being answered.
    closes: Vec<u64>,
    /// One entry for each open connection, by when it was due to close when queued, earliest
    /// first: a connection used since is queued again at its new time when its entry comes up,
    /// so that a request costs the queue nothing.
    due: BinaryHeap<Reverse<(u64, u32)>>,
    /// How long a connection waits for its next request, ns.
    timeout: u64,
    /// Connections open now.
    holding: u64,
    /// The most open at once.
    pub peak: u64,
}

impl Idle {
    /// `clients` clients, none connected.
    pub fn new(clients: usize) -> Idle {
        Idle {
            closes: vec![0; clients],
            due: BinaryHeap::new(),
            timeout: HEADER_READ_TIMEOUT.as_nanos() as u64,
            holding: 0,
            peak: 0,
        }
    }

    /// Closes every connection that has waited out its timeout by `at`, handing each client
    /// whose connection closed to `closed`.
    pub fn close_by(&mut self, at: u64, closed: &mut dyn FnMut(usize)) {
        while let Some(&Reverse((when, c))) = self.due.peek() {
            if when > at {
                break;
            }
            self.due.pop();
            let c = c as usize;
            if self.closes[c] == when {
                self.closes[c] = 0;
                self.holding -= 1;
                closed(c);
            } else {
                self.due.push(Reverse((self.closes[c], c as u32)));
            }
        }
    }

    /// Client `c`'s request reaches the server at `at` (after [`Idle::close_by`] at `at`):
    /// whether it opens a connection, having none open.
    pub fn opens(&mut self, c: usize, at: u64) -> bool {
        if self.closes[c] > at {
            return false;
        }
        self.closes[c] = u64::MAX;
        self.holding += 1;
        self.peak = self.peak.max(self.holding);
        true
    }

    /// Client `c`'s request was answered at `done`: its connection waits from then.
    pub fn answered(&mut self, c: usize, done: u64) {
        let opened = self.closes[c] == u64::MAX;
        self.closes[c] = done + self.timeout;
        if opened {
            self.due.push(Reverse((self.closes[c], c as u32)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_connection_closes_after_waiting_out_the_timeout_and_the_next_request_opens_another() {
        let mut idle = Idle::new(2);
        let mut closed = Vec::new();
        // Client 0 asks at 0 and again 20 s after its answer: one connection. Client 1 asks at
        // 1 s and again 40 s after: its connection closed at 31 s, the next opens another.
        idle.close_by(0, &mut |c| closed.push(c));
        assert!(idle.opens(0, 0));
        idle.answered(0, 1);
        assert!(idle.opens(1, S));
        idle.answered(1, S);
        idle.close_by(20 * S, &mut |c| closed.push(c));
        assert!(!idle.opens(0, 20 * S));
        idle.answered(0, 20 * S);
        idle.close_by(41 * S, &mut |c| closed.push(c));
        assert_eq!(closed, [1], "client 1's at 31 s; client 0's is due at 50 s");
        assert!(idle.opens(1, 41 * S));
        idle.answered(1, 41 * S);
        assert_eq!(idle.peak, 2);
        idle.close_by(100 * S, &mut |c| closed.push(c));
        assert_eq!(closed, [1, 0, 1]);
        assert_eq!(idle.holding, 0);
    }
}
