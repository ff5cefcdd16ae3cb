//! From the raw TOML mirror to a [`Scenario`], with every default and every range check in one
//! place.

use std::path::Path;
use std::time::Duration;

use super::error::SourceMap;
use super::raw::{RawPoll, RawRetry, RawScenario, RawStream, S};
use super::sweep::Sweep;
use super::thresholds::{Threshold, Thresholds};
use super::*;

mod faults;
mod values;

/// Most clients a scenario may name. What one machine can run is checked when `run` starts,
/// against the open-file limit it really has ([`crate::scenario::Scenario::descriptors_needed`]); this
/// bound only keeps client ids and per-client arrays within reason.
pub const MAX_CLIENTS: i64 = 100_000_000;

/// Most repetitions of a run: enough for a tight interval, few enough to finish.
pub const MAX_REPEAT: i64 = 100;

/// Most topics a scenario may name: each is a log of its own in the server (a few hundred
/// bytes before its events) and a list of times in the model.
pub const MAX_TOPICS: i64 = 10_000_000;

/// Longest round trip or jitter a `[network]` may have.
const MAX_TRIP: Duration = Duration::from_secs(60);

/// Most cores a `[server]` may have (a model's capacity search goes this far).
pub const MAX_CORES: i64 = 4096;

/// `resolved`: the text is a loaded scenario's own ([`Scenario::to_toml`]), whose modes a
/// command line may have narrowed, so that a fault is left no mode to act on: it then does
/// nothing, where a file's fault that none of its modes can feel is a mistake.
pub(super) fn parse(path: &Path, text: &str, resolved: bool) -> Result<Scenario, ScenarioError> {
    let map = SourceMap::new(path, text);
    let raw: RawScenario = toml::from_str(text).map_err(|e| map.toml_error(&e))?;
    Check { map, resolved }.scenario(raw)
}

struct Check<'a> {
    map: SourceMap<'a>,
    /// Whether the text is a loaded scenario's own (see [`parse`]).
    resolved: bool,
}

impl Check<'_> {
    fn scenario(&self, raw: RawScenario) -> Result<Scenario, ScenarioError> {
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(self.map.error(
                raw.name.span(),
                "name",
                "expected a non-empty name of letters, digits, `-` and `_` (it names the report folder)",
            ));
        }
        let events = &raw.events;
        let topics = self.int(&events.topics, "events.topics", 1, 1..=MAX_TOPICS)? as u32;
        let clients = self.int(
            &Some(raw.clients.count.clone()),
            "clients.count",
            0,
            1..=MAX_CLIENTS,
        )? as u32;
        let scenario = Scenario {
            name,
            description: raw
                .description
                .as_ref()
                .map(|d| d.get_ref().trim().to_string())
                .unwrap_or_default(),
            seed: self.int(&raw.seed, "seed", 1, 0..=i64::MAX)? as u64,
            repeat: self.int(&raw.repeat, "repeat", 1, 1..=MAX_REPEAT)? as u32,
            duration: self.duration(&Some(raw.duration.clone()), "duration", Duration::ZERO, true)?,
            warmup: self.duration(&raw.warmup, "warmup", Duration::from_secs(1), false)?,
            drain: self.duration(&raw.drain, "drain", Duration::from_secs(5), false)?,
            late_after: match &raw.late_after {
                None => None,
                Some(_) => Some(self.duration(&raw.late_after, "late_after", Duration::ZERO, true)?),
            },
            modes: self.modes(&raw.modes)?,
            events: Events {
                rate: self.float(&Some(events.rate.clone()), "events.rate", 0.0, 1e-6..=1e6)?,
                arrival: self.arrival(&events.arrival)?,
                burst_size: self.int(&events.burst_size, "events.burst_size", 10, 1..=1_000_000)? as u32,
                burst_gap: self.duration(
                    &events.burst_gap,
                    "events.burst_gap",
                    Duration::from_secs(1),
                    false,
                )?,
                topics,
                payload_bytes: self.int(&events.payload_bytes, "events.payload_bytes", 256, 0..=1 << 20)?
                    as usize,
                retention: Retention {
                    count: self.int(
                        &events.retention.as_ref().and_then(|r| r.count.clone()),
                        "events.retention.count",
                        100_000,
                        1..=100_000_000,
                    )? as usize,
                    age: self.duration(
                        &events.retention.as_ref().and_then(|r| r.age.clone()),
                        "events.retention.age",
                        Duration::from_secs(600),
                        true,
                    )?,
                },
            },
            clients: Clients {
                count: clients,
                topics_per_client: self.int(
                    &raw.clients.topics_per_client,
                    "clients.topics_per_client",
                    1,
                    1..=topics as i64,
                )? as u32,
            },
            poll: self.poll(&raw.poll, "poll")?,
            conditional_poll: self.poll(&raw.conditional_poll, "conditional_poll")?,
            long_poll: LongPollParams {
                wait: self.duration_in(
                    &raw.long_poll.as_ref().and_then(|l| l.wait.clone()),
                    "long_poll.wait",
                    Duration::from_secs(30),
                    Duration::from_millis(1)..=Duration::from_secs(600),
                )?,
                limit: self.int(
                    &raw.long_poll.as_ref().and_then(|l| l.limit.clone()),
                    "long_poll.limit",
                    100,
                    1..=100,
                )? as u32,
            },
            sse: self.stream(&raw.sse, "sse")?,
            websocket: self.stream(&raw.websocket, "websocket")?,
            webhook: self.webhook(&raw, clients)?,
            server: ServerParams {
                cores: match raw.server.as_ref().and_then(|s| s.cores.clone()) {
                    None => None,
                    cores => Some(self.int(&cores, "server.cores", 1, 1..=MAX_CORES)? as u32),
                },
                p99_target: match raw.server.as_ref().and_then(|s| s.p99_target.clone()) {
                    None => None,
                    target => Some(self.duration_in(
                        &target,
                        "server.p99_target",
                        Duration::ZERO,
                        Duration::from_micros(1)..=Duration::from_secs(3600),
                    )?),
                },
                max_held_long_polls: match raw.server.as_ref().and_then(|s| s.max_held_long_polls.clone()) {
                    None => None,
                    n => Some(self.int(&n, "server.max_held_long_polls", 1, 1..=MAX_CLIENTS)? as u64),
                },
                max_subscriptions: match raw.server.as_ref().and_then(|s| s.max_subscriptions.clone()) {
                    None => None,
                    n => Some(self.int(&n, "server.max_subscriptions", 1, 1..=MAX_CLIENTS)? as u64),
                },
                max_connections: match raw.server.as_ref().and_then(|s| s.max_connections.clone()) {
                    None => None,
                    n => Some(self.int(&n, "server.max_connections", 1, 1..=MAX_CLIENTS)? as u64),
                },
            },
            network: self.network(&raw)?,
            thresholds: self.thresholds(&raw)?,
            faults: Vec::new(),
            sweep: None,
        };
        let scenario = Scenario {
            faults: self.faults(&raw, &scenario)?,
            ..scenario
        };
        self.with_sweep(scenario, &raw)
    }

    /// Attaches `[sweep]`, after building every point so a bad path or value is reported here,
    /// at the key it concerns.
    fn with_sweep(&self, mut scenario: Scenario, raw: &RawScenario) -> Result<Scenario, ScenarioError> {
        let Some(table) = &raw.sweep else {
            return Ok(scenario);
        };
        let span_of = |path: Option<&str>| {
            path.and_then(|p| table.get_ref().keys().find(|k| k.get_ref() == p))
                .map_or(table.span(), |k| k.span())
        };
        let plain: std::collections::BTreeMap<String, toml::Value> = table
            .get_ref()
            .iter()
            .map(|(k, v)| (k.get_ref().clone(), v.get_ref().clone()))
            .collect();
        let mut sweep = Sweep::try_from(plain).map_err(|e| self.map.error(table.span(), "sweep", e))?;
        // Combine in the order the file lists the parameters (the first is the charts' x axis).
        sweep.params.sort_by_key(|p| span_of(Some(&p.path)).start);
        if sweep.params.is_empty() {
            return Err(self
                .map
                .error(table.span(), "sweep", "name at least one parameter to sweep"));
        }
        sweep.points(&scenario).map_err(|e| {
            let field = e
                .path
                .as_ref()
                .map_or("sweep".to_string(), |p| format!("sweep.\"{p}\""));
            self.map.error(span_of(e.path.as_deref()), &field, e.message)
        })?;
        scenario.sweep = Some(sweep);
        Ok(scenario)
    }

    fn network(&self, raw: &RawScenario) -> Result<NetworkParams, ScenarioError> {
        let get = |f: fn(&super::raw::RawNetwork) -> &Option<S<String>>| {
            raw.network.as_ref().and_then(|n| f(n).clone())
        };
        let round_trip = get(|n| &n.round_trip);
        let bandwidth = raw.network.as_ref().and_then(|n| n.bandwidth_mbps.clone());
        Ok(NetworkParams {
            round_trip: match round_trip {
                None => None,
                rt => Some(self.duration_in(
                    &rt,
                    "network.round_trip",
                    Duration::ZERO,
                    Duration::ZERO..=MAX_TRIP,
                )?),
            },
            jitter: self.duration_in(
                &get(|n| &n.jitter),
                "network.jitter",
                Duration::ZERO,
                Duration::ZERO..=MAX_TRIP,
            )?,
            bandwidth_mbps: match bandwidth {
                None => None,
                b => Some(self.float(&b, "network.bandwidth_mbps", 0.0, 1e-6..=1e7)?),
            },
        })
    }

    fn thresholds(&self, raw: &RawScenario) -> Result<Thresholds, ScenarioError> {
        let Some(map) = &raw.thresholds else {
            return Ok(Thresholds::default());
        };
        let mut out = Vec::new();
        for (name, condition) in map {
            let field = format!("thresholds.\"{}\"", name.get_ref());
            let (mode, metric) =
                Threshold::parse_name(name.get_ref()).map_err(|e| self.map.error(name.span(), &field, e))?;
            let (op, bound) = Threshold::parse_condition(metric, condition.get_ref())
                .map_err(|e| self.map.error(condition.span(), &field, e))?;
            out.push(Threshold {
                name: name.get_ref().clone(),
                condition: condition.get_ref().trim().to_string(),
                mode,
                metric,
                op,
                bound,
            });
        }
        Ok(Thresholds(out))
    }

    fn poll(&self, raw: &Option<RawPoll>, table: &str) -> Result<PollParams, ScenarioError> {
        let get = |f: fn(&RawPoll) -> &Option<S<String>>| raw.as_ref().and_then(|r| f(r).clone());
        Ok(PollParams {
            interval: self.duration(
                &get(|r| &r.interval),
                &format!("{table}.interval"),
                Duration::from_secs(1),
                true,
            )?,
            jitter: self.float(
                &raw.as_ref().and_then(|r| r.jitter.clone()),
                &format!("{table}.jitter"),
                0.1,
                0.0..=1.0,
            )?,
            schedule: self.poll_schedule(&get(|r| &r.schedule), &format!("{table}.schedule"))?,
            limit: self.int(
                &raw.as_ref().and_then(|r| r.limit.clone()),
                &format!("{table}.limit"),
                100,
                1..=100,
            )? as u32,
        })
    }

    fn stream(&self, raw: &Option<RawStream>, table: &str) -> Result<StreamParams, ScenarioError> {
        let r = raw.as_ref();
        let policy = match r.and_then(|r| r.slow_consumer.as_ref()) {
            None => SlowConsumer::Disconnect,
            Some(s) => match s.get_ref().as_str() {
                "disconnect" => SlowConsumer::Disconnect,
                "drop_oldest" => SlowConsumer::DropOldest,
                other => {
                    return Err(self.choice_error(
                        s,
                        &format!("{table}.slow_consumer"),
                        other,
                        &["disconnect", "drop_oldest"],
                    ))
                }
            },
        };
        Ok(StreamParams {
            buffer: self.int(
                &r.and_then(|r| r.buffer.clone()),
                &format!("{table}.buffer"),
                1024,
                1..=1_000_000,
            )? as usize,
            buffer_bytes: self.int(
                &r.and_then(|r| r.buffer_bytes.clone()),
                &format!("{table}.buffer_bytes"),
                default_buffer_bytes() as i64,
                1024..=1 << 30,
            )? as usize,
            slow_consumer: policy,
            heartbeat: self.duration(
                &r.and_then(|r| r.heartbeat.clone()),
                &format!("{table}.heartbeat"),
                Duration::from_secs(15),
                true,
            )?,
            retry: self.duration(
                &r.and_then(|r| r.retry.clone()),
                &format!("{table}.retry"),
                Duration::from_secs(1),
                false,
            )?,
        })
    }

    fn webhook(&self, raw: &RawScenario, clients: u32) -> Result<WebhookParams, ScenarioError> {
        let r = raw.webhook.as_ref();
        let retry = match r.and_then(|r| r.retry.as_ref()) {
            None => RetrySchedule::Preset(RetryPreset::Standard),
            Some(s) => match s.get_ref() {
                RawRetry::Preset(p) if p == "standard" => RetrySchedule::Preset(RetryPreset::Standard),
                RawRetry::Preset(p) if p == "github" => RetrySchedule::Preset(RetryPreset::Github),
                RawRetry::Preset(p) => {
                    return Err(self.choice_error(
                        s,
                        "webhook.retry",
                        p,
                        &["standard", "github", "[\"1s\", \"5s\", ...]"],
                    ))
                }
                RawRetry::Schedule(list) => RetrySchedule::Custom(
                    list.iter()
                        .map(|d| humane::parse(d).map_err(|m| self.map.error(s.span(), "webhook.retry", m)))
                        .collect::<Result<_, _>>()?,
                ),
            },
        };
        let concurrency = self.int(
            &r.and_then(|r| r.concurrency.clone()),
            "webhook.concurrency",
            256,
            1..=100_000,
        )? as usize;
        let sender = match r.and_then(|r| r.sender.as_ref()) {
            None => Sender::Dispatcher,
            Some(s) => match s.get_ref().as_str() {
                "dispatcher" => Sender::Dispatcher,
                "raw" => Sender::Raw,
                other => return Err(self.choice_error(s, "webhook.sender", other, &["dispatcher", "raw"])),
            },
        };
        Ok(WebhookParams {
            timeout: self.duration(
                &r.and_then(|r| r.timeout.clone()),
                "webhook.timeout",
                Duration::from_secs(15),
                true,
            )?,
            retry,
            time_scale: self.float(
                &r.and_then(|r| r.time_scale.clone()),
                "webhook.time_scale",
                1.0,
                1e-9..=1e6,
            )?,
            concurrency,
            endpoint_concurrency: match r.and_then(|r| r.endpoint_concurrency.clone()) {
                None => None,
                n => Some(self.int(&n, "webhook.endpoint_concurrency", 1, 1..=concurrency as i64)? as usize),
            },
            // The raw sender never signs, whatever `signing` says (a sweep of `sender` writes
            // both into every point).
            signing: sender == Sender::Dispatcher
                && r.and_then(|r| r.signing.as_ref()).is_none_or(|s| *s.get_ref()),
            sender,
            backlog: self.int(
                &r.and_then(|r| r.backlog.clone()),
                "webhook.backlog",
                default_backlog() as i64,
                1..=1_000_000_000,
            )? as u64,
            receiver_hosts: self.int(
                &r.and_then(|r| r.receiver_hosts.clone()),
                "webhook.receiver_hosts",
                clients.min(32) as i64,
                1..=250,
            )? as u32,
            receiver_fail_attempts: self.int(
                &r.and_then(|r| r.receiver_fail_attempts.clone()),
                "webhook.receiver_fail_attempts",
                0,
                0..=1000,
            )? as u32,
            disable_after: match r.and_then(|r| r.disable_after.clone()) {
                None => None,
                d => Some(self.duration(&d, "webhook.disable_after", Duration::ZERO, true)?),
            },
        })
    }

    fn modes(&self, raw: &Option<S<Vec<S<String>>>>) -> Result<Vec<Mode>, ScenarioError> {
        let Some(list) = raw else {
            return Ok(Mode::ALL.to_vec());
        };
        if list.get_ref().is_empty() {
            return Err(self.map.error(list.span(), "modes", "expected at least one mode"));
        }
        let names: Vec<String> = Mode::ALL.iter().map(|m| m.name().to_string()).collect();
        let mut modes = Vec::new();
        for item in list.get_ref() {
            let mode = item.get_ref().parse::<Mode>().map_err(|_| {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                self.choice_error(item, "modes", item.get_ref(), &names)
            })?;
            if modes.contains(&mode) {
                return Err(self
                    .map
                    .error(item.span(), "modes", format!("mode `{mode}` is listed twice")));
            }
            modes.push(mode);
        }
        Ok(modes)
    }

    fn arrival(&self, raw: &Option<S<String>>) -> Result<Arrival, ScenarioError> {
        let Some(s) = raw else {
            return Ok(Arrival::Poisson);
        };
        match s.get_ref().as_str() {
            "constant" => Ok(Arrival::Constant),
            "poisson" => Ok(Arrival::Poisson),
            "bursty" => Ok(Arrival::Bursty),
            other => Err(self.choice_error(s, "events.arrival", other, &["constant", "poisson", "bursty"])),
        }
    }

    fn poll_schedule(&self, raw: &Option<S<String>>, field: &str) -> Result<PollSchedule, ScenarioError> {
        let Some(s) = raw else {
            return Ok(PollSchedule::Fixed);
        };
        [PollSchedule::Fixed, PollSchedule::AfterAnswer]
            .into_iter()
            .find(|p| p.name() == s.get_ref())
            .ok_or_else(|| self.choice_error(s, field, s.get_ref(), &["fixed", "after_answer"]))
    }
}
