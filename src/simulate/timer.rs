//! The clients' timer. `run`'s clients are tasks of one process sleeping on tokio's timer,
//! which keeps time in whole milliseconds: a sleep's deadline is rounded up to the next
//! millisecond tick, and the sleep fires when the runtime next turns after that tick, at
//! once with every other sleep due at the same tick. So pollers that chose their slots
//! apart send together, a few to a millisecond when there are thousands of them, and the
//! server finds the later ones of each batch while it is awake for the first (a request's
//! wake-up, [`Op::RequestWake`](crate::calibration::Op::RequestWake), is paid by fewer
//! requests than arrive). The model sends each timed request at its deadline's tick plus
//! that tick's turn, a share of a millisecond drawn once per tick; a poller's lateness
//! against its slot is then between none and two ticks, most often about one.

/// A tick of the timer, ns.
pub const TICK_NS: u64 = 1_000_000;

/// The clients' timer, for a run seeded `seed`.
#[derive(Debug, Clone, Copy)]
pub struct Timer {
    seed: u64,
}

impl Timer {
    /// The timer of a run seeded `seed`.
    pub fn new(seed: u64) -> Timer {
        Timer { seed }
    }

    /// When a sleep until `deadline` (ns) fires: at the deadline's tick, rounded up, and
    /// that tick's turn.
    pub fn fires(&self, deadline: u64) -> u64 {
        let tick = deadline.div_ceil(TICK_NS);
        tick * TICK_NS + self.turn(tick)
    }

    /// How long after `tick` the runtime turns to fire its sleeps, ns: below a tick, the
    /// same for every sleep due then.
    fn turn(&self, tick: u64) -> u64 {
        // SplitMix64 of the tick in this run's sequence: uniform and cheap.
        let mut z =
            (self.seed ^ 0x7469_636b_0000_0000).wrapping_add(tick.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        z % TICK_NS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_due_within_one_tick_fire_together_between_none_and_two_ticks_late() {
        let timer = Timer::new(5);
        // Deadlines over (3 ms, 4 ms] round up to tick 4 and fire at one instant of [4, 5) ms.
        let fired: Vec<u64> = [3_000_001, 3_400_000, 3_999_999, 4_000_000]
            .iter()
            .map(|&d| timer.fires(d))
            .collect();
        assert!(fired.iter().all(|&f| f == fired[0]), "{fired:?}");
        assert!((4_000_000..5_000_000).contains(&fired[0]), "{fired:?}");
        // Lateness over many deadlines: the sum of two uniform shares of a tick (the
        // rounding up and the turn), triangular on [0, 2) ticks: its mean is one tick and
        // a quarter of deadlines fire later than 1.29 ticks (1 − (2 − x)²/2 = 3/4).
        let n = 200_000u64;
        let late: Vec<f64> = (0..n)
            .map(|i| {
                let deadline = i * 7_919_113 % 10_000_000_000;
                (timer.fires(deadline) - deadline) as f64 / TICK_NS as f64
            })
            .collect();
        assert!(late.iter().all(|&l| (0.0..2.0).contains(&l)));
        let mean = late.iter().sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.01, "{mean}");
        let past = late.iter().filter(|&&l| l > 2.0 - 0.5f64.sqrt()).count() as f64 / n as f64;
        assert!((past - 0.25).abs() < 0.01, "{past}");
    }

    #[test]
    fn another_seed_turns_at_other_times() {
        let (a, b) = (Timer::new(1), Timer::new(2));
        let differ = (0..100u64)
            .filter(|&t| a.fires(t * TICK_NS) != b.fires(t * TICK_NS))
            .count();
        assert!(differ > 90, "{differ}");
    }
}
