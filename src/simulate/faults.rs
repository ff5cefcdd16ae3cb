//! Faults in the model: which clients each fault hits (the [`FaultPlan`] `run` draws from the
//! same seed, so the same victims), and what a client meets at a given moment: added latency,
//! a pause, a cut stream, a receiver that refuses or answers late. Times are ns from the
//! schedule's start, the clock fault windows are given on.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::event::Mode;
use crate::scenario::{DownAnswer, FaultKind, FaultPlan, Scenario};

/// The faults that do something to one mode, and who they hit.
pub(super) struct Faults {
    plan: FaultPlan,
    /// Of the scenario's faults, those that apply to the mode: index, window, kind.
    on: Vec<(usize, u64, u64, FaultKind)>,
    /// Draws for latency jitter and flaky receivers.
    rng: ChaCha8Rng,
}

/// What a webhook receiver does with an attempt that reaches it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Receiver {
    /// Handles it, answering `slow` ns late.
    Handles { slow: u64 },
    /// 503, with a `Retry-After` of that many ns when one is sent.
    Unavailable(Option<u64>),
    /// Closes the connection without an answer.
    HangsUp,
    /// 410 Gone.
    Gone,
}

impl Faults {
    /// `s`'s faults as they touch `mode`.
    pub fn new(s: &Scenario, mode: Mode) -> Faults {
        let on: Vec<_> = s
            .faults
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind.applies_to(mode))
            .map(|(i, f)| {
                let (from, to) = f.window_ns(0);
                (i, from, to, f.kind.clone())
            })
            .collect();
        let plan = if on.is_empty() {
            FaultPlan::default()
        } else {
            FaultPlan::new(&s.faults, s.clients.count, s.seed)
        };
        Faults {
            plan,
            on,
            rng: ChaCha8Rng::seed_from_u64(s.seed ^ 0xFA_0175),
        }
    }

    /// The kinds hitting client `c` at `t`, with their windows.
    fn active(&self, c: u32, t: u64) -> impl Iterator<Item = (u64, u64, &FaultKind)> {
        self.on
            .iter()
            .filter(move |(i, from, to, _)| (*from..*to).contains(&t) && self.plan.hits(*i, c))
            .map(|(_, from, to, kind)| (*from, *to, kind))
    }

    /// The windows of `c`'s faults that `pick` accepts, in the scenario's order.
    pub fn windows(&self, c: u32, pick: fn(&FaultKind) -> bool) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.on
            .iter()
            .filter(move |(i, _, _, kind)| pick(kind) && self.plan.hits(*i, c))
            .map(|(_, from, to, _)| (*from, *to))
    }

    /// The one-way time a `latency` fault adds for `c` at `t`: half its round trip, ± half
    /// its jitter, as the real client draws it.
    pub fn delay(&mut self, c: u32, t: u64) -> u64 {
        if self.on.is_empty() {
            return 0;
        }
        let (plan, rng) = (&self.plan, &mut self.rng);
        let mut added = 0;
        for (i, from, to, kind) in &self.on {
            if let (FaultKind::Latency { delay, jitter }, true) =
                (kind, (*from..*to).contains(&t) && plan.hits(*i, c))
            {
                let unit: f64 = rng.gen_range(-1.0..=1.0);
                added += ((delay.as_secs_f64() + jitter.as_secs_f64() * unit).max(0.0) / 2.0 * 1e9) as u64;
            }
        }
        added
    }

    /// When client `c`, about to act at `t`, acts: `t`, or the end of the `client_pause`
    /// that holds it then (and of any pause that holds it at that end).
    pub fn resume(&self, c: u32, mut t: u64) -> u64 {
        if self.on.is_empty() {
            return t;
        }
        while let Some(end) = self
            .active(c, t)
            .filter(|(_, _, k)| **k == FaultKind::ClientPause)
            .map(|(_, to, _)| to)
            .max()
        {
            t = end;
        }
        t
    }

    /// When client `c` reads an answer whose base trip ends at `t`: after a `latency` fault's
    /// delay, and when a pause then holding it ends.
    pub fn read(&mut self, c: u32, t: u64) -> u64 {
        let t = t + self.delay(c, t);
        self.resume(c, t)
    }

    /// What client `c`'s webhook receiver does with an attempt reaching it at `t`: the last
    /// refusing fault of the scenario's order wins, and a slow one adds its delay to a
    /// handled attempt, as the real receiver has it.
    pub fn receiver(&mut self, c: u32, t: u64) -> Receiver {
        if self.on.is_empty() {
            return Receiver::Handles { slow: 0 };
        }
        let (mut refusal, mut slow) = (None, 0u64);
        let (plan, rng) = (&self.plan, &mut self.rng);
        let hitting = self
            .on
            .iter()
            .filter(|(i, from, to, _)| (*from..*to).contains(&t) && plan.hits(*i, c));
        for (_, _, _, kind) in hitting {
            match *kind {
                FaultKind::ReceiverGone => refusal = Some(Receiver::Gone),
                FaultKind::ReceiverDown { answer, retry_after } => {
                    refusal = Some(match answer {
                        DownAnswer::Close => Receiver::HangsUp,
                        // The header says whole seconds, rounded up.
                        DownAnswer::Unavailable => Receiver::Unavailable(
                            retry_after.map(|r| r.as_secs_f64().ceil() as u64 * 1_000_000_000),
                        ),
                    })
                }
                FaultKind::ReceiverFlaky { probability } if rng.gen_bool(probability) => {
                    refusal = Some(Receiver::Unavailable(None))
                }
                FaultKind::ReceiverSlow { delay } => slow = slow.max(delay.as_nanos() as u64),
                _ => {}
            }
        }
        refusal.unwrap_or(Receiver::Handles { slow })
    }
}
