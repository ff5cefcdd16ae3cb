//! The network in the model: each leg of a trip takes half the round trip, give or take half
//! the jitter (uniformly), plus its bytes at the bandwidth. A model draws its legs from a
//! [`Wire`] of its own, seeded, so a run is the same every time.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::calibration::ByteCost;

/// A round trip when the scenario gives none: two processes on one host's loopback.
pub const LOOPBACK_ROUND_TRIP: Duration = Duration::from_micros(200);

/// The network between clients and server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Network {
    /// A request's way there and its answer's way back, together.
    pub round_trip: Duration,
    /// How far a round trip may stray either way (each leg by up to half of it).
    pub jitter: Duration,
    /// Megabits per second each message is sent at (None: no time per byte).
    pub bandwidth_mbps: Option<f64>,
}

impl Network {
    /// A network of `round_trip`, without jitter or a bandwidth.
    pub const fn of(round_trip: Duration) -> Network {
        Network {
            round_trip,
            jitter: Duration::ZERO,
            bandwidth_mbps: None,
        }
    }

    /// One way, ns.
    pub fn one_way_ns(&self) -> u64 {
        self.round_trip.as_nanos() as u64 / 2
    }
}

/// One model's legs over the network, each carrying the bytes the calibration measured for
/// its kind of message.
pub struct Wire {
    one_way_ns: f64,
    half_jitter_ns: f64,
    ns_per_byte: f64,
    bytes: ByteCost,
    rng: ChaCha8Rng,
}

impl Wire {
    /// Legs over `net` carrying `bytes`, drawn from `seed`.
    pub fn new(net: &Network, bytes: ByteCost, seed: u64) -> Wire {
        Wire {
            one_way_ns: net.one_way_ns() as f64,
            half_jitter_ns: net.jitter.as_nanos() as f64 / 2.0,
            // Mbit/s → ns per byte: 8 bits over 10⁶ bits a second, in ns.
            ns_per_byte: net.bandwidth_mbps.map_or(0.0, |mbps| 8e3 / mbps),
            bytes,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_7477_6f72_6b00),
        }
    }

    /// Legs over `net` that carry no bytes (for models checked against theory without them).
    pub fn plain(net: &Network) -> Wire {
        let none = ByteCost {
            mode: crate::event::Mode::Poll,
            read_per_request: 0.0,
            read_per_delivery: 0.0,
            written_per_request: 0.0,
            written_per_delivery: 0.0,
            written_per_empty: None,
            payload_bytes: 0.0,
        };
        Wire::new(net, none, 0)
    }

    /// A leg carrying `bytes`, ns.
    pub fn leg(&mut self, bytes: f64) -> u64 {
        let mut t = self.one_way_ns + bytes * self.ns_per_byte;
        if self.half_jitter_ns > 0.0 {
            t += self.rng.gen_range(-self.half_jitter_ns..=self.half_jitter_ns);
        }
        t.max(0.0).round() as u64
    }

    /// A client's request on its way to the server (for webhooks: the receiver's answer).
    pub fn request(&mut self) -> u64 {
        self.leg(self.bytes.read_per_request)
    }

    /// An answer carrying `events` events (for a stream: one event written; for webhooks:
    /// an attempt, which carries one).
    pub fn answer(&mut self, events: usize) -> u64 {
        self.leg(self.bytes.written(events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes() -> ByteCost {
        ByteCost {
            mode: crate::event::Mode::Poll,
            read_per_request: 100.0,
            read_per_delivery: 0.0,
            written_per_request: 150.0,
            written_per_delivery: 400.0,
            written_per_empty: None,
            payload_bytes: 256.0,
        }
    }

    #[test]
    fn a_leg_is_half_the_round_trip_plus_its_bytes_at_the_bandwidth() {
        // 10 Mbit/s: 0.8 µs a byte. 150 + 2 × 400 = 950 bytes: 760 µs on top of 5 ms.
        let net = Network {
            bandwidth_mbps: Some(10.0),
            ..Network::of(Duration::from_millis(10))
        };
        let mut wire = Wire::new(&net, bytes(), 1);
        assert_eq!(wire.answer(2), 5_000_000 + 760_000);
        assert_eq!(wire.request(), 5_000_000 + 80_000);
        assert_eq!(
            Wire::new(&Network::of(Duration::from_millis(10)), bytes(), 1).answer(2),
            5_000_000
        );
    }

    #[test]
    fn jitter_spreads_each_leg_evenly_within_half_of_it() {
        // ±1 ms on a 5 ms leg: uniform from 4 to 6 ms, mean 5 ms, variance (2 ms)²/12.
        let net = Network {
            jitter: Duration::from_millis(2),
            ..Network::of(Duration::from_millis(10))
        };
        let mut wire = Wire::new(&net, bytes(), 7);
        let legs: Vec<f64> = (0..100_000).map(|_| wire.leg(0.0) as f64 / 1e6).collect();
        let mean = legs.iter().sum::<f64>() / legs.len() as f64;
        let var = legs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / legs.len() as f64;
        assert!(legs.iter().all(|&x| (4.0..=6.0).contains(&x)));
        assert!((mean - 5.0).abs() < 0.01, "{mean}");
        assert!((var / (4.0 / 12.0) - 1.0).abs() < 0.02, "{var}");
    }
}
