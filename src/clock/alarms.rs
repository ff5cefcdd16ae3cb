//! Sleeps that end when they were asked to, for the network time that a `latency` fault adds.
//!
//! tokio's timer ticks once a millisecond: it rounds a sleep's deadline up to the next tick
//! and, when its worker parks, counts the time to that tick from the start of the current one,
//! so that a sleep of `d` on an idle runtime lasts `d` plus between 0 and 2 ms, 1 ms on
//! average. A leg of 20 ms so came out at 21, and every latency measured across it 1 ms
//! longer than the scenario's network. One thread of alarms instead waits on the kernel's
//! high-resolution timers for the earliest deadline and wakes the sleepers due then, whatever
//! their number, without a descriptor each.
//!
//! Alarms within [`SLACK_NS`] of each other ring together, each within half of it of its
//! deadline: woken alone, each sleeper cost the driver about 13 µs of CPU (a wake of this
//! thread and one of a runtime worker; tokio's ticks, which ring a millisecond's worth at
//! once, cost 1 µs), and the driver shares the machine with the server it measures.

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::now_ns;

/// How far apart alarms may be and ring together, ns: each rings within half of it of its
/// deadline, and in a burst the thread and the runtime wake once for all of them.
pub const SLACK_NS: u64 = 100_000;

/// Sleeps for `d`, give or take half of [`SLACK_NS`] (on the kernel's timers rather than
/// tokio's millisecond ticks), unless `stop` fires first; true when stopped.
pub async fn sleep_closely_or_stop(d: Duration, stop: &CancellationToken) -> bool {
    if d.is_zero() {
        return stop.is_cancelled();
    }
    let ring = alarms().set(now_ns() + d.as_nanos() as u64);
    tokio::select! {
        _ = ring => false,
        _ = stop.cancelled() => true,
    }
}

/// The alarms set and not yet rung, by deadline (ns on [`now_ns`]'s clock) and the order they
/// were set in.
#[derive(Default)]
struct Due {
    /// The order the next alarm set takes, to tell alarms of one deadline apart.
    next: u64,
    alarms: BTreeMap<(u64, u64), oneshot::Sender<()>>,
}

/// The process's alarms and the thread that rings them.
struct Alarms {
    due: Mutex<Due>,
    /// Told when an alarm earlier than every other is set.
    earlier: Condvar,
}

/// The process's alarms, their thread started on first use.
fn alarms() -> &'static Alarms {
    static ALARMS: OnceLock<&'static Alarms> = OnceLock::new();
    ALARMS.get_or_init(|| {
        let alarms: &'static Alarms = Box::leak(Box::new(Alarms {
            due: Mutex::default(),
            earlier: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("alarms".into())
            .spawn(|| alarms.ring())
            .expect("starting the alarms thread");
        alarms
    })
}

impl Alarms {
    /// An alarm that rings at `at_ns`.
    fn set(&self, at_ns: u64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut due = self.due.lock().expect("alarms lock");
        let earliest = due.alarms.keys().next().is_none_or(|&(first, _)| at_ns < first);
        let seq = due.next;
        due.next += 1;
        due.alarms.insert((at_ns, seq), tx);
        drop(due);
        if earliest {
            self.earlier.notify_one();
        }
        rx
    }

    /// Rings each alarm at its deadline, for as long as the process runs.
    fn ring(&self) {
        // The kernel's own slack would let it wake the thread up to 50 µs later still.
        let _ = rustix::thread::set_current_timer_slack(NonZeroU64::new(1));
        let half = SLACK_NS / 2;
        let mut due = self.due.lock().expect("alarms lock");
        loop {
            // Woken half the slack after the earliest deadline: every alarm due up to half
            // the slack from now rings, the earliest that late and the last that early.
            let now = now_ns();
            while let Some(alarm) = due.alarms.first_entry() {
                if alarm.key().0 > now + half {
                    break;
                }
                // A sleeper that stopped has dropped its end: nobody to wake.
                let _ = alarm.remove().send(());
            }
            due = match due.alarms.keys().next() {
                Some(&(at, _)) => {
                    let wait = Duration::from_nanos(at + half - now);
                    self.earlier.wait_timeout(due, wait).expect("alarms lock").0
                }
                None => self.earlier.wait(due).expect("alarms lock"),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How late each of `n` sleeps of `d` by `sleep` ends, in ns, sorted (early is negative:
    /// an alarm may ring with another set by a test running beside this one).
    async fn overshoots<F: std::future::Future>(
        n: usize,
        d: Duration,
        sleep: impl Fn(Duration) -> F,
    ) -> Vec<i64> {
        let mut late = Vec::with_capacity(n);
        for _ in 0..n {
            let start = now_ns();
            sleep(d).await;
            late.push((now_ns() - start) as i64 - d.as_nanos() as i64);
        }
        late.sort_unstable();
        late
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sleep_ends_when_asked_where_tokios_ends_a_millisecond_late() {
        // Legs of 2.3 ms, as a latency fault's are (not whole milliseconds). tokio's timer
        // ends them between 0 and 2 ms late, 1 ms on average on an idle runtime; the alarms
        // end them half the slack late (one at a time, none rings with another), and the
        // time it takes to wake a task.
        let stop = CancellationToken::new();
        let d = Duration::from_micros(2_300);
        let exact = overshoots(40, d, |d| sleep_closely_or_stop(d, &stop)).await;
        let ticked = overshoots(40, d, tokio::time::sleep).await;
        let median = |v: &[i64]| v[v.len() / 2];
        assert!(median(&exact) < 250_000, "alarms late by {:?} ns", exact);
        assert!(
            median(&ticked) > median(&exact) + 250_000,
            "tokio's timer late by {ticked:?} ns, the alarms by {exact:?}: the test no longer tells them apart"
        );
    }

    #[tokio::test]
    async fn a_stopped_sleep_ends_at_once_and_says_so() {
        let stop = CancellationToken::new();
        stop.cancel();
        let start = now_ns();
        assert!(sleep_closely_or_stop(Duration::from_secs(60), &stop).await);
        assert!(now_ns() - start < 1_000_000_000);
    }

    #[tokio::test]
    async fn alarms_set_out_of_order_ring_in_order_of_their_deadlines() {
        let stop = CancellationToken::new();
        let start = now_ns();
        let (late, early) = tokio::join!(
            async {
                sleep_closely_or_stop(Duration::from_millis(30), &stop).await;
                now_ns() - start
            },
            async {
                sleep_closely_or_stop(Duration::from_millis(5), &stop).await;
                now_ns() - start
            }
        );
        assert!(
            early >= 5_000_000 && early < late && late >= 30_000_000,
            "{early} then {late}"
        );
    }
}
