//! What the clients saw, recorded as they see it: latency histograms (a shard per thread, so
//! the runtime's threads do not fight over one lock and each keeps its own histograms in its
//! cache) and each client's exact ledger of deliveries,
//! duplicates, reordering and gaps. Every mode's client writes here; the driver reads it.

mod ledger;

pub use ledger::{Arrivals, ClientCounts, Ledger, Seen, SeqTracker};

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::clock;
use crate::event::WireEvent;
use crate::results::histogram::{new_coarse_histogram, new_histogram, HIST_MAX_US};

/// The two latencies of every measured delivery, and the same split by time.
#[derive(Debug, Clone)]
pub struct Latencies {
    /// Receive time − scheduled time: what a client experiences.
    pub scheduled: Histogram<u64>,
    /// Receive time − actual emission time: the delivery path alone, without generator lag.
    pub emitted: Histogram<u64>,
    /// Latency of the late deliveries: `[0]` over the whole run, `[1 + f]` for events
    /// scheduled in fault `f`'s window.
    pub late: Vec<Histogram<u64>>,
    /// Latency by the whole second (since the generator started) the event was scheduled in.
    pub by_second: Vec<Histogram<u64>>,
}

impl Latencies {
    fn new() -> Self {
        Latencies {
            scheduled: new_histogram(),
            emitted: new_histogram(),
            late: Vec::new(),
            by_second: Vec::new(),
        }
    }

    fn add(&mut self, other: &Latencies) {
        self.scheduled.add(&other.scheduled).expect("same bounds");
        self.emitted.add(&other.emitted).expect("same bounds");
        add_all(&mut self.late, &other.late);
        add_all(&mut self.by_second, &other.by_second);
    }
}

fn add_all(into: &mut Vec<Histogram<u64>>, from: &[Histogram<u64>]) {
    for (i, h) in from.iter().enumerate() {
        grow(into, i).add(h).expect("same bounds");
    }
}

fn grow(v: &mut Vec<Histogram<u64>>, i: usize) -> &mut Histogram<u64> {
    while v.len() <= i {
        v.push(new_coarse_histogram());
    }
    &mut v[i]
}

/// The run's clock, known once the generator starts: where fault windows lie and when a
/// delivery counts as late. Times are on the server's clock.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// When the generator started.
    pub start_ns: u64,
    /// The measured window, `[from, to)`: the warm-up's end to the schedule's.
    pub measured_ns: (u64, u64),
    /// A delivery whose latency exceeds this is late.
    pub late_after_ns: u64,
    /// Each fault's window, `[from, to)`.
    pub windows: Vec<(u64, u64)>,
}

impl Timeline {
    /// The fault windows an event scheduled at `scheduled_ns` falls in.
    pub fn windows_of(&self, scheduled_ns: u64) -> impl Iterator<Item = usize> + '_ {
        self.windows
            .iter()
            .enumerate()
            .filter(move |(_, (from, to))| scheduled_ns >= *from && scheduled_ns < *to)
            .map(|(i, _)| i)
    }
}

const SHARDS: usize = 16;

/// This thread's shard: threads take the next in turn when they first record. With a shard
/// per client instead, a thousand clients' deliveries in turn touched all sixteen shards'
/// histograms (a few MB), each record a cache miss.
fn thread_shard() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static SHARD: usize = (NEXT.fetch_add(1, Relaxed) % SHARDS as u64) as usize;
    }
    SHARD.with(|s| *s)
}

/// Shared by every client of one mode.
#[derive(Debug)]
pub struct Recorder {
    shards: Vec<Mutex<Latencies>>,
    delivered: AtomicU64,
    /// First deliveries of warm-up events that arrived inside the measured window.
    warmup_in_window: AtomicU64,
    /// Server clock − driver clock, ns: added to the driver's readings so they compare with
    /// the server's stamps (0 when both share a host's monotonic clock).
    offset_ns: i64,
    timeline: OnceLock<Timeline>,
    /// How late pollers sent their polls against their slots, ns.
    sends: Mutex<Histogram<u64>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::with_clock_offset(0)
    }
}

impl Recorder {
    /// A recorder whose clients read the server's clock as the driver's plus `offset_ns`.
    pub fn with_clock_offset(offset_ns: i64) -> Self {
        Recorder {
            shards: (0..SHARDS).map(|_| Mutex::new(Latencies::new())).collect(),
            delivered: AtomicU64::new(0),
            warmup_in_window: AtomicU64::new(0),
            offset_ns,
            timeline: OnceLock::new(),
            sends: Mutex::new(crate::clock::lateness_histogram()),
        }
    }

    /// Sets the run's timeline when the generator starts; later calls are ignored.
    pub fn start(&self, timeline: Timeline) {
        let _ = self.timeline.set(timeline);
    }

    /// The timeline, once the generator has started.
    pub fn timeline(&self) -> Option<&Timeline> {
        self.timeline.get()
    }

    /// Time since the generator started, on the server's clock; None before it starts.
    pub fn since_start(&self) -> Option<Duration> {
        let start = self.timeline.get()?.start_ns;
        Some(Duration::from_nanos(self.now_ns().saturating_sub(start)))
    }

    /// Now, on the server's clock.
    pub fn now_ns(&self) -> u64 {
        (clock::now_ns() as i64).saturating_add(self.offset_ns).max(0) as u64
    }

    /// Measured first deliveries so far, across all clients.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Relaxed)
    }

    /// First deliveries that arrived inside the measured window so far: the measured events'
    /// (none arrives before it) and the warm-up's that arrived in it. The window's costs are
    /// spent on these.
    pub fn delivered_in_window(&self) -> u64 {
        self.delivered() + self.warmup_in_window.load(Relaxed)
    }

    /// Notes a first delivery of a warm-up event, received at `now_ns`.
    pub(crate) fn warmup_delivered(&self, now_ns: u64) {
        if let Some(t) = self.timeline.get() {
            if now_ns >= t.measured_ns.0 && now_ns < t.measured_ns.1 {
                self.warmup_in_window.fetch_add(1, Relaxed);
            }
        }
    }

    /// Records a measured first delivery received at `now_ns`; says whether it was late.
    fn record(&self, ev: &WireEvent, now_ns: u64) -> bool {
        let us = |from: u64| (now_ns.saturating_sub(from) / 1_000).clamp(1, HIST_MAX_US);
        let scheduled_us = us(ev.scheduled_ns);
        let timeline = self.timeline.get();
        let mut l = self.shards[thread_shard()].lock().expect("recorder lock");
        l.scheduled.saturating_record(scheduled_us);
        l.emitted.saturating_record(us(ev.emitted_ns));
        let late = timeline.is_some_and(|t| now_ns.saturating_sub(ev.scheduled_ns) > t.late_after_ns);
        if let Some(t) = timeline {
            let second = (ev.scheduled_ns.saturating_sub(t.start_ns) / 1_000_000_000) as usize;
            grow(&mut l.by_second, second).saturating_record(scheduled_us);
            if late {
                grow(&mut l.late, 0).saturating_record(scheduled_us);
                for w in t.windows_of(ev.scheduled_ns) {
                    grow(&mut l.late, 1 + w).saturating_record(scheduled_us);
                }
            }
        }
        drop(l);
        self.delivered.fetch_add(1, Relaxed);
        late
    }

    /// Notes that a poll left `late_ns` after its slot.
    pub fn poll_sent(&self, late_ns: u64) {
        self.sends.lock().expect("sends lock").saturating_record(late_ns);
    }

    /// How late the polls left against their slots.
    pub fn poll_sends(&self) -> crate::clock::Lateness {
        crate::clock::Lateness::of(&self.sends.lock().expect("sends lock"))
    }

    /// All shards added together.
    pub fn merged(&self) -> Latencies {
        let mut out = Latencies::new();
        for s in &self.shards {
            out.add(&s.lock().expect("recorder lock"));
        }
        out
    }
}
