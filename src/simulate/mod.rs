//! The simulator: the same scenarios as `run`, played as a discrete-event model instead of
//! real sockets, so that a million clients fit on one machine. It depends on the scenario
//! (and its seeded event [`Schedule`](crate::scenario::Schedule)), the results' histograms and
//! the modes' own client behaviour (where each poll falls: [`crate::modes::slots`]), never on
//! the server or the driver.
//!
//! The model keeps each client's state in arrays and every pending action in one time-ordered
//! queue ([`queue::Queue`]); a client is a few words of memory, not a task.
//!
//! Modelled so far, each mode checked against its theory (or queueing theory) in its tests:
//! short and conditional pollers on either schedule ([`poll`]), long pollers ([`long_poll`]),
//! SSE and WebSocket streams ([`stream`]), and the webhook dispatcher with its concurrency,
//! receivers' failed attempts, retries and dead letters ([`webhook`]); over a network of
//! round trip, jitter and bandwidth ([`network`]), against a server of a few cores that serve each operation at its
//! calibrated CPU cost ([`server`]; the costs come from `pushpull calibrate`,
//! [`crate::calibration`]). [`simulate`] turns a scenario (every point of its sweep, in
//! parallel) into results marked simulated, its CPU, memory and bytes charged at the
//! calibration's costs. Every kind of fault is modelled on the victims `run` picks
//! (`faults.rs`): stream cuts with refused reconnects, backoff and resume, paused clients and
//! the slow-consumer policy, receivers that refuse, hang up, fail by chance, answer late or
//! are gone; each delivery's fate is tallied for the whole run and each fault's window
//! ([`Outcome`]).
//!
//! The server's limits are the real one's: held long polls past `[server] max_held_long_polls`
//! are answered 503 and asked again ([`long_poll`]), client connections past
//! `max_connections` are answered 503 and closed, and the clients turned away try again as
//! the real ones do (`admission.rs`), webhook subscriptions past `max_subscriptions` refuse
//! the scenario as they fail `run`'s registration. Its limit of streams and long polls per
//! client (429) is not modelled, since no client of `run`'s holds more than one at a time.
//! Without `max_connections` the model's server holds every client, as `run`'s does when
//! the machine's open-file limit lets it (which `run` checks before it starts).

mod admission;
#[cfg(test)]
mod admission_tests;
pub mod capacity;
mod charge;
#[cfg(test)]
mod fault_tests;
mod faults;
mod heartbeats;
mod idle;
mod log;
pub mod long_poll;
pub mod network;
mod outcome;
pub mod poll;
mod pools;
pub mod queue;
mod results;
mod send_buffers;
pub mod server;

pub use network::{Network, Wire, LOOPBACK_ROUND_TRIP};
pub use outcome::{Outcome, Tally};
pub use results::{mode_result, operations, simulate, unsupported, Unwatched, Watch, NOT_MODELLED};
pub mod stream;
mod timeline;
mod timer;
mod waits;
pub mod webhook;

use std::time::Duration;

/// Told the simulated time (ns from the schedule's start) now and then, for a progress bar.
pub type Progress<'a> = &'a dyn Fn(u64);

/// A [`Progress`] that shows nothing.
pub fn quietly(_: u64) {}

/// Actions between two calls of a [`Progress`]: rare enough to cost nothing.
const PROGRESS_EVERY: u64 = 1 << 16;

/// What a model runs on besides its scenario: the server's costs and cores, and a round trip
/// that overrides the scenario's.
#[derive(Debug, Clone)]
pub struct Model {
    /// The round trip to use whatever the scenario says (`simulate --round-trip`).
    pub round_trip: Option<Duration>,
    /// The server's costs per operation.
    pub calibration: crate::calibration::Calibration,
    /// Cores serving them, unless the scenario's `[server] cores` says otherwise.
    pub cores: u32,
    /// The clients on the server's machine, as `run` has them: their own CPU (from the
    /// calibration) served on the server's cores (`simulate --clients-beside-server`).
    pub clients_beside: bool,
}

impl Model {
    /// `calibration`'s costs on as many cores as the calibrated machine had, over the
    /// scenario's network (its round trip replaced by `round_trip`, when given).
    pub fn new(round_trip: Option<Duration>, calibration: crate::calibration::Calibration) -> Model {
        let cores = calibration.environment.cores.max(1) as u32;
        Model {
            round_trip,
            calibration,
            cores,
            clients_beside: false,
        }
    }

    /// The network `s` runs over in this model.
    pub fn network(&self, s: &crate::scenario::Scenario) -> Network {
        let n = &s.network;
        Network {
            round_trip: self.round_trip.or(n.round_trip).unwrap_or(LOOPBACK_ROUND_TRIP),
            jitter: n.jitter,
            bandwidth_mbps: n.bandwidth_mbps,
        }
    }

    /// What `mode` puts on the wire per request and per delivery for `s`'s events, if calibrated.
    pub fn bytes(
        &self,
        s: &crate::scenario::Scenario,
        mode: crate::event::Mode,
    ) -> Option<crate::calibration::ByteCost> {
        self.calibration
            .bytes(mode)
            .map(|b| b.carrying(s.events.payload_bytes))
    }
}

/// What the models' tests share: the theory's inputs from a model run, and a comparison.
#[cfg(test)]
pub(crate) mod testing {
    use super::Outcome;
    use crate::results::Given;

    /// What the theory takes as given for a run of `o` with `clients` over `seconds`, on a
    /// network of `round_trip_ms` and a generator that is never late.
    pub fn given(o: &Outcome, clients: u32, seconds: f64, round_trip_ms: f64) -> Given {
        Given {
            client_event_rate: o.expected as f64 / f64::from(clients) / seconds,
            round_trip_ms,
            generator_ms: 0.0,
            round_trip_modelled: true,
        }
    }

    /// Asserts that the model's requests per delivery (within 2%) and empty share (within 3%)
    /// agree with `theory`'s.
    pub fn close_counts(label: &str, o: &Outcome, theory: &crate::results::Prediction) {
        let per_delivery = o.requests as f64 / o.delivered as f64;
        close(
            &format!("{label} requests/delivery"),
            per_delivery,
            theory.requests_per_delivery,
            0.02,
        );
        let empty = o.empty as f64 / o.requests as f64;
        close(&format!("{label} empty share"), empty, theory.empty_share, 0.03);
    }

    /// Asserts that the model's `model` is within the share `within` of the theory's `theory`.
    pub fn close(what: &str, model: f64, theory: f64, within: f64) {
        assert!(
            (model / theory - 1.0).abs() < within,
            "{what}: model {model}, theory {theory}"
        );
    }
}
