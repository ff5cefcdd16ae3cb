//! What a model run came to: every owed delivery's fate, counted as the driver counts a
//! measured run's, over the whole run and for the events scheduled in each fault's window.

use hdrhistogram::Histogram;

use super::log::Log;
use crate::results::histogram::new_histogram;
use crate::scenario::Scenario;

/// What a simulated run of one mode came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Latency of each delivered measured event, µs from its scheduled time.
    pub latency: Histogram<u64>,
    /// Events scheduled after the warm-up, within the measured window.
    pub events: u64,
    /// Deliveries owed: each measured event to each client following its topic.
    pub expected: u64,
    /// Measured events delivered (by the end of the drain), first arrivals only.
    pub delivered: u64,
    /// First arrivals inside the measured window, of any event (the warm-up's too): what a
    /// measured run's requests, bytes and CPU per delivery divide by. Pollers that ask less
    /// often than the warm-up is long owe the window's last events to the drain while the
    /// warm-up's few come in the window, so it falls short of `delivered` (a third of a
    /// 15 s poller's interval, for a 5 s warm-up).
    pub in_window: u64,
    /// The measured window, ns from the schedule's start.
    window: std::ops::Range<u64>,
    /// Requests that reached the server within the measured window.
    pub requests: u64,
    /// Of those, the ones answered with no event.
    pub empty: u64,
    /// Of the requests, webhook attempts after a message's first.
    pub retries: u64,
    /// Measured deliveries given up on and not delivered: in the dead letters (webhooks).
    pub dead_letters: u64,
    /// Arrivals of a measured event a client already had (a webhook retried after its
    /// receiver took it but answered too late).
    pub duplicates: u64,
    /// Times clients connected again (streams).
    pub reconnects: u64,
    /// Streams the server closed for a `stream_cut`.
    pub stream_cuts: u64,
    /// Streams the server closed because their client fell behind (`disconnect`).
    pub slow_disconnects: u64,
    /// Events dropped from full send queues (`drop_oldest`).
    pub dropped_oldest: u64,
    /// Requests or connections the clients saw fail (503s, refused reconnects).
    pub client_errors: u64,
    /// The most connections the server held at once: one per client (at most its
    /// `max_connections`), or the webhook sender's pools at their fullest.
    pub peak_connections: u64,
    /// Client connections the server turned away because it held its most.
    pub connections_refused: u64,
    /// Heartbeats the server sent in the measured window on streams it had written nothing
    /// to for `heartbeat` (an SSE comment, a WebSocket ping): segments on the wire, and a
    /// write and a timer's wake-up each on the server's cores, which the calibration's
    /// windows hold none of to price apart (the server counts them as `heartbeats`).
    pub heartbeats: u64,
    /// What the WebSocket streams open at the end held in their send buffers (none for the
    /// other modes).
    pub send_buffers: Option<super::send_buffers::SendBuffered>,
    /// Actions the event loop carried out (requests sent), for its speed.
    pub actions: u64,
    /// The webhook sender's counters from the end of the warm-up to the end of the drain,
    /// as the real dispatcher's are kept (zero for other modes).
    pub sender: crate::api::WebhookSnapshot,
    /// The same for the measured events scheduled in each fault's window, in the scenario's
    /// order.
    pub windows: Vec<Tally>,
    /// Second by second, when the scenario has faults to draw them against.
    pub timeline: Option<super::timeline::Timeline>,
    /// The webhook deliveries ready in the measured window that waited for a worker.
    pub worker_waits: super::waits::Waits,
}

/// The fate of the deliveries owed for the measured events scheduled in one fault window.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    /// The window, ns from the schedule's start.
    pub from: u64,
    /// Its end (excluded).
    pub to: u64,
    /// Deliveries owed for its events.
    pub expected: u64,
    /// Latency of those delivered, µs.
    pub latency: Histogram<u64>,
    /// Those given up on into the dead letters.
    pub dead_letters: u64,
    /// Arrivals of its events a client already had.
    pub duplicates: u64,
}

impl Outcome {
    /// Nothing delivered yet of what `log` owes, with a tally for each of `s`'s fault windows.
    pub(super) fn owed(s: &Scenario, log: &Log) -> Outcome {
        let windows: Vec<Tally> = s
            .faults
            .iter()
            .map(|f| {
                let (from, to) = f.window_ns(0);
                Tally {
                    from,
                    to,
                    expected: log.expected_between(from, to),
                    latency: new_histogram(),
                    dead_letters: 0,
                    duplicates: 0,
                }
            })
            .collect();
        Outcome {
            latency: new_histogram(),
            events: log.measured_events(),
            expected: log.expected(),
            delivered: 0,
            in_window: 0,
            window: {
                let warmup = s.warmup.as_nanos() as u64;
                warmup..warmup + s.duration.as_nanos() as u64
            },
            requests: 0,
            empty: 0,
            retries: 0,
            dead_letters: 0,
            duplicates: 0,
            reconnects: 0,
            stream_cuts: 0,
            slow_disconnects: 0,
            dropped_oldest: 0,
            client_errors: 0,
            peak_connections: u64::from(s.clients.count),
            connections_refused: 0,
            heartbeats: 0,
            send_buffers: None,
            actions: 0,
            sender: Default::default(),
            timeline: (!windows.is_empty()).then(Default::default),
            worker_waits: Default::default(),
            windows,
        }
    }

    /// A measured event scheduled at `at` (ns) arrived at `arrives`, the first time.
    pub fn arrived(&mut self, at: u64, arrives: u64) {
        let us = ((arrives.saturating_sub(at)) / 1000).max(1);
        self.delivered += 1;
        self.latency.saturating_record(us);
        if let Some(t) = &mut self.timeline {
            t.arrived(at, arrives, us);
        }
        for w in self.windows.iter_mut().filter(|w| (w.from..w.to).contains(&at)) {
            w.latency.saturating_record(us);
        }
    }

    /// `n` events (measured or not) arrived at `arrives` for the first time.
    pub fn landed(&mut self, arrives: u64, n: u64) {
        if self.window.contains(&arrives) {
            self.in_window += n;
        }
    }

    /// A measured event scheduled at `at` arrived again.
    pub fn duplicate(&mut self, at: u64) {
        self.duplicates += 1;
        for w in self.windows.iter_mut().filter(|w| (w.from..w.to).contains(&at)) {
            w.duplicates += 1;
        }
    }

    /// A measured event scheduled at `at` was given up on, undelivered, into the dead letters.
    pub fn dead_lettered(&mut self, at: u64) {
        self.dead_letters += 1;
        for w in self.windows.iter_mut().filter(|w| (w.from..w.to).contains(&at)) {
            w.dead_letters += 1;
        }
    }
}
