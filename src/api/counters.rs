//! The server's counters, each named once. [`counters!`] declares a set of them as a struct
//! generic over its cell: `AtomicU64` on the live server, `u64` in a snapshot, so that
//! resetting, reading, subtracting and adding them never lists the fields again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::procstat::ProcStat;

/// What a field counts, which decides how it resets and subtracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Grows from zero at each reset; a window's value is the difference of its ends.
    Counter,
    /// A level now (open connections, queued deliveries): never reset, never subtracted.
    Gauge,
    /// The most a gauge reached since the last reset: restarts from the gauge's level.
    Peak,
}

/// Declares a struct of counters generic over its cell, with `map` and `zip` that visit every
/// field with its [`Kind`].
macro_rules! counters {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident: $kind:ident, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name<T = u64> {
            $( $(#[$fmeta])* pub $field: T, )*
        }

        impl<T> $name<T> {
            /// Every field through `f`.
            pub fn map<U>(&self, mut f: impl FnMut(Kind, &T) -> U) -> $name<U> {
                $name { $( $field: f(Kind::$kind, &self.$field), )* }
            }

            /// Every field of `self` and `other` through `f`.
            pub fn zip<U>(&self, other: &Self, mut f: impl FnMut(Kind, &T, &T) -> U) -> $name<U> {
                $name { $( $field: f(Kind::$kind, &self.$field, &other.$field), )* }
            }
        }
    };
}

counters! {
    /// The server's own counters (besides requests by route and the webhook dispatcher's).
    pub struct ServerCounters {
        /// Responses with no event in them (empty polls, 304s, long polls that timed out).
        empty_responses: Counter,
        /// Bytes read from client sockets.
        bytes_read: Counter,
        /// Bytes written to client sockets.
        bytes_written: Counter,
        /// Client connections open now.
        open_connections: Gauge,
        /// Most client connections open at once since the last reset.
        peak_connections: Peak,
        /// Client connections opened since the last reset.
        #[serde(default)]
        connections_opened: Counter,
        /// Client connections answered 503 and closed because the server held its most
        /// (`max_connections`) since the last reset.
        #[serde(default)]
        connections_refused: Counter,
        /// Long-poll requests being held now.
        held_long_polls: Gauge,
        /// SSE and WebSocket subscribers attached now.
        stream_subscribers: Gauge,
        /// Stream connections closed because the client fell behind its send queue.
        slow_disconnects: Counter,
        /// Events dropped from a full send queue under the `drop_oldest` policy.
        dropped_oldest: Counter,
        /// Stream connections closed by a `stream_cut` fault.
        #[serde(default)]
        stream_cuts: Counter,
        /// Events written to streams (SSE or WebSocket frames).
        stream_events_sent: Counter,
        /// Heartbeats written to streams left quiet for their interval (an SSE comment, a
        /// WebSocket ping).
        #[serde(default)]
        heartbeats: Counter,
        /// CPU ns the generator spent spinning toward its deadlines: the instrument's, not the
        /// application's, so it is kept out of the server's cost.
        #[serde(default)]
        generator_spin_ns: Counter,
        /// CPU ns the TCP census spent reading the kernel's counters of the server's
        /// connections at the window's boundaries (a few milliseconds a read, and more with
        /// more sockets on the machine): the instrument's too, kept out of the server's cost.
        #[serde(default)]
        census_ns: Counter,
    }
}

counters! {
    /// The webhook dispatcher's counters.
    pub struct WebhookCounters {
        /// Delivery attempts made (first tries and retries).
        attempts: Counter,
        /// Attempts answered with 2xx.
        successes: Counter,
        /// Attempts that failed (non-2xx, timeout, connection error).
        failures: Counter,
        /// Of the failures, those that timed out.
        timeouts: Counter,
        /// Attempts after the first for a message.
        retries: Counter,
        /// Attempts under way now.
        in_flight: Gauge,
        /// Deliveries waiting for a free worker now.
        queued: Gauge,
        /// Deliveries waiting for their next retry now.
        #[serde(default)]
        waiting: Gauge,
        /// Messages that exhausted their retries.
        dead_letters: Counter,
        /// Endpoints disabled (410 Gone, or failing continuously past `disable_after`).
        #[serde(default)]
        disabled_endpoints: Counter,
        /// Retries put off further because the receiver's `Retry-After` asked for it.
        #[serde(default)]
        retry_after_obeyed: Counter,
        /// Dead letters sent again through the replay API.
        #[serde(default)]
        replayed: Counter,
        /// ns the event generator was held back because the backlog was full.
        #[serde(default)]
        intake_held_ns: Counter,
    }
}

/// A snapshot of the webhook dispatcher's counters, as the results keep it.
pub type WebhookSnapshot = WebhookCounters<u64>;

/// `(self − earlier)` for counters, `self` for gauges and peaks: a window's growth.
fn grown(kind: Kind, now: &u64, earlier: &u64) -> u64 {
    match kind {
        Kind::Counter => now.saturating_sub(*earlier),
        Kind::Gauge | Kind::Peak => *now,
    }
}

impl ServerCounters {
    /// The growth of the counters from `earlier` to `self`; gauges and peaks as they are now.
    pub fn since(&self, earlier: &Self) -> Self {
        self.zip(earlier, grown)
    }
}

impl WebhookCounters {
    /// The growth of the counters from `earlier` to `self`; gauges as they are now.
    pub fn since(&self, earlier: &Self) -> Self {
        self.zip(earlier, grown)
    }

    /// Both sets added field by field (gauges too: two runs' levels side by side).
    pub fn add(&self, other: &Self) -> Self {
        self.zip(other, |_, a, b| a + b)
    }
}

/// The server's counters and the process's resource use: the `/stats` body, and what the
/// generator reads at each boundary of the measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// CLOCK_MONOTONIC ns when taken.
    pub at_ns: u64,
    /// Requests by route, then by status.
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    /// All requests.
    pub requests_total: u64,
    /// The server's counters.
    #[serde(flatten)]
    pub counters: ServerCounters,
    /// Webhook figures.
    pub webhook: WebhookSnapshot,
    /// The server process's CPU and memory.
    pub process: ProcStat,
}

impl StatsSnapshot {
    /// The server process's CPU seconds without the instrument's own (the generator's timing
    /// spin, the TCP census's reads): what the application itself used.
    pub fn server_cpu_seconds(&self) -> f64 {
        self.process.cpu_seconds - (self.counters.generator_spin_ns + self.counters.census_ns) as f64 / 1e9
    }

    /// The counters' growth from `earlier` to `self`; gauges, peaks and the process figures
    /// keep `self`'s values except CPU seconds and context switches, which become those in between.
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        let mut requests = self.requests.clone();
        for (route, by_status) in &mut requests {
            for (status, n) in by_status.iter_mut() {
                *n -= earlier
                    .requests
                    .get(route)
                    .and_then(|m| m.get(status))
                    .copied()
                    .unwrap_or(0)
                    .min(*n);
            }
            by_status.retain(|_, n| *n > 0);
        }
        requests.retain(|_, m| !m.is_empty());
        StatsSnapshot {
            at_ns: self.at_ns,
            requests_total: requests.values().flat_map(|m| m.values()).sum(),
            requests,
            counters: self.counters.since(&earlier.counters),
            webhook: self.webhook.since(&earlier.webhook),
            process: ProcStat {
                cpu_seconds: self.process.cpu_seconds - earlier.process.cpu_seconds,
                voluntary_switches: self
                    .process
                    .voluntary_switches
                    .saturating_sub(earlier.process.voluntary_switches),
                involuntary_switches: self
                    .process
                    .involuntary_switches
                    .saturating_sub(earlier.process.involuntary_switches),
                ..self.process
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_subtracts_counters_and_keeps_gauges_and_peaks() {
        let earlier = ServerCounters {
            empty_responses: 10,
            open_connections: 7,
            peak_connections: 9,
            ..ServerCounters::default()
        };
        let now = ServerCounters {
            empty_responses: 25,
            open_connections: 3,
            peak_connections: 8,
            ..ServerCounters::default()
        };
        let w = now.since(&earlier);
        assert_eq!(
            (w.empty_responses, w.open_connections, w.peak_connections),
            (15, 3, 8)
        );
    }

    #[test]
    fn the_servers_cpu_leaves_out_the_instruments() {
        // 1.5 s of the process, of which the generator spun 0.2 s and the TCP census read
        // for 0.3 s: the server's own is 1 s.
        let s = StatsSnapshot {
            counters: ServerCounters {
                generator_spin_ns: 200_000_000,
                census_ns: 300_000_000,
                ..ServerCounters::default()
            },
            process: ProcStat {
                cpu_seconds: 1.5,
                ..ProcStat::default()
            },
            ..StatsSnapshot::default()
        };
        assert!(
            (s.server_cpu_seconds() - 1.0).abs() < 1e-12,
            "{}",
            s.server_cpu_seconds()
        );
    }

    #[test]
    fn snapshots_keep_their_json_shape() {
        let s = StatsSnapshot {
            counters: ServerCounters {
                bytes_read: 5,
                ..ServerCounters::default()
            },
            ..StatsSnapshot::default()
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["bytes_read"], 5, "{json}");
        let back: StatsSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
