//! The event generator: an open-loop, seeded schedule of events on topics.
//!
//! Every event has a *scheduled* time fixed by the seed before the run starts; the generator
//! emits it at or after that time and stamps both. If the generator falls behind, clients see
//! the delay in their latency, which is measured from the scheduled time (as wrk2 corrects for
//! coordinated omission).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::api::Emitted;
use crate::clock::{self, Lateness};
use crate::event::TopicId;
use crate::procstat;
use crate::scenario::Schedule;

/// A moment of the schedule at which the caller takes a reading, exactly on time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// `start + warmup`: the measured events begin (marked before any of them is emitted).
    WarmupEnd,
    /// `start + warmup + duration`: the schedule is over (marked after its last event).
    End,
}

/// The last stretch before a deadline is spun rather than slept: a thread woken from
/// `clock_nanosleep` (timer slack 1 ns) is typically 30 µs and at p99 over 100 µs late, which
/// on loopback would be most of a push mode's latency.
const SPIN_NS: u64 = 100_000;
/// Spinning is capped at this share of one core, so that a high event rate (gaps shorter than
/// the spin) falls back to plain sleeps instead of burning a core the server needs.
const SPIN_BUDGET: f64 = 0.02;
/// Sleeps are cut into pieces this long, so a stop is noticed soon.
const MAX_SLEEP_NS: u64 = 20_000_000;

/// The generator thread's timer: sleep, then spin the last stretch, within a CPU budget.
struct Timer<'a> {
    began_ns: u64,
    spun_ns: &'a AtomicU64,
}

impl Timer<'_> {
    /// Waits until the monotonic clock reads `deadline`; true when `stop` fired first.
    fn wait_until(&self, deadline: u64, stop: &CancellationToken) -> bool {
        loop {
            if stop.is_cancelled() {
                return true;
            }
            let now = clock::now_ns();
            if now >= deadline {
                return false;
            }
            let allowance = ((now - self.began_ns) as f64 * SPIN_BUDGET) as u64 + 1_000_000;
            let may_spin = self.spun_ns.load(Relaxed) < allowance;
            if may_spin && deadline - now <= SPIN_NS {
                let cpu0 = procstat::thread_cpu_ns();
                while clock::now_ns() < deadline {
                    std::hint::spin_loop();
                }
                self.spun_ns.fetch_add(procstat::thread_cpu_ns() - cpu0, Relaxed);
                return false;
            }
            let wake = if may_spin { deadline - SPIN_NS } else { deadline };
            let wake = wake.min(now + MAX_SLEEP_NS);
            let ts = rustix::time::Timespec {
                tv_sec: (wake / 1_000_000_000) as i64,
                tv_nsec: (wake % 1_000_000_000) as i64,
            };
            // Interrupted sleeps just go round again.
            let _ = rustix::thread::clock_nanosleep_absolute(rustix::time::ClockId::Monotonic, &ts);
        }
    }
}

/// When a schedule runs: from `start_ns` (CLOCK_MONOTONIC), a warm-up, then the measured part.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// CLOCK_MONOTONIC ns the schedule's offsets count from.
    pub start_ns: u64,
    /// Events of the warm-up are emitted but not measured.
    pub warmup: Duration,
    /// The measured part, after the warm-up.
    pub duration: Duration,
}

/// Runs the schedule over `span` on the calling thread (meant to be a thread of its own),
/// calling `emit(topic, scheduled_ns, measured)` for each event and
/// `mark` at each [`Boundary`], until done or `stop` fires. CPU spent spinning toward
/// deadlines is added to `spun_ns` so that it can be kept out of the server's cost.
pub fn run(
    mut schedule: Schedule,
    span: Span,
    stop: &CancellationToken,
    spun_ns: &AtomicU64,
    mut emit: impl FnMut(TopicId, u64, bool),
    mut mark: impl FnMut(Boundary),
) -> Emitted {
    // A timer slack of 1 ns lets the kernel wake the thread when asked, not up to 50 µs later.
    let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
    let topics = schedule.topics() as usize;
    let mut out = Emitted {
        total: vec![0; topics],
        measured: vec![0; topics],
        ..Emitted::default()
    };
    let mut lateness = clock::lateness_histogram();
    let (start_ns, warmup_ns) = (span.start_ns, span.warmup.as_nanos() as u64);
    let end_ns = warmup_ns + span.duration.as_nanos() as u64;
    let mut marks = [(warmup_ns, Boundary::WarmupEnd), (end_ns, Boundary::End)]
        .into_iter()
        .peekable();
    let timer = Timer {
        began_ns: clock::now_ns(),
        spun_ns,
    };
    let mut next = schedule.next().filter(|(offset, _)| *offset < end_ns);
    loop {
        // A boundary comes before an event scheduled at the same moment.
        let due = match (marks.peek(), next) {
            (Some(&(m, _)), Some((e, _))) => m.min(e),
            (Some(&(m, _)), None) => m,
            (None, _) => break,
        };
        if timer.wait_until(start_ns + due, stop) {
            break;
        }
        // Everything that is due now, in order, so a late wake-up costs no timer tick per event.
        let now = clock::now_ns();
        loop {
            match (marks.peek(), next) {
                (Some(&(m, b)), e) if start_ns + m <= now && e.is_none_or(|(e, _)| m <= e) => {
                    mark(b);
                    marks.next();
                }
                (_, Some((offset, topic))) if start_ns + offset <= now => {
                    let scheduled = start_ns + offset;
                    let late = clock::now_ns().saturating_sub(scheduled);
                    let measured = offset >= warmup_ns;
                    emit(topic, scheduled, measured);
                    out.total[topic as usize] += 1;
                    if measured {
                        out.measured[topic as usize] += 1;
                        lateness.saturating_record(late);
                    }
                    out.max_lag_ns = out.max_lag_ns.max(late);
                    next = schedule.next().filter(|(offset, _)| *offset < end_ns);
                }
                _ => break,
            }
        }
    }
    out.lateness = Lateness::of(&lateness);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Arrival, Events};

    fn events(arrival: Arrival) -> Events {
        crate::scenario::schedule::events_for_tests(arrival)
    }

    #[test]
    fn run_counts_warmup_and_measured_events_and_marks_the_window() {
        let mut n = 0;
        let mut marks = Vec::new();
        let start = clock::now_ns();
        let sched = Schedule::new(&events(Arrival::Constant), 1);
        let spun = AtomicU64::new(0);
        let out = run(
            sched,
            Span {
                start_ns: start,
                warmup: Duration::from_millis(50),
                duration: Duration::from_millis(100),
            },
            &CancellationToken::new(),
            &spun,
            |_, _, _| n += 1,
            |b| marks.push((b, clock::now_ns() - start)),
        );
        assert_eq!(out.total.iter().sum::<u64>(), 15);
        assert_eq!(out.measured.iter().sum::<u64>(), 10);
        assert_eq!(out.lateness.count, 10);
        assert!(out.lateness.p50_ns <= out.lateness.p99_ns && out.lateness.p99_ns <= out.lateness.max_ns);
        assert_eq!(n, 15);
        // Each boundary is marked once, in order, no earlier than its moment.
        assert_eq!(marks.len(), 2);
        assert_eq!((marks[0].0, marks[1].0), (Boundary::WarmupEnd, Boundary::End));
        assert!(marks[0].1 >= 50_000_000 && marks[1].1 >= 150_000_000, "{marks:?}");
    }

    #[test]
    fn a_stop_ends_the_schedule_early() {
        let stop = CancellationToken::new();
        stop.cancel();
        let spun = AtomicU64::new(0);
        let out = run(
            Schedule::new(&events(Arrival::Constant), 1),
            Span {
                start_ns: clock::now_ns() + 1_000_000_000,
                warmup: Duration::ZERO,
                duration: Duration::from_secs(10),
            },
            &stop,
            &spun,
            |_, _, _| panic!("nothing is due"),
            |_| panic!("no boundary is reached"),
        );
        assert_eq!(out.total.iter().sum::<u64>(), 0);
    }
}
