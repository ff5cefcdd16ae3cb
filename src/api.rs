//! The wire types between driver and server that the results keep too: what the driver reads
//! off the server's control API and records. Nothing here knows the server or the driver, so
//! the results schema can hold them without importing either.

use serde::{Deserialize, Serialize};

/// A snapshot of the webhook dispatcher's counters
/// ([`crate::server::stats::WebhookCounters`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSnapshot {
    /// See [`crate::server::stats::WebhookCounters::attempts`].
    pub attempts: u64,
    /// See [`crate::server::stats::WebhookCounters::successes`].
    pub successes: u64,
    /// See [`crate::server::stats::WebhookCounters::failures`].
    pub failures: u64,
    /// See [`crate::server::stats::WebhookCounters::timeouts`].
    pub timeouts: u64,
    /// See [`crate::server::stats::WebhookCounters::retries`].
    pub retries: u64,
    /// See [`crate::server::stats::WebhookCounters::in_flight`].
    pub in_flight: u64,
    /// See [`crate::server::stats::WebhookCounters::queued`].
    pub queued: u64,
    /// See [`crate::server::stats::WebhookCounters::waiting`].
    #[serde(default)]
    pub waiting: u64,
    /// See [`crate::server::stats::WebhookCounters::dead_letters`].
    pub dead_letters: u64,
    /// See [`crate::server::stats::WebhookCounters::disabled_endpoints`].
    #[serde(default)]
    pub disabled_endpoints: u64,
    /// See [`crate::server::stats::WebhookCounters::retry_after_obeyed`].
    #[serde(default)]
    pub retry_after_obeyed: u64,
    /// See [`crate::server::stats::WebhookCounters::replayed`].
    #[serde(default)]
    pub replayed: u64,
}
