//! The event generator: an open-loop, seeded schedule of events on topics.
//!
//! Every event has a *scheduled* time fixed by the seed before the run starts; the generator
//! emits it at or after that time and stamps both. If the generator falls behind, clients see
//! the delay in their latency, which is measured from the scheduled time (as wrk2 corrects for
//! coordinated omission).

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::event::TopicId;
use crate::scenario::{Arrival, Events};

/// The schedule: (offset from the start in ns, topic) pairs in time order, the same for every
/// mode of a run because it depends only on the seed.
pub struct Schedule {
    rng: ChaCha8Rng,
    exp: Option<Exp<f64>>,
    events: Events,
    next_offset_ns: f64,
    in_burst: u32,
}

impl Schedule {
    /// The schedule of `events`, drawn from `seed`.
    pub fn new(events: &Events, seed: u64) -> Self {
        Schedule {
            rng: ChaCha8Rng::seed_from_u64(seed),
            exp: (events.arrival == Arrival::Poisson)
                .then(|| Exp::new(events.rate).expect("rate validated > 0")),
            events: events.clone(),
            next_offset_ns: 0.0,
            in_burst: 0,
        }
    }
}

impl Iterator for Schedule {
    type Item = (u64, TopicId);

    fn next(&mut self) -> Option<(u64, TopicId)> {
        let at = self.next_offset_ns;
        let topic = self.rng.gen_range(0..self.events.topics);
        let gap_s = match self.events.arrival {
            Arrival::Constant => 1.0 / self.events.rate,
            Arrival::Poisson => self.exp.as_ref().expect("poisson").sample(&mut self.rng),
            Arrival::Bursty => {
                self.in_burst += 1;
                if self.in_burst >= self.events.burst_size {
                    self.in_burst = 0;
                    1.0 / self.events.rate + self.events.burst_gap.as_secs_f64()
                } else {
                    1.0 / self.events.rate
                }
            }
        };
        self.next_offset_ns += gap_s * 1e9;
        Some((at as u64, topic))
    }
}

/// What the generator emitted, per topic; the driver derives expected deliveries from it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emitted {
    /// Events emitted per topic, warm-up included (the last seq of each topic).
    pub total: Vec<u64>,
    /// Events emitted per topic after the warm-up (they are the last ones of each topic).
    pub measured: Vec<u64>,
    /// Largest delay between an event's scheduled and actual emission, in ns.
    pub max_lag_ns: u64,
}

/// Runs the schedule from `start_ns` for `warmup + duration`, calling `emit(topic,
/// scheduled_ns, measured)` for each event, until done or `stop` fires.
pub async fn run(
    mut schedule: Schedule,
    start_ns: u64,
    warmup: Duration,
    duration: Duration,
    stop: CancellationToken,
    mut emit: impl FnMut(TopicId, u64, bool),
) -> Emitted {
    let topics = schedule.events.topics as usize;
    let mut out = Emitted {
        total: vec![0; topics],
        measured: vec![0; topics],
        max_lag_ns: 0,
    };
    let warmup_ns = warmup.as_nanos() as u64;
    let end_ns = warmup_ns + duration.as_nanos() as u64;
    let mut next = schedule.next();
    while let Some((offset, topic)) = next {
        if offset >= end_ns {
            break;
        }
        let scheduled = start_ns + offset;
        if clock::now_ns() < scheduled {
            tokio::select! {
                _ = clock::sleep_until_ns(scheduled) => {}
                _ = stop.cancelled() => break,
            }
        }
        // Emit everything that is due, so a late wake-up does not add one timer tick per event.
        let now = clock::now_ns();
        next = Some((offset, topic));
        while let Some((offset, topic)) = next {
            let scheduled = start_ns + offset;
            if offset >= end_ns || scheduled > now {
                break;
            }
            let measured = offset >= warmup_ns;
            emit(topic, scheduled, measured);
            out.total[topic as usize] += 1;
            if measured {
                out.measured[topic as usize] += 1;
            }
            out.max_lag_ns = out.max_lag_ns.max(clock::now_ns().saturating_sub(scheduled));
            next = schedule.next();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Retention;

    fn events(arrival: Arrival) -> Events {
        Events {
            rate: 100.0,
            arrival,
            burst_size: 5,
            burst_gap: Duration::from_secs(1),
            topics: 3,
            payload_bytes: 0,
            retention: Retention {
                count: 10,
                age: Duration::from_secs(1),
            },
        }
    }

    #[test]
    fn same_seed_same_schedule() {
        let a: Vec<_> = Schedule::new(&events(Arrival::Poisson), 7).take(100).collect();
        let b: Vec<_> = Schedule::new(&events(Arrival::Poisson), 7).take(100).collect();
        let c: Vec<_> = Schedule::new(&events(Arrival::Poisson), 8).take(100).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced() {
        let s: Vec<_> = Schedule::new(&events(Arrival::Constant), 1)
            .take(3)
            .map(|e| e.0)
            .collect();
        assert_eq!(s, vec![0, 10_000_000, 20_000_000]);
    }

    #[test]
    fn poisson_mean_gap_is_one_over_rate() {
        let last = Schedule::new(&events(Arrival::Poisson), 3)
            .take(10_001)
            .last()
            .unwrap()
            .0;
        let mean_gap_ms = last as f64 / 10_000.0 / 1e6;
        assert!((mean_gap_ms - 10.0).abs() < 0.5, "{mean_gap_ms}");
    }

    #[test]
    fn bursts_are_separated_by_the_gap() {
        let s: Vec<_> = Schedule::new(&events(Arrival::Bursty), 1)
            .take(6)
            .map(|e| e.0)
            .collect();
        assert_eq!(s[4] - s[0], 40_000_000);
        assert_eq!(s[5] - s[4], 1_010_000_000);
    }

    #[tokio::test]
    async fn run_counts_warmup_and_measured_events() {
        let mut n = 0;
        let start = clock::now_ns();
        let sched = Schedule::new(&events(Arrival::Constant), 1);
        let out = run(
            sched,
            start,
            Duration::from_millis(50),
            Duration::from_millis(100),
            CancellationToken::new(),
            |_, _, _| n += 1,
        )
        .await;
        assert_eq!(out.total.iter().sum::<u64>(), 15);
        assert_eq!(out.measured.iter().sum::<u64>(), 10);
        assert_eq!(n, 15);
    }
}
