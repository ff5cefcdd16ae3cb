//! The webhook sender's connections, kept as the real dispatcher's HTTP client keeps them: one
//! pool per receiver host (client `c` is on host `c % hosts`). An attempt takes an idle
//! connection of its host or opens one, from when its worker takes the delivery (the worker's
//! task checks the connection out before its turn at a core to send), and when the attempt
//! ends its connection goes back to the pool,
//! unless the attempt timed out (the dispatcher drops the request and its connection with it)
//! or the receiver hung up. Idle connections are kept, so a host's pool grows to the most
//! attempts it has had under way at once, and the sender's to the sum of its hosts' peaks,
//! which may pass its workers. The server holds what it holds per connection for each, so the
//! sender's memory follows these connections rather than its endpoints.
//!
//! The dispatcher's 90 s idle timeout does not close them either: its client has no pool timer
//! to reap idle connections, and a checkout takes the most recently idle one, so only a host
//! left unused for 90 s would drop its pool at its next attempt (not modelled). Nor is a
//! connection the real pool opens while an idle one comes free (it keeps both).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The sender's pools, and the most connections they held at once.
pub struct Pools {
    /// The attempts under way: when each ends, its host, and whether it closes its connection.
    busy: BinaryHeap<Reverse<(u64, usize, bool)>>,
    /// Each host's connections: under way, and open (busy or idle).
    hosts: Vec<(u64, u64)>,
    open: u64,
    peak: u64,
}

impl Pools {
    /// Empty pools for `hosts` receiver hosts (at least one; the real receivers are spread
    /// over at most 250).
    pub fn new(hosts: u32) -> Self {
        Pools {
            busy: BinaryHeap::new(),
            hosts: vec![(0, 0); hosts.clamp(1, 250) as usize],
            open: 0,
            peak: 0,
        }
    }

    /// An attempt to `client`'s endpoint starting at `from` checks a connection out of its
    /// host's pool, opening one if none is idle; returns its host, for [`Pools::hold`], and
    /// whether it opened one. Attempts come in the order they start.
    pub fn check_out(&mut self, client: u32, from: u64) -> (usize, bool) {
        self.end_before(from);
        let host = client as usize % self.hosts.len();
        let (busy, open) = &mut self.hosts[host];
        let opens = *busy == *open;
        if opens {
            *open += 1;
            self.open += 1;
            self.peak = self.peak.max(self.open);
        }
        *busy += 1;
        (host, opens)
    }

    /// The attempt that checked a connection out of `host`'s pool holds it until `to`, and
    /// `closes` it then (a timeout or a hang-up) or gives it back.
    pub fn hold(&mut self, host: usize, to: u64, closes: bool) {
        self.busy.push(Reverse((to, host, closes)));
    }

    /// Ends the attempts under way that end by `at`.
    fn end_before(&mut self, at: u64) {
        while let Some(Reverse((_, host, closed))) = self.busy.peek().copied().filter(|e| e.0 .0 <= at) {
            self.busy.pop();
            let (busy, open) = &mut self.hosts[host];
            *busy -= 1;
            if closed {
                *open -= 1;
                self.open -= 1;
            }
        }
    }

    /// The most connections open at once.
    pub fn peak(&self) -> u64 {
        self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attempt to `client` from `from` to `to`, which `closes` its connection at its end.
    fn attempt(p: &mut Pools, client: u32, from: u64, to: u64, closes: bool) {
        let (host, _) = p.check_out(client, from);
        p.hold(host, to, closes);
    }

    #[test]
    fn a_hosts_pool_grows_to_its_most_attempts_at_once_and_reuses_its_idle_connections() {
        // Host 0 (even clients) has attempts over [0, 10), [2, 5), [6, 9): two at once at
        // most, the third on the second's connection; host 1 has one: three, by hand.
        let mut p = Pools::new(2);
        attempt(&mut p, 0, 0, 10, false);
        attempt(&mut p, 2, 2, 5, false);
        attempt(&mut p, 1, 3, 4, false);
        attempt(&mut p, 4, 6, 9, false);
        assert_eq!(p.peak(), 3);
        // From 9, host 0 has [0, 10) and two more under way: a third connection.
        attempt(&mut p, 6, 9, 20, false);
        attempt(&mut p, 8, 9, 20, false);
        assert_eq!(p.peak(), 4);
    }

    #[test]
    fn a_connection_closed_by_its_attempt_is_no_longer_held() {
        // Host 1's two attempts time out at 5 and close their connections; host 0 has three
        // under way from 6. Open, by hand: at 2, host 1's two and host 0's one; at 6, host 0's
        // three and none of host 1's.
        let mut p = Pools::new(2);
        attempt(&mut p, 1, 0, 5, true);
        attempt(&mut p, 3, 1, 5, true);
        attempt(&mut p, 0, 2, 20, false);
        assert_eq!(p.peak(), 3);
        attempt(&mut p, 2, 6, 20, false);
        attempt(&mut p, 4, 6, 20, false);
        assert_eq!(p.peak(), 3, "kept open, host 1's would make five");
        // Host 1 again: its closed connections are opened anew, one for one attempt.
        attempt(&mut p, 5, 7, 8, false);
        assert_eq!(p.peak(), 4);
    }
}
