//! Scenario files: what a run does. Parsed once into `raw`, validated once into [`Scenario`].
//!
//! Every error names the file, line, column and field, and says what was expected. Nothing
//! downstream re-checks a scenario.

mod error;
pub mod faults;
mod host;
pub mod humane;
mod raw;
pub(crate) mod schedule;
pub mod sweep;
pub mod thresholds;
mod validate;
pub use validate::MAX_CORES;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::ScenarioError;
pub use faults::{DownAnswer, Fault, FaultKind, FaultPlan};
pub use host::{NetworkParams, ServerParams, DEFAULT_MAX_HELD_LONG_POLLS, DEFAULT_MAX_SUBSCRIPTIONS};
pub use schedule::Schedule;

/// The candidate closest to `word`, if any is close enough to be a plausible typo.
pub fn nearest_name<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    error::nearest(word, candidates)
}

use crate::event::{Mode, TopicId};
use thresholds::Thresholds;

/// A validated scenario with every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Short name; also the default report folder, `reports/<name>/`.
    pub name: String,
    /// What the scenario teaches.
    pub description: String,
    /// Seed of the event schedule and of the clients' jitter; every mode gets the same one.
    pub seed: u64,
    /// How many times each mode runs (the order of the modes rotated every round); the
    /// results keep every repetition and each figure's spread.
    #[serde(default = "one")]
    pub repeat: u32,
    /// How long events are generated and measured, after the warm-up.
    #[serde(with = "humane")]
    pub duration: Duration,
    /// Events of this first period are delivered but not counted.
    #[serde(with = "humane")]
    pub warmup: Duration,
    /// Grace after the generator stops for deliveries still in flight; what is missing then is lost.
    #[serde(with = "humane")]
    pub drain: Duration,
    /// A delivery slower than this counts as late (by default each mode's own: see
    /// [`Mode::late_after`]).
    #[serde(default, with = "humane::option", skip_serializing_if = "Option::is_none")]
    pub late_after: Option<Duration>,
    /// The modes to run, in order.
    pub modes: Vec<Mode>,
    /// The event generator.
    pub events: Events,
    /// The simulated clients (subscribers).
    pub clients: Clients,
    /// `poll` parameters.
    pub poll: PollParams,
    /// `conditional_poll` parameters.
    pub conditional_poll: PollParams,
    /// `long_poll` parameters.
    pub long_poll: LongPollParams,
    /// `sse` parameters.
    pub sse: StreamParams,
    /// `websocket` parameters.
    pub websocket: StreamParams,
    /// `webhook` parameters.
    pub webhook: WebhookParams,
    /// The server the scenario runs on.
    #[serde(default, skip_serializing_if = "ServerParams::is_unset")]
    pub server: ServerParams,
    /// The network between clients and server, as the simulator models it.
    #[serde(default, skip_serializing_if = "NetworkParams::is_unset")]
    pub network: NetworkParams,
    /// Conditions a run must meet (`pushpull run` exits 3 when one fails).
    #[serde(default, skip_serializing_if = "Thresholds::is_empty")]
    pub thresholds: Thresholds,
    /// What goes wrong during the run, and when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// Parameters to sweep: `run` executes one point per combination of their values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<sweep::Sweep>,
}

fn one() -> u32 {
    1
}

/// `[events]`: what the simulated application emits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Events {
    /// Events per second across all topics (within a burst, for `bursty`).
    pub rate: f64,
    /// The arrival process.
    pub arrival: Arrival,
    /// Events per burst (`bursty` only).
    pub burst_size: u32,
    /// Quiet time between bursts (`bursty` only).
    #[serde(with = "humane")]
    pub burst_gap: Duration,
    /// Number of topics; each event goes to one, chosen at random.
    pub topics: u32,
    /// Size of each event's payload.
    pub payload_bytes: usize,
    /// How much of each topic's log the server keeps.
    pub retention: Retention,
}

/// How event times are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Evenly spaced, `1/rate` apart.
    Constant,
    /// Exponential gaps with mean `1/rate`.
    Poisson,
    /// `burst_size` events at `rate`, then `burst_gap` of quiet.
    Bursty,
}

/// `[events.retention]`: the log keeps at most `count` events and none older than `age`, per topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retention {
    /// Events kept per topic.
    pub count: usize,
    /// Oldest event kept.
    #[serde(with = "humane")]
    pub age: Duration,
}

/// `[clients]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clients {
    /// Simulated clients (one subscriber each).
    pub count: u32,
    /// Topics each client follows.
    pub topics_per_client: u32,
}

/// `[poll]` and `[conditional_poll]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollParams {
    /// Time between polls.
    #[serde(with = "humane")]
    pub interval: Duration,
    /// How far each poll may stray from its slot, as a share of the interval (`± jitter`).
    pub jitter: f64,
    /// When the next poll is sent (results written before this existed polled after each
    /// answer).
    #[serde(default = "PollSchedule::after_answer")]
    pub schedule: PollSchedule,
    /// Events per page (at most 100); a full page is followed at once by the next.
    pub limit: u32,
}

impl PollParams {
    /// The longest a poller may go between two polls: its interval, with each fixed slot up
    /// to the jitter either side of its place (so two of them as much as twice the jitter
    /// further apart), or one jittered interval after an answer.
    pub fn longest_gap(&self) -> Duration {
        let strays = match self.schedule {
            PollSchedule::Fixed => 2.0,
            PollSchedule::AfterAnswer => 1.0,
        };
        self.interval.mul_f64(1.0 + strays * self.jitter)
    }
}

/// When a poller sends its next poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollSchedule {
    /// At a random phase + k × interval, each moved by up to ± jitter × interval without the
    /// moves adding up, whatever the answers took (as `setInterval` or cron do); a slot that
    /// passes while a poll is still out is skipped.
    Fixed,
    /// An interval (times a random factor in 1 ± jitter) after each answer arrives, so the
    /// period also holds the answer's round trip.
    AfterAnswer,
}

impl PollSchedule {
    fn after_answer() -> Self {
        PollSchedule::AfterAnswer
    }

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            PollSchedule::Fixed => "fixed",
            PollSchedule::AfterAnswer => "after_answer",
        }
    }
}

/// `[long_poll]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LongPollParams {
    /// How long the server holds a request with nothing to say.
    #[serde(with = "humane")]
    pub wait: Duration,
    /// Events per response (at most 100).
    pub limit: u32,
}

/// What the server does when a stream client's send queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlowConsumer {
    /// Close the connection (counted); the client reconnects and resumes from its cursor.
    Disconnect,
    /// Drop the oldest queued event (counted; the client loses it).
    DropOldest,
}

/// `[sse]` and `[websocket]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamParams {
    /// Events queued per client before the slow-consumer policy applies.
    pub buffer: usize,
    /// Bytes queued per client before the slow-consumer policy applies (whichever bound is
    /// reached first; one event larger than this still goes through alone).
    #[serde(default = "default_buffer_bytes")]
    pub buffer_bytes: usize,
    /// The slow-consumer policy.
    pub slow_consumer: SlowConsumer,
    /// Interval of keep-alive comments (SSE) or pings (WebSocket).
    #[serde(with = "humane")]
    pub heartbeat: Duration,
    /// How long a client waits before reconnecting (SSE sends it as `retry:`).
    #[serde(with = "humane")]
    pub retry: Duration,
}

/// 1 MiB, Centrifugo's default client queue size.
pub fn default_buffer_bytes() -> usize {
    1 << 20
}

/// When a failed webhook delivery is tried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RetrySchedule {
    /// A named preset: `standard` (Standard Webhooks / Svix) or `github` (no automatic retry).
    Preset(RetryPreset),
    /// Delays before each retry, after the first attempt.
    Custom(#[serde(with = "humane::list")] Vec<Duration>),
}

/// Named retry schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryPreset {
    /// Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (each ±20%).
    Standard,
    /// No automatic retry.
    Github,
}

/// Ten million deliveries: a few hundred MB (see `docs/scenarios.md`).
pub fn default_backlog() -> u64 {
    10_000_000
}

fn is_default_backlog(n: &u64) -> bool {
    *n == default_backlog()
}

/// Who POSTs the webhook deliveries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    /// The dispatcher: signed, with lanes per endpoint, timeouts, retries and dead letters.
    #[default]
    Dispatcher,
    /// The raw sender: POSTs of the same size over the same connection pools to the same
    /// receivers, with nothing else (no signing, no lanes, no retries; a failure is a dead
    /// letter at once), so that the dispatcher's throughput can be read as a share of what
    /// this machine can send at all.
    Raw,
}

impl Sender {
    fn is_dispatcher(&self) -> bool {
        *self == Sender::Dispatcher
    }

    /// The name scenario files use.
    pub fn name(self) -> &'static str {
        match self {
            Sender::Dispatcher => "dispatcher",
            Sender::Raw => "raw",
        }
    }
}

/// `[webhook]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookParams {
    /// How long the dispatcher waits for a receiver's answer.
    #[serde(with = "humane")]
    pub timeout: Duration,
    /// The retry schedule.
    pub retry: RetrySchedule,
    /// Multiplies every retry delay, to fit a real schedule into a short run.
    pub time_scale: f64,
    /// Deliveries in flight at once, across all endpoints.
    pub concurrency: usize,
    /// Deliveries in flight at once to one endpoint (default: a quarter of `concurrency`), so
    /// that a slow endpoint cannot hold every worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_concurrency: Option<usize>,
    /// Sign deliveries (Standard Webhooks) and verify them at the receiver.
    pub signing: bool,
    /// Deliveries that may wait at once, for a worker or for their retry; past it the
    /// sender holds the event generator back (see the dispatcher's doc).
    #[serde(default = "default_backlog", skip_serializing_if = "is_default_backlog")]
    pub backlog: u64,
    /// Who sends: the dispatcher, or the raw sender that measures this machine's ceiling.
    #[serde(default, skip_serializing_if = "Sender::is_dispatcher")]
    pub sender: Sender,
    /// Distinct loopback addresses (127.0.0.x) the receivers are spread over.
    pub receiver_hosts: u32,
    /// Each receiver answers 503 to the first this-many attempts of every message.
    pub receiver_fail_attempts: u32,
    /// An endpoint failing without a success for this long is disabled (default: 5 days, as
    /// Svix does, times `time_scale`).
    #[serde(default, with = "humane::option", skip_serializing_if = "Option::is_none")]
    pub disable_after: Option<Duration>,
}

impl WebhookParams {
    /// Deliveries in flight at once to one endpoint: `endpoint_concurrency`, or a quarter of
    /// `concurrency` (at least one).
    pub fn endpoint_concurrency(&self) -> usize {
        self.endpoint_concurrency
            .unwrap_or((self.concurrency / 4).max(1))
            .min(self.concurrency)
    }

    /// How long an endpoint may fail continuously before it is disabled.
    pub fn disable_after(&self) -> Duration {
        self.disable_after
            .unwrap_or_else(|| Duration::from_secs(5 * 24 * 3600).mul_f64(self.time_scale))
    }
}

impl Scenario {
    /// The `[poll]` or `[conditional_poll]` of a polling mode; None for the others.
    pub fn poller(&self, mode: Mode) -> Option<&PollParams> {
        match mode {
            Mode::Poll => Some(&self.poll),
            Mode::ConditionalPoll => Some(&self.conditional_poll),
            Mode::LongPoll | Mode::Sse | Mode::Websocket | Mode::Webhook => None,
        }
    }

    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            field: String::new(),
            message: format!("cannot read the file: {e}"),
            source_line: String::new(),
        })?;
        Scenario::parse(path, &text)
    }

    /// Validates scenario text; `path` is used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        validate::parse(path, text, false)
    }

    /// Validates the text of a scenario already loaded ([`Scenario::to_toml`]), as a server
    /// is given it to run one mode: its modes may have been narrowed on a command line
    /// (`--modes`), and a fault that none of them feels (a `stream_cut` in a run of long
    /// polls) does nothing rather than being refused as a file's would be.
    pub fn parse_resolved(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        validate::parse(path, text, true)
    }

    /// The topics client `i` follows: `topics_per_client` consecutive topics starting at `i`,
    /// so every topic has about the same number of followers.
    pub fn client_topics(&self, client: u32) -> Vec<TopicId> {
        let n = self.events.topics;
        (0..self.clients.topics_per_client)
            .map(|k| (client + k) % n)
            .collect()
    }

    /// Open files each process of a measured run needs: every client holds a connection in
    /// the driver and one in the server (pollers keep theirs alive, streams and long polls
    /// hold one), plus the listeners, the log and a margin for reconnections in flight.
    pub fn descriptors_needed(&self) -> u64 {
        let clients = u64::from(self.clients.count);
        clients + clients / 50 + 256
    }

    /// Mean events per second over the whole run (bursts averaged with their gaps).
    pub fn mean_event_rate(&self) -> f64 {
        let e = &self.events;
        match e.arrival {
            Arrival::Constant | Arrival::Poisson => e.rate,
            Arrival::Bursty => {
                let burst = e.burst_size as f64;
                burst / (burst / e.rate + e.burst_gap.as_secs_f64())
            }
        }
    }

    /// Mean events per second that one client receives.
    pub fn client_event_rate(&self) -> f64 {
        self.mean_event_rate() * self.clients.topics_per_client as f64 / self.events.topics as f64
    }

    /// The resolved scenario as TOML, every default written out.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("scenario serializes")
    }
}

impl RetrySchedule {
    /// Delays before each retry, scaled by `time_scale`, before jitter.
    pub fn delays(&self, time_scale: f64) -> Vec<Duration> {
        let base: Vec<Duration> = match self {
            RetrySchedule::Preset(RetryPreset::Standard) => [0u64, 5, 300, 1800, 7200, 18000, 36000, 36000]
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            RetrySchedule::Preset(RetryPreset::Github) => Vec::new(),
            RetrySchedule::Custom(d) => d.clone(),
        };
        base.into_iter().map(|d| d.mul_f64(time_scale)).collect()
    }
}
