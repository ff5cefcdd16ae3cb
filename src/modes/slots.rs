//! Where a poller's polls fall, in ns from its start: the real client sleeps until each slot,
//! and the simulator schedules each at it, so both poll on the very same schedule.

use std::time::Duration;

use rand::Rng;

use crate::scenario::{PollParams, PollSchedule};

/// Slot k of a fixed schedule is `phase + k × interval`, moved by its own ± jitter × interval
/// (the moves never add up); after an answer, the next poll is an interval times 1 ± jitter
/// away. The phase is uniform over one interval.
#[derive(Debug, Clone)]
pub struct Slots {
    schedule: PollSchedule,
    jitter: f64,
    /// Slot 0, before jitter, ns.
    origin_ns: u64,
    /// The next slot's index.
    k: u64,
    first: bool,
}

impl Slots {
    /// A poller that starts at `now_ns`: its first poll falls a random share of an interval
    /// later.
    pub fn new(p: &PollParams, now_ns: u64, rng: &mut impl Rng) -> Slots {
        Slots {
            schedule: p.schedule,
            jitter: p.jitter,
            origin_ns: now_ns + p.interval.mul_f64(rng.gen::<f64>()).as_nanos() as u64,
            k: 0,
            first: true,
        }
    }

    /// When to send the next poll (ns), given that it is now `now_ns` and the interval is
    /// `interval`.
    pub fn next(&mut self, interval: Duration, now_ns: u64, rng: &mut impl Rng) -> u64 {
        let jitter = self.jitter;
        let mut jitter = || jitter * rng.gen_range(-1.0..=1.0);
        if std::mem::take(&mut self.first) {
            return self.origin_ns;
        }
        match self.schedule {
            PollSchedule::AfterAnswer => now_ns + interval.mul_f64(1.0 + jitter()).as_nanos() as u64,
            PollSchedule::Fixed => {
                // The first slot still ahead: a slot that passed while a poll was out is skipped.
                let period = interval.as_secs_f64();
                let elapsed = now_ns.saturating_sub(self.origin_ns) as f64 / 1e9;
                self.k = (self.k + 1).max((elapsed / period).floor() as u64 + 1);
                let at = period * (self.k as f64 + jitter());
                self.origin_ns + (at.max(0.0) * 1e9) as u64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn params(schedule: PollSchedule, jitter: f64) -> PollParams {
        PollParams {
            interval: Duration::from_secs(1),
            jitter,
            schedule,
            limit: 100,
        }
    }

    #[test]
    fn fixed_slots_stay_on_their_grid_and_skip_the_ones_that_passed() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut s = Slots::new(&params(PollSchedule::Fixed, 0.0), 0, &mut rng);
        let first = s.next(Duration::from_secs(1), 0, &mut rng);
        assert!(first < 1_000_000_000);
        let second = s.next(Duration::from_secs(1), first + 10_000_000, &mut rng);
        assert_eq!(second, first + 1_000_000_000);
        // An answer that came back 2.5 intervals later skips the slots it missed.
        let later = s.next(Duration::from_secs(1), second + 2_500_000_000, &mut rng);
        assert_eq!(later, first + 4_000_000_000);
    }

    #[test]
    fn after_an_answer_the_gap_is_the_interval_within_its_jitter() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut s = Slots::new(&params(PollSchedule::AfterAnswer, 0.2), 0, &mut rng);
        s.next(Duration::from_secs(1), 0, &mut rng);
        for now in [5_000_000_000u64, 9_000_000_000] {
            let gap = s.next(Duration::from_secs(1), now, &mut rng) - now;
            assert!((800_000_000..=1_200_000_000).contains(&gap), "{gap}");
        }
    }
}
