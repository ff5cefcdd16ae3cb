//! The server's own counters, exposed as JSON on `/stats`: requests by route and status,
//! responses that carried no event, bytes counted on the sockets, connections, held long polls,
//! stream and webhook figures, and the process's CPU and memory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use super::tcpinfo::{ConnId, Registry};
use crate::api::{Kind, ServerCounters, StatsSnapshot, WebhookCounters};
use crate::procstat;

/// Live counters; every field is cheap to bump from any task.
#[derive(Debug, Default)]
pub struct Stats {
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    /// The server's counters.
    pub counters: ServerCounters<AtomicU64>,
    /// Webhook dispatcher figures.
    pub webhook: WebhookCounters<AtomicU64>,
    /// Which connections are open now, for reading their TCP counters.
    pub connections: Registry,
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
        let c = &self.counters;
        c.connections_opened.fetch_add(1, Relaxed);
        let now = c.open_connections.fetch_add(1, Relaxed) + 1;
        c.peak_connections.fetch_max(now, Relaxed);
    }

    /// A connection closed.
    pub fn connection_closed(&self, id: Option<&ConnId>) {
        if let Some(id) = id {
            self.connections.closed(id);
        }
        self.counters.open_connections.fetch_sub(1, Relaxed);
    }

    /// Zeroes the counters between modes; gauges (open connections, held requests) keep their
    /// value, and the peak restarts from the connections open now.
    pub fn reset(&self) {
        self.requests.lock().expect("stats lock").clear();
        let open = self.counters.open_connections.load(Relaxed);
        self.counters.map(|kind, c| match kind {
            Kind::Counter => c.store(0, Relaxed),
            Kind::Peak => c.store(open, Relaxed),
            Kind::Gauge => {}
        });
        self.webhook.map(|kind, c| {
            if kind == Kind::Counter {
                c.store(0, Relaxed);
            }
        });
    }

    /// Reads every counter and the process's resource use.
    pub fn snapshot(&self) -> StatsSnapshot {
        let requests = self.requests.lock().expect("stats lock").clone();
        let load = |_, c: &AtomicU64| c.load(Relaxed);
        StatsSnapshot {
            at_ns: crate::clock::now_ns(),
            requests_total: requests.values().flat_map(|m| m.values()).sum(),
            requests,
            counters: self.counters.map(load),
            webhook: self.webhook.map(load),
            process: procstat::read(),
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
