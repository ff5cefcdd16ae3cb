//! The server's own counters, exposed as JSON on `/stats`: requests by route and status,
//! responses that carried no event, bytes counted on the sockets, connections, held long polls,
//! stream and webhook figures, and the process's CPU and memory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub use crate::api::WebhookSnapshot;

use super::tcpinfo::{ConnId, Registry};
use crate::procstat::{self, ProcStat};

/// Live counters; every field is cheap to bump from any task.
#[derive(Debug, Default)]
pub struct Stats {
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    /// Responses with no event in them (empty polls, 304s, long polls that timed out).
    pub empty_responses: AtomicU64,
    /// Bytes read from client sockets.
    pub bytes_read: AtomicU64,
    /// Bytes written to client sockets.
    pub bytes_written: AtomicU64,
    /// Client connections open now.
    pub open_connections: AtomicU64,
    /// Most client connections open at once since the last reset.
    pub peak_connections: AtomicU64,
    /// Client connections opened since the last reset.
    pub connections_opened: AtomicU64,
    /// Which connections are open now, for reading their TCP counters.
    pub connections: Registry,
    /// Long-poll requests being held now.
    pub held_long_polls: AtomicU64,
    /// SSE and WebSocket subscribers attached now.
    pub stream_subscribers: AtomicU64,
    /// Stream connections closed because the client fell behind its send queue.
    pub slow_disconnects: AtomicU64,
    /// Events dropped from a full send queue under the `drop_oldest` policy.
    pub dropped_oldest: AtomicU64,
    /// Stream connections closed by a `stream_cut` fault.
    pub stream_cuts: AtomicU64,
    /// Events written to streams (SSE or WebSocket frames).
    pub stream_events_sent: AtomicU64,
    /// CPU ns the generator spent spinning toward its deadlines: the instrument's, not the
    /// application's, so it is kept out of the server's cost.
    pub generator_spin_ns: AtomicU64,
    /// Webhook dispatcher figures.
    pub webhook: WebhookCounters,
}

/// The webhook dispatcher's counters.
#[derive(Debug, Default)]
pub struct WebhookCounters {
    /// Delivery attempts made (first tries and retries).
    pub attempts: AtomicU64,
    /// Attempts answered with 2xx.
    pub successes: AtomicU64,
    /// Attempts that failed (non-2xx, timeout, connection error).
    pub failures: AtomicU64,
    /// Of the failures, those that timed out.
    pub timeouts: AtomicU64,
    /// Attempts after the first for a message.
    pub retries: AtomicU64,
    /// Attempts under way now.
    pub in_flight: AtomicU64,
    /// Deliveries waiting for a free worker now.
    pub queued: AtomicU64,
    /// Deliveries waiting for their next retry now.
    pub waiting: AtomicU64,
    /// Messages that exhausted their retries.
    pub dead_letters: AtomicU64,
    /// Endpoints disabled (410 Gone, or failing continuously past `disable_after`).
    pub disabled_endpoints: AtomicU64,
    /// Retries put off further because the receiver's `Retry-After` asked for it.
    pub retry_after_obeyed: AtomicU64,
    /// Dead letters sent again through the replay API.
    pub replayed: AtomicU64,
}

/// A snapshot of [`Stats`] plus the process's resource use: the `/stats` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// CLOCK_MONOTONIC ns when taken.
    pub at_ns: u64,
    /// Requests by route, then by status.
    pub requests: BTreeMap<String, BTreeMap<u16, u64>>,
    /// All requests.
    pub requests_total: u64,
    /// See [`Stats::empty_responses`].
    pub empty_responses: u64,
    /// See [`Stats::bytes_read`].
    pub bytes_read: u64,
    /// See [`Stats::bytes_written`].
    pub bytes_written: u64,
    /// See [`Stats::open_connections`].
    pub open_connections: u64,
    /// See [`Stats::peak_connections`].
    pub peak_connections: u64,
    /// See [`Stats::connections_opened`].
    #[serde(default)]
    pub connections_opened: u64,
    /// See [`Stats::held_long_polls`].
    pub held_long_polls: u64,
    /// See [`Stats::stream_subscribers`].
    pub stream_subscribers: u64,
    /// See [`Stats::slow_disconnects`].
    pub slow_disconnects: u64,
    /// See [`Stats::dropped_oldest`].
    pub dropped_oldest: u64,
    /// See [`Stats::stream_cuts`].
    #[serde(default)]
    pub stream_cuts: u64,
    /// See [`Stats::stream_events_sent`].
    pub stream_events_sent: u64,
    /// See [`Stats::generator_spin_ns`].
    #[serde(default)]
    pub generator_spin_ns: u64,
    /// Webhook figures.
    pub webhook: WebhookSnapshot,
    /// The server process's CPU and memory.
    pub process: ProcStat,
}

impl Stats {
    /// Counts one finished request.
    pub fn count_request(&self, route: &str, status: u16) {
        let mut map = self.requests.lock().expect("stats lock");
        match map.get_mut(route) {
            Some(by_status) => *by_status.entry(status).or_default() += 1,
            None => {
                map.entry(route.to_string()).or_default().insert(status, 1);
            }
        }
    }

    /// A connection opened.
    pub fn connection_opened(&self, id: Option<ConnId>) {
        if let Some(id) = id {
            self.connections.opened(id);
        }
        self.connections_opened.fetch_add(1, Relaxed);
        let now = self.open_connections.fetch_add(1, Relaxed) + 1;
        self.peak_connections.fetch_max(now, Relaxed);
    }

    /// A connection closed.
    pub fn connection_closed(&self, id: Option<&ConnId>) {
        if let Some(id) = id {
            self.connections.closed(id);
        }
        self.open_connections.fetch_sub(1, Relaxed);
    }

    /// Zeroes the counters between modes; gauges (open connections, held requests) keep their
    /// value, and the peak restarts from the connections open now.
    pub fn reset(&self) {
        self.requests.lock().expect("stats lock").clear();
        for c in [
            &self.empty_responses,
            &self.bytes_read,
            &self.bytes_written,
            &self.connections_opened,
            &self.slow_disconnects,
            &self.dropped_oldest,
            &self.stream_cuts,
            &self.stream_events_sent,
            &self.generator_spin_ns,
            &self.webhook.attempts,
            &self.webhook.successes,
            &self.webhook.failures,
            &self.webhook.timeouts,
            &self.webhook.retries,
            &self.webhook.dead_letters,
            &self.webhook.disabled_endpoints,
            &self.webhook.retry_after_obeyed,
            &self.webhook.replayed,
        ] {
            c.store(0, Relaxed);
        }
        self.peak_connections
            .store(self.open_connections.load(Relaxed), Relaxed);
    }

    /// Reads every counter and the process's resource use.
    pub fn snapshot(&self) -> StatsSnapshot {
        let requests = self.requests.lock().expect("stats lock").clone();
        let w = &self.webhook;
        StatsSnapshot {
            at_ns: crate::clock::now_ns(),
            requests_total: requests.values().flat_map(|m| m.values()).sum(),
            requests,
            empty_responses: self.empty_responses.load(Relaxed),
            bytes_read: self.bytes_read.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            open_connections: self.open_connections.load(Relaxed),
            peak_connections: self.peak_connections.load(Relaxed),
            connections_opened: self.connections_opened.load(Relaxed),
            held_long_polls: self.held_long_polls.load(Relaxed),
            stream_subscribers: self.stream_subscribers.load(Relaxed),
            slow_disconnects: self.slow_disconnects.load(Relaxed),
            dropped_oldest: self.dropped_oldest.load(Relaxed),
            stream_cuts: self.stream_cuts.load(Relaxed),
            stream_events_sent: self.stream_events_sent.load(Relaxed),
            generator_spin_ns: self.generator_spin_ns.load(Relaxed),
            webhook: WebhookSnapshot {
                attempts: w.attempts.load(Relaxed),
                successes: w.successes.load(Relaxed),
                failures: w.failures.load(Relaxed),
                timeouts: w.timeouts.load(Relaxed),
                retries: w.retries.load(Relaxed),
                in_flight: w.in_flight.load(Relaxed),
                queued: w.queued.load(Relaxed),
                waiting: w.waiting.load(Relaxed),
                dead_letters: w.dead_letters.load(Relaxed),
                disabled_endpoints: w.disabled_endpoints.load(Relaxed),
                retry_after_obeyed: w.retry_after_obeyed.load(Relaxed),
                replayed: w.replayed.load(Relaxed),
            },
            process: procstat::read(),
        }
    }
}

impl StatsSnapshot {
    /// The server process's CPU seconds without the generator's timing spin: what the
    /// application itself used.
    pub fn server_cpu_seconds(&self) -> f64 {
        self.process.cpu_seconds - self.generator_spin_ns as f64 / 1e9
    }

    /// The counters' growth from `earlier` to `self`; gauges, peaks and the process figures
    /// keep `self`'s values except CPU seconds, which become the CPU used in between.
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
        let (w, e) = (&self.webhook, &earlier.webhook);
        StatsSnapshot {
            at_ns: self.at_ns,
            requests_total: requests.values().flat_map(|m| m.values()).sum(),
            requests,
            empty_responses: self.empty_responses.saturating_sub(earlier.empty_responses),
            bytes_read: self.bytes_read.saturating_sub(earlier.bytes_read),
            bytes_written: self.bytes_written.saturating_sub(earlier.bytes_written),
            slow_disconnects: self.slow_disconnects.saturating_sub(earlier.slow_disconnects),
            dropped_oldest: self.dropped_oldest.saturating_sub(earlier.dropped_oldest),
            stream_cuts: self.stream_cuts.saturating_sub(earlier.stream_cuts),
            connections_opened: self.connections_opened.saturating_sub(earlier.connections_opened),
            stream_events_sent: self.stream_events_sent.saturating_sub(earlier.stream_events_sent),
            generator_spin_ns: self.generator_spin_ns.saturating_sub(earlier.generator_spin_ns),
            webhook: WebhookSnapshot {
                attempts: w.attempts.saturating_sub(e.attempts),
                successes: w.successes.saturating_sub(e.successes),
                failures: w.failures.saturating_sub(e.failures),
                timeouts: w.timeouts.saturating_sub(e.timeouts),
                retries: w.retries.saturating_sub(e.retries),
                dead_letters: w.dead_letters.saturating_sub(e.dead_letters),
                disabled_endpoints: w.disabled_endpoints.saturating_sub(e.disabled_endpoints),
                retry_after_obeyed: w.retry_after_obeyed.saturating_sub(e.retry_after_obeyed),
                replayed: w.replayed.saturating_sub(e.replayed),
                in_flight: w.in_flight,
                queued: w.queued,
                waiting: w.waiting,
            },
            process: ProcStat {
                cpu_seconds: self.process.cpu_seconds - earlier.process.cpu_seconds,
                ..self.process
            },
            ..self.clone()
        }
    }
}

/// Increments a gauge now and decrements it when dropped (a held request, an open stream).
pub struct GaugeGuard<'a>(&'a AtomicU64);

impl<'a> GaugeGuard<'a> {
    /// Increments `gauge` until the guard is dropped.
    pub fn new(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Relaxed);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}
