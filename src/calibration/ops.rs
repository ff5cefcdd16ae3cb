//! The server's operations that have a CPU cost of their own, and how many of each a run
//! carried out: what a calibration prices and the simulator counts.

use serde::{Deserialize, Serialize};

use crate::event::Mode;
use crate::results::ModeResult;

/// An operation of the server with a CPU cost of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A second of the process running (timers, the runtime, the sampling of its counters).
    Second,
    /// A client held for a second: its connection (or, for webhooks, its subscription)
    /// kept open, its timers. (Not the read of its TCP counters at the window's start: that
    /// is the instrument's, kept out of the server's CPU; runs measured before it was carry
    /// it, and over their 4 s windows it made most of this cost.)
    ClientSecond,
    /// An event published: made, logged and handed to its followers.
    Event,
    /// A client connection accepted (or a receiver connection opened by the dispatcher).
    Connection,
    /// A poll answered with an empty page.
    EmptyPoll,
    /// A conditional poll answered 304 Not Modified.
    NotModified,
    /// A poll answered with a page of events (the page's own cost).
    Page,
    /// An event in a poll's page or a long poll's answer.
    PagedEvent,
    /// A long poll held and answered (with events or at its timeout).
    LongPoll,
    /// Of the long polls, one that timed out: its timer fired and it was answered empty.
    LongPollTimeout,
    /// An event written to an SSE stream.
    SseEvent,
    /// An event written to a WebSocket.
    WebsocketEvent,
    /// A webhook delivery attempt, signed, sent and answered.
    WebhookAttempt,
    /// A wake-up for the server's own work: a job an event or a timer started (stream
    /// writes, webhook attempts, long-poll answers) that found its core idle, so that the
    /// server woke for it (the publisher woke a parked worker) instead of finding it while
    /// busy. Not read off a measurement: the model counts them, and the fit prices them on its
    /// counts for the calibration runs. This is what makes an operation cost more at low load,
    /// where each one wakes the server, than at high, where they come in batches.
    Wake,
    /// A wake-up for a request: one that found its core idle (the sockets' poll returned to a
    /// parked worker). Priced apart from [`Op::Wake`], since a request wakes the server by
    /// another path than an event does. The simulator charges it, too, for a quiet stream's
    /// heartbeat that finds its core idle: a timer firing in the same poll.
    RequestWake,
    /// Of the webhook attempts, one that retries a failed one (besides [`Op::WebhookAttempt`]):
    /// the failure read and handled, the retry put off on the retry queue's timer and taken
    /// up when due. Fitted from the calibration's runs whose receivers fail
    /// ([`FAILURES_SCENARIO`](super::FAILURES_SCENARIO)); none in files fitted before them.
    WebhookRetry,
    /// A wake-up for a reply from afar: a long poll's next request or a webhook receiver's
    /// answer that comes back later than the idle threshold after its write, to a server with
    /// a core idle then (the worker that wrote parked meanwhile and is woken for it). Counted
    /// by the model, as [`Op::Wake`] is; priced from the calibration's runs over a round trip
    /// ([`ROUND_TRIP_SCENARIO`](super::ROUND_TRIP_SCENARIO)), where each of a fan-out's
    /// replies comes back alone; none in files fitted before them.
    ReplyWake,
    /// A request answered or a delivery pushed (an event written to a stream or in a long
    /// poll's answer, a webhook attempt) while the server holds many clients, beyond its own
    /// cost: each touches its connection's state, the less of which the caches hold the more
    /// clients are held (the likelier cause; the fit sees only that the cost grows with the
    /// clients). Counted as each of them times the [`crowding`] of the clients held, so that its
    /// cost grows with them up to [`Calibration::crowded_at`](super::Calibration::crowded_at)
    /// clients and stays the same past it; none where the fit found no such cost
    /// (`crowded_at` 0, as in files written before it was fitted).
    Crowded,
}

impl Op {
    /// Every operation, in the order of a row of counts.
    pub const ALL: [Op; 18] = [
        Op::Second,
        Op::ClientSecond,
        Op::Event,
        Op::Connection,
        Op::EmptyPoll,
        Op::NotModified,
        Op::Page,
        Op::PagedEvent,
        Op::LongPoll,
        Op::LongPollTimeout,
        Op::SseEvent,
        Op::WebsocketEvent,
        Op::WebhookAttempt,
        Op::Wake,
        Op::RequestWake,
        Op::WebhookRetry,
        Op::ReplyWake,
        Op::Crowded,
    ];

    /// The operation in words, for tables.
    pub fn says(self) -> &'static str {
        match self {
            Op::Second => "second of the process running",
            Op::ClientSecond => "client held for a second",
            Op::Event => "event published",
            Op::Connection => "connection opened",
            Op::EmptyPoll => "empty poll",
            Op::NotModified => "304 Not Modified",
            Op::Page => "page of events",
            Op::PagedEvent => "event in a page or long-poll answer",
            Op::LongPoll => "long poll held and answered",
            Op::LongPollTimeout => "long poll timed out (besides the above)",
            Op::SseEvent => "event written to SSE",
            Op::WebsocketEvent => "event written to WebSocket",
            Op::WebhookAttempt => "signed webhook attempt",
            Op::Wake => "wake-up for an event's work",
            Op::RequestWake => "wake-up for a request",
            Op::WebhookRetry => "webhook retry (besides the attempt)",
            Op::ReplyWake => "wake-up for a reply from afar",
            Op::Crowded => "request or push among many clients held",
        }
    }
}

/// The share of [`Op::Crowded`]'s cost each request or push pays where the server holds `clients`:
/// their share of `crowded_at`, and all of it past that; none where `crowded_at` is 0.
pub fn crowding(clients: f64, crowded_at: u32) -> f64 {
    if crowded_at == 0 {
        return 0.0;
    }
    (clients / f64::from(crowded_at)).min(1.0)
}

/// The share of a wake-up ([`Op::Wake`], [`Op::RequestWake`]) a job pays that finds its core
/// idle for `idle_ns`: the chance that the core fell asleep meanwhile, a core idle falling
/// asleep at a moment that comes `falls_asleep_ns` after it went idle on average, any moment
/// as likely as the next (an exponential time): 1 − e^(−idle / falls_asleep). None without an
/// idle, a whole one at a mean of 0 (every idle core asleep).
pub fn asleep(idle_ns: u64, falls_asleep_ns: u64) -> f64 {
    match (idle_ns, falls_asleep_ns) {
        (0, _) => 0.0,
        (_, 0) => 1.0,
        (idle, mean) => -(-(idle as f64) / mean as f64).exp_m1(),
    }
}

/// How many of each operation a run carried out, in the order of [`Op::ALL`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts(pub [f64; Op::ALL.len()]);

impl Counts {
    /// The count of `op`.
    pub fn get(&self, op: Op) -> f64 {
        self.0[op as usize]
    }

    /// Sets the count of `op`.
    pub fn set(&mut self, op: Op, n: f64) {
        self.0[op as usize] = n;
    }

    /// The operations of a measured mode of `clients` clients over its measured window: the
    /// server's requests by route and status, its deliveries, the connections TCP saw opened,
    /// the window's length; its requests and pushes at their [`crowding`] for `crowded_at`.
    pub fn measured(m: &ModeResult, clients: f64, crowded_at: u32) -> Counts {
        let mut c = Counts::default();
        let s = &m.server;
        let status = |code: u16| -> u64 { s.requests_by_route.values().filter_map(|by| by.get(&code)).sum() };
        c.set(Op::Second, m.measured_seconds);
        c.set(Op::ClientSecond, clients * m.measured_seconds);
        c.set(Op::Event, m.deliveries.events_measured as f64);
        if let crate::api::TcpReading::Measured(t) = &s.tcp {
            c.set(Op::Connection, t.opened as f64);
        }
        let delivered = m.deliveries.delivered as f64;
        match m.mode {
            Mode::Poll | Mode::ConditionalPoll => {
                let not_modified = status(304);
                let empty = s.empty_responses.saturating_sub(not_modified);
                c.set(Op::NotModified, not_modified as f64);
                c.set(Op::EmptyPoll, empty as f64);
                c.set(Op::Page, status(200).saturating_sub(empty) as f64);
                c.set(Op::PagedEvent, delivered);
            }
            Mode::LongPoll => {
                c.set(Op::LongPoll, s.requests as f64);
                c.set(Op::LongPollTimeout, s.empty_responses as f64);
                c.set(Op::PagedEvent, delivered);
            }
            Mode::Sse => c.set(Op::SseEvent, delivered),
            Mode::Websocket => c.set(Op::WebsocketEvent, delivered),
            Mode::Webhook => {
                c.set(Op::WebhookAttempt, s.requests as f64);
                // The sender counts its retries to the drain's end; the window's are its
                // share of the window's attempts.
                let w = &s.webhook;
                let retried = w.retries as f64 / (w.attempts as f64).max(1.0);
                c.set(Op::WebhookRetry, (s.requests as f64 * retried).round());
            }
        }
        let touched = match m.mode {
            Mode::Poll | Mode::ConditionalPoll => {
                c.get(Op::EmptyPoll) + c.get(Op::NotModified) + c.get(Op::Page)
            }
            Mode::LongPoll => c.get(Op::LongPoll) + delivered,
            Mode::Sse | Mode::Websocket => delivered,
            Mode::Webhook => s.requests as f64,
        };
        c.set(Op::Crowded, touched * crowding(clients, crowded_at));
        c
    }
}
