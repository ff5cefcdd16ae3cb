//! The scenario file exactly as written: a serde mirror of the TOML, every value with its span
//! so that validation can point at the line and column of a bad value.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

/// A value with the byte range it came from.
pub type S<T> = Spanned<T>;

/// The top level of a scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: S<String>,
    pub description: Option<S<String>>,
    pub seed: Option<S<i64>>,
    pub repeat: Option<S<i64>>,
    pub duration: S<String>,
    pub warmup: Option<S<String>>,
    pub drain: Option<S<String>>,
    pub late_after: Option<S<String>>,
    pub modes: Option<S<Vec<S<String>>>>,
    pub events: RawEvents,
    pub clients: RawClients,
    pub poll: Option<RawPoll>,
    pub conditional_poll: Option<RawPoll>,
    pub long_poll: Option<RawLongPoll>,
    pub sse: Option<RawStream>,
    pub websocket: Option<RawStream>,
    pub webhook: Option<RawWebhook>,
    pub server: Option<RawServer>,
    pub network: Option<RawNetwork>,
    pub thresholds: Option<BTreeMap<S<String>, S<String>>>,
    pub sweep: Option<S<BTreeMap<S<String>, S<toml::Value>>>>,
    pub faults: Option<Vec<RawFault>>,
}

/// One `[[faults]]` entry; which parameters apply depends on `kind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    pub kind: S<String>,
    pub at: S<String>,
    #[serde(rename = "for")]
    pub lasts: S<String>,
    pub share: Option<S<f64>>,
    pub answer: Option<S<RawAnswer>>,
    pub retry_after: Option<S<String>>,
    pub delay: Option<S<String>>,
    pub jitter: Option<S<String>>,
    pub probability: Option<S<f64>>,
}

/// `answer = 503` or `answer = "close"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAnswer {
    Status(i64),
    Word(String),
}

/// `[events]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvents {
    pub rate: S<f64>,
    pub arrival: Option<S<String>>,
    pub burst_size: Option<S<i64>>,
    pub burst_gap: Option<S<String>>,
    pub topics: Option<S<i64>>,
    pub payload_bytes: Option<S<i64>>,
    pub retention: Option<RawRetention>,
}

/// `[events.retention]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub count: Option<S<i64>>,
    pub age: Option<S<String>>,
}

/// `[clients]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClients {
    pub count: S<i64>,
    pub topics_per_client: Option<S<i64>>,
}

/// `[poll]` and `[conditional_poll]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoll {
    pub interval: Option<S<String>>,
    pub jitter: Option<S<f64>>,
    pub schedule: Option<S<String>>,
    pub limit: Option<S<i64>>,
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub cores: Option<S<i64>>,
    pub p99_target: Option<S<String>>,
    pub max_held_long_polls: Option<S<i64>>,
    pub max_subscriptions: Option<S<i64>>,
    pub max_connections: Option<S<i64>>,
}

/// `[network]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub round_trip: Option<S<String>>,
    pub jitter: Option<S<String>>,
    pub bandwidth_mbps: Option<S<f64>>,
}

/// `[long_poll]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLongPoll {
    pub wait: Option<S<String>>,
    pub limit: Option<S<i64>>,
}

/// `[sse]` and `[websocket]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStream {
    pub buffer: Option<S<i64>>,
    pub buffer_bytes: Option<S<i64>>,
    pub slow_consumer: Option<S<String>>,
    pub heartbeat: Option<S<String>>,
    pub retry: Option<S<String>>,
}

/// `[webhook]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub timeout: Option<S<String>>,
    pub retry: Option<S<RawRetry>>,
    pub time_scale: Option<S<f64>>,
    pub concurrency: Option<S<i64>>,
    pub endpoint_concurrency: Option<S<i64>>,
    pub signing: Option<S<bool>>,
    pub sender: Option<S<String>>,
    pub backlog: Option<S<i64>>,
    pub receiver_hosts: Option<S<i64>>,
    pub receiver_fail_attempts: Option<S<i64>>,
    pub disable_after: Option<S<String>>,
}

/// `retry = "standard"` or `retry = ["0s", "100ms", "1s"]`
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawRetry {
    Preset(String),
    Schedule(Vec<String>),
}
