//! The server's limit on client connections held at once (`[server] max_connections`), kept
//! as `run`'s server keeps it: a client's connection counts from when the server admits it
//! until it closes, and past the limit a new connection is answered 503 (`Retry-After: 1`)
//! and closed. Pollers and long pollers keep theirs alive, so the first clients in hold
//! theirs for the whole run; a stream's closes when a `stream_cut` or the slow-consumer
//! policy closes the stream, and the next client to connect may take it.

use crate::scenario::Scenario;

/// Which clients hold a connection, and how many connections were turned away.
pub struct Admission {
    /// Each client: never connected, holding a connection, or turned away before and not
    /// holding one. Empty when the limit cannot be reached (as many as the clients or more).
    state: Vec<State>,
    holding: u64,
    most: u64,
    /// When the count of connections turned away starts: the end of the warm-up, as `run`
    /// counts them.
    from: u64,
    /// Connections answered 503 and closed, from `from` on.
    pub refused: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Holding,
    Out,
}

/// What became of a client's connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// It holds a connection (its own already, or a new one).
    Yes,
    /// Turned away: 503 with `Retry-After: 1`, and the connection closed.
    Refused,
}

impl Admission {
    /// `s`'s limit over its clients.
    pub fn new(s: &Scenario) -> Self {
        let clients = u64::from(s.clients.count);
        let most = s.server.max_connections.unwrap_or(u64::MAX);
        Admission {
            state: if most < clients {
                vec![State::New; clients as usize]
            } else {
                Vec::new()
            },
            holding: 0,
            most,
            from: s.warmup.as_nanos() as u64,
            refused: 0,
        }
    }

    /// Whether the limit can turn anyone away.
    pub fn binds(&self) -> bool {
        !self.state.is_empty()
    }

    /// Client `c` asks over its connection, or opens one, at `at`: served if it holds one or
    /// one is free.
    pub fn admit(&mut self, c: usize, at: u64) -> Admitted {
        let Some(state) = self.state.get_mut(c) else {
            return Admitted::Yes;
        };
        if *state == State::Holding {
            return Admitted::Yes;
        }
        if self.holding < self.most {
            *state = State::Holding;
            self.holding += 1;
            return Admitted::Yes;
        }
        *state = State::Out;
        self.refused += u64::from(at >= self.from);
        Admitted::Refused
    }

    /// Whether client `c` was turned away before (so that its next attempt opens a connection
    /// again).
    pub fn was_refused(&self, c: usize) -> bool {
        self.state.get(c) == Some(&State::Out)
    }

    /// Client `c`'s connection closed for want of a request: it holds none, and its next
    /// request connects as its first did (not counted as one turned away before).
    pub fn idled(&mut self, c: usize) {
        self.closed(c, State::New);
    }

    /// Client `c`'s connection closed.
    pub fn release(&mut self, c: usize) {
        self.closed(c, State::Out);
    }

    /// Client `c` holds no connection now, if it held one, and is left `to`.
    fn closed(&mut self, c: usize, to: State) {
        if let Some(state) = self.state.get_mut(c) {
            if *state == State::Holding {
                *state = to;
                self.holding -= 1;
            }
        }
    }

    /// The most connections held at once: every client's, or the limit.
    pub fn peak(&self, clients: u64) -> u64 {
        clients.min(self.most)
    }

    /// Puts what it counted in `out`: the connections turned away, and the most held.
    pub fn count(&self, out: &mut super::Outcome) {
        out.connections_refused = self.refused;
        out.peak_connections = self.peak(out.peak_connections);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn scenario(server: &str) -> Scenario {
        let text = format!(
            "name = \"a\"\nduration = \"1s\"\nwarmup = \"0s\"\nmodes = [\"sse\"]\n[events]\nrate = 1\n[clients]\ncount = 4\n{server}"
        );
        Scenario::parse(Path::new("a.toml"), &text).unwrap()
    }

    #[test]
    fn the_first_clients_in_hold_their_connections_and_the_rest_are_turned_away_until_one_closes() {
        let mut a = Admission::new(&scenario("[server]\nmax_connections = 2\n"));
        assert!(a.binds());
        assert_eq!(a.admit(3, 0), Admitted::Yes);
        assert_eq!(a.admit(1, 0), Admitted::Yes);
        assert_eq!(a.admit(3, 0), Admitted::Yes, "its own connection again");
        assert_eq!(a.admit(0, 0), Admitted::Refused);
        assert!(a.was_refused(0) && !a.was_refused(2));
        assert_eq!(a.admit(2, 0), Admitted::Refused);
        a.release(1);
        a.release(0); // holds nothing: no change
        assert_eq!(a.admit(2, 0), Admitted::Yes);
        assert_eq!(a.admit(0, 0), Admitted::Refused);
        assert_eq!(a.refused, 3);
        assert_eq!(a.peak(4), 2);
    }

    #[test]
    fn a_limit_at_or_above_the_clients_turns_nobody_away() {
        for server in ["", "[server]\nmax_connections = 4\n"] {
            let mut a = Admission::new(&scenario(server));
            assert!(!a.binds());
            assert!((0..4).all(|c| a.admit(c, 0) == Admitted::Yes));
            assert_eq!((a.refused, a.peak(4)), (0, 4));
        }
    }
}
