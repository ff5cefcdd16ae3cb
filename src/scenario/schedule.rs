//! The seeded event schedule a scenario describes: when each event is due and on which topic.
//! The server's generator emits it, the driver's accounting replays it to know which events
//! fell where, and both get the same sequence because it depends only on the seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

use super::{Arrival, Events};
use crate::event::TopicId;

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

impl Schedule {
    /// How many topics the events fall on.
    pub fn topics(&self) -> u32 {
        self.events.topics
    }
}

/// Events at 100 per second over 3 topics, in bursts of 5 a second apart when bursty.
#[cfg(test)]
pub(crate) fn events_for_tests(arrival: Arrival) -> Events {
    Events {
        rate: 100.0,
        arrival,
        burst_size: 5,
        burst_gap: std::time::Duration::from_secs(1),
        topics: 3,
        payload_bytes: 0,
        retention: super::Retention {
            count: 10,
            age: std::time::Duration::from_secs(1),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(arrival: Arrival) -> Events {
        events_for_tests(arrival)
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
}
