//! `[server]` and `[network]`: what a scenario runs on, its limits, and the network `simulate`
//! models between clients and server.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::humane;

/// `[server]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerParams {
    /// Cores serving the server's work: `run` gives its server child that many worker
    /// threads (at most this machine's cores); `simulate` models that many cores. None: one
    /// per core of this machine (`run`) or of the calibrated machine (`simulate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    /// The p99 the server must keep: `simulate` then searches, for each mode, the fewest
    /// cores that keep it (with nothing lost), and reports them with the memory the
    /// clients hold. `run` judges nothing by it (use a threshold).
    #[serde(default, with = "humane::option", skip_serializing_if = "Option::is_none")]
    pub p99_target: Option<Duration>,
    /// Long polls the server holds at once; more are answered 503 with Retry-After (None:
    /// [`DEFAULT_MAX_HELD_LONG_POLLS`], as `pushpull serve` has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_held_long_polls: Option<u64>,
    /// Webhook subscriptions the server holds; registering more is refused with 409 (None:
    /// [`DEFAULT_MAX_SUBSCRIPTIONS`], as `pushpull serve` has it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_subscriptions: Option<u64>,
    /// Client connections the server holds at once; more are answered 503 with Retry-After
    /// and closed (None: `run`'s server holds as many as its open-file limit allows, less
    /// what it keeps for itself, and `simulate`'s as many as there are clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u64>,
}

/// Webhook subscriptions a server holds unless told otherwise.
pub const DEFAULT_MAX_SUBSCRIPTIONS: u64 = 100_000;

/// Long polls a server holds at once unless told otherwise.
pub const DEFAULT_MAX_HELD_LONG_POLLS: u64 = 15_000;

impl ServerParams {
    /// Nothing set: the section is left out when the scenario is written back.
    pub fn is_unset(&self) -> bool {
        *self == ServerParams::default()
    }
}

/// `[network]`: what `simulate` models between clients and server (`run` measures the
/// network it has; a `latency` fault adds delay to it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkParams {
    /// A request's way there and its answer's way back, together (None: loopback's).
    #[serde(default, with = "humane::option", skip_serializing_if = "Option::is_none")]
    pub round_trip: Option<Duration>,
    /// How far a round trip may stray either way, evenly (each leg by up to half of it).
    #[serde(default, with = "humane", skip_serializing_if = "Duration::is_zero")]
    pub jitter: Duration,
    /// Megabits per second each message is sent at, so a message of b bytes takes
    /// 8b / (10⁶ × bandwidth_mbps) s on top (None: no time per byte).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbps: Option<f64>,
}

impl NetworkParams {
    /// Nothing set: the section is left out when the scenario is written back.
    pub fn is_unset(&self) -> bool {
        *self == NetworkParams::default()
    }
}
