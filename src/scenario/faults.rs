//! `[[faults]]`: things that go wrong for a while, for a share of the clients, so a comparison
//! shows what each mode does when receivers fail, connections drop and clients fall behind.
//!
//! A fault's window is `[at, at + for)`, counted from the moment the generator starts (the
//! warm-up included), the same clock as the report's time series. Which clients it hits is
//! drawn from the scenario's seed, so every mode of a run sees the same victims.

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::humane;
use crate::event::Mode;

/// One `[[faults]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// What goes wrong, with its own parameters.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// When it starts, from the generator's start (warm-up included).
    #[serde(with = "humane")]
    pub at: Duration,
    /// How long it lasts.
    #[serde(rename = "for", with = "humane")]
    pub lasts: Duration,
    /// Share of the clients it hits (at least one client).
    pub share: f64,
}

/// The kinds of fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Webhook receivers answer 503 (optionally with `Retry-After`) or close the connection.
    ReceiverDown {
        /// How they refuse.
        answer: DownAnswer,
        /// `Retry-After` sent with the 503, if any.
        #[serde(default, with = "humane::option", skip_serializing_if = "Option::is_none")]
        retry_after: Option<Duration>,
    },
    /// Webhook receivers process each delivery but answer only after `delay`; past the
    /// dispatcher's timeout the sender retries, and the retry is a duplicate.
    ReceiverSlow {
        /// How long they take to answer.
        #[serde(with = "humane")]
        delay: Duration,
    },
    /// Each webhook delivery fails (503) with `probability`.
    ReceiverFlaky {
        /// Chance that one attempt fails.
        probability: f64,
    },
    /// Webhook receivers answer 410 Gone: the sender disables the endpoint.
    ReceiverGone,
    /// The server closes SSE and WebSocket connections at `at` and refuses them (503 with
    /// `Retry-After`) until the window ends; clients reconnect and resume from their last id.
    StreamCut,
    /// Pollers and stream clients stop reading for the window, then catch up.
    ClientPause,
    /// Every round trip between server and clients takes `delay` longer (half each way), ± `jitter`.
    Latency {
        /// Added round-trip time.
        #[serde(with = "humane")]
        delay: Duration,
        /// Each trip's added time varies by up to this much either way.
        #[serde(with = "humane")]
        jitter: Duration,
    },
}

/// How a downed receiver refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownAnswer {
    /// `503 Service Unavailable`.
    #[serde(rename = "503")]
    Unavailable,
    /// The connection is closed without an answer.
    Close,
}

impl FaultKind {
    /// The name scenario files use.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::ReceiverDown { .. } => "receiver_down",
            FaultKind::ReceiverSlow { .. } => "receiver_slow",
            FaultKind::ReceiverFlaky { .. } => "receiver_flaky",
            FaultKind::ReceiverGone => "receiver_gone",
            FaultKind::StreamCut => "stream_cut",
            FaultKind::ClientPause => "client_pause",
            FaultKind::Latency { .. } => "latency",
        }
    }

    /// Whether this kind of fault does anything to `mode`.
    pub fn applies_to(&self, mode: Mode) -> bool {
        match self {
            FaultKind::ReceiverDown { .. }
            | FaultKind::ReceiverSlow { .. }
            | FaultKind::ReceiverFlaky { .. }
            | FaultKind::ReceiverGone => mode == Mode::Webhook,
            FaultKind::StreamCut => mode.streams(),
            FaultKind::ClientPause => mode != Mode::Webhook,
            FaultKind::Latency { .. } => true,
        }
    }

    /// The modes it does something to, for messages.
    pub fn modes(&self) -> Vec<Mode> {
        Mode::ALL.into_iter().filter(|m| self.applies_to(*m)).collect()
    }
}

impl Fault {
    /// Whether `t` (since the generator started) falls in the window.
    pub fn covers(&self, t: Duration) -> bool {
        t >= self.at && t < self.at + self.lasts
    }

    /// The window `[from, to)` on the clock the generator started at `start_ns` on.
    pub fn window_ns(&self, start_ns: u64) -> (u64, u64) {
        let ns = |d: Duration| start_ns.saturating_add(d.as_nanos() as u64);
        (ns(self.at), ns(self.end()))
    }

    /// When the window ends, from the generator's start.
    pub fn end(&self) -> Duration {
        self.at + self.lasts
    }

    /// `receiver_down 20% 2s–5s`: the fault in a few words, for tables and charts.
    pub fn label(&self) -> String {
        format!(
            "{} {}% {}–{}",
            self.kind.name(),
            (self.share * 100.0).round(),
            humane::format(self.at),
            humane::format(self.end())
        )
    }
}

/// Which clients each fault hits, drawn once from the seed.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    faults: Vec<Fault>,
    /// `hit[f][c]`: fault `f` hits client `c`.
    hit: Vec<Vec<bool>>,
}

impl FaultPlan {
    /// The plan for `faults` over `clients` clients, seeded by `seed`.
    pub fn new(faults: &[Fault], clients: u32, seed: u64) -> Self {
        let hit = faults
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let n = ((f.share * clients as f64).ceil() as usize).clamp(1, clients as usize);
                let mut rng = ChaCha8Rng::seed_from_u64(
                    seed ^ 0xFA17_5EED ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                let mut row = vec![false; clients as usize];
                for c in rand::seq::index::sample(&mut rng, clients as usize, n) {
                    row[c] = true;
                }
                row
            })
            .collect();
        FaultPlan {
            faults: faults.to_vec(),
            hit,
        }
    }

    /// Whether fault `f` hits client `c`.
    pub fn hits(&self, f: usize, client: u32) -> bool {
        self.hit[f].get(client as usize).copied().unwrap_or(false)
    }

    /// The faults that hit `client` in `mode`: what that client lives through.
    pub fn for_client(&self, client: u32, mode: Mode) -> ClientFaults {
        ClientFaults(
            self.faults
                .iter()
                .enumerate()
                .filter(|(f, fault)| fault.kind.applies_to(mode) && self.hits(*f, client))
                .map(|(_, fault)| fault.clone())
                .collect(),
        )
    }

    /// The faults of the plan.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }
}

/// The faults one client lives through, in scenario order.
#[derive(Debug, Clone, Default)]
pub struct ClientFaults(pub Vec<Fault>);

impl ClientFaults {
    /// The faults active at `t` since the generator started (none before it starts).
    pub fn active(&self, t: Option<Duration>) -> impl Iterator<Item = &Fault> {
        self.0.iter().filter(move |f| t.is_some_and(|t| f.covers(t)))
    }

    /// Whether any fault of this kind hits the client at all.
    pub fn any(&self, pred: impl Fn(&FaultKind) -> bool) -> bool {
        self.0.iter().any(|f| pred(&f.kind))
    }

    /// The end of the `client_pause` active at `t`, if one is.
    pub fn paused_until(&self, t: Option<Duration>) -> Option<Duration> {
        self.active(t)
            .filter(|f| f.kind == FaultKind::ClientPause)
            .map(Fault::end)
            .max()
    }

    /// The added one-way delay at `t`: half the round trip of an active `latency` fault,
    /// jittered by a draw from `rng` (made only when such a fault is on), or zero.
    pub fn one_way_delay(&self, t: Option<Duration>, rng: &mut impl rand::Rng) -> Duration {
        self.active(t)
            .filter_map(|f| match f.kind {
                FaultKind::Latency { delay, jitter } => {
                    let unit: f64 = rng.gen_range(-1.0..=1.0);
                    let d = delay.as_secs_f64() + jitter.as_secs_f64() * unit;
                    Some(Duration::from_secs_f64(d.max(0.0) / 2.0))
                }
                _ => None,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: FaultKind, share: f64) -> Fault {
        Fault {
            kind,
            at: Duration::from_secs(2),
            lasts: Duration::from_secs(3),
            share,
        }
    }

    #[test]
    fn a_share_hits_that_many_clients_the_same_way_every_time() {
        let faults = [
            fault(FaultKind::ReceiverGone, 0.2),
            fault(FaultKind::StreamCut, 0.01),
        ];
        let plan = FaultPlan::new(&faults, 100, 7);
        let count = |f| (0..100).filter(|c| plan.hits(f, *c)).count();
        assert_eq!(count(0), 20);
        assert_eq!(count(1), 1, "a share hits at least one client");
        let again = FaultPlan::new(&faults, 100, 7);
        assert!((0..100).all(|c| plan.hits(0, c) == again.hits(0, c)));
    }

    #[test]
    fn windows_are_half_open_and_kinds_pick_their_modes() {
        let f = fault(FaultKind::ClientPause, 1.0);
        assert!(!f.covers(Duration::from_millis(1999)));
        assert!(f.covers(Duration::from_secs(2)));
        assert!(!f.covers(Duration::from_secs(5)));
        assert!(!f.kind.applies_to(Mode::Webhook));
        assert_eq!(FaultKind::StreamCut.modes(), vec![Mode::Sse, Mode::Websocket]);
        let plan = FaultPlan::new(&[f], 3, 1);
        let client = plan.for_client(0, Mode::Poll);
        assert_eq!(
            client.paused_until(Some(Duration::from_secs(3))),
            Some(Duration::from_secs(5))
        );
        assert_eq!(client.paused_until(None), None);
        assert!(plan.for_client(0, Mode::Webhook).0.is_empty());
    }

    #[test]
    fn latency_adds_half_the_round_trip_each_way() {
        let f = fault(
            FaultKind::Latency {
                delay: Duration::from_millis(40),
                jitter: Duration::from_millis(10),
            },
            1.0,
        );
        let c = ClientFaults(vec![f]);
        let t = Some(Duration::from_secs(3));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            let d = c.one_way_delay(t, &mut rng);
            assert!(
                d >= Duration::from_millis(15) && d <= Duration::from_millis(25),
                "{d:?}"
            );
        }
        assert_eq!(c.one_way_delay(Some(Duration::ZERO), &mut rng), Duration::ZERO);
    }
}
