//! Where every owed delivery went: exact counts per mode, per topic and per fault window.

use serde::{Deserialize, Serialize};

/// Where the owed deliveries ended up: `on_time + late + dead_lettered + lost = expected`,
/// always (a run where they do not add up is an error, not a report).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Deliveries owed: each event to each client following its topic.
    pub expected: u64,
    /// Arrived within `late_after`.
    pub on_time: u64,
    /// Arrived, later than `late_after`.
    pub late: u64,
    /// Did not arrive, and sit in the server's dead-letter list (replayable).
    pub dead_lettered: u64,
    /// Did not arrive, and nothing records them: lost.
    pub lost: u64,
    /// Arrivals of an event already had.
    pub duplicates: u64,
    /// Arrivals after a later event of the same topic.
    pub out_of_order: u64,
    /// Median latency of the late deliveries, ms.
    pub late_p50_ms: f64,
    /// 99th percentile latency of the late deliveries, ms.
    pub late_p99_ms: f64,
    /// Slowest late delivery, ms.
    pub late_max_ms: f64,
}

impl Outcomes {
    /// Deliveries that arrived.
    pub fn delivered(&self) -> u64 {
        self.on_time + self.late
    }

    /// Adds another run's outcomes (a merge). Counts add up exactly; the late percentiles
    /// become the larger of the two, an upper bound.
    pub fn absorb(&mut self, o: &Outcomes) {
        self.expected += o.expected;
        self.on_time += o.on_time;
        self.late += o.late;
        self.dead_lettered += o.dead_lettered;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.late_p50_ms = self.late_p50_ms.max(o.late_p50_ms);
        self.late_p99_ms = self.late_p99_ms.max(o.late_p99_ms);
        self.late_max_ms = self.late_max_ms.max(o.late_max_ms);
    }

    /// Whether the four outcomes add up to what was owed.
    pub fn adds_up(&self) -> bool {
        self.on_time + self.late + self.dead_lettered + self.lost == self.expected
    }
}

/// What a run (or a model) warns of the owed deliveries that never arrived: how many were
/// lost and how many sit in the dead-letter list, and, when a poller may go longer between
/// two polls than the drain lasts, that the followers of the last events may not have polled
/// again before it ended.
pub fn missing_warnings(
    s: &crate::scenario::Scenario,
    mode: crate::event::Mode,
    o: &Outcomes,
) -> Vec<String> {
    use crate::scenario::humane::format;
    let mut warnings = Vec::new();
    if o.lost > 0 {
        let why = match s.poller(mode).map(|p| (p, p.longest_gap())) {
            Some((p, gap)) if gap > s.drain => format!(
                ": the drain ({}) is shorter than the longest a poller may go between two polls ({}, its {} \
                 interval and a jitter of {}), so the followers of the last events may not have polled again; \
                 a drain of {} would wait for them",
                format(s.drain),
                format(gap),
                format(p.interval),
                p.jitter,
                format(gap),
            ),
            _ => String::new(),
        };
        warnings.push(format!(
            "{} of {} deliveries did not arrive by the end of the drain{why}",
            o.lost, o.expected
        ));
    }
    if o.dead_lettered > 0 {
        warnings.push(format!(
            "{} of {} deliveries did not arrive and sit in the dead-letter list",
            o.dead_lettered, o.expected
        ));
    }
    warnings
}

/// What a run (or a model) warns of connections the server turned away because it held its
/// most: how many, and the limit.
pub fn refused_warning(s: &crate::scenario::Scenario, refused: u64) -> Option<String> {
    (refused > 0).then(|| {
        let limit = match s.server.max_connections {
            Some(n) => format!("{n} at once (server.max_connections)"),
            None => "as many as its open-file limit allows, less what it keeps for itself".to_string(),
        };
        format!(
            "the server answered {refused} connections 503 and closed them: it holds {limit}, and {} clients \
             asked",
            s.clients.count
        )
    })
}

/// The accounting of the events scheduled during one fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultWindow {
    /// The fault, as the scenario gives it.
    pub fault: crate::scenario::Fault,
    /// `receiver_down 20% 2s–5s`.
    pub label: String,
    /// Clients it hit.
    pub clients_hit: u64,
    /// What became of the deliveries owed for events scheduled in the window (every client,
    /// hit or not).
    pub outcomes: Outcomes,
}

/// Exact counts of what was expected and what arrived.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deliveries {
    /// Events the generator emitted after the warm-up.
    pub events_measured: u64,
    /// Deliveries owed: each measured event to each client following its topic.
    pub expected: u64,
    /// Deliveries that arrived (first arrivals only).
    pub delivered: u64,
    /// Never arrived by the end of the drain, and not in the dead-letter list either.
    pub lost: u64,
    /// Arrivals of an event a client already had.
    pub duplicates: u64,
    /// Arrivals after a later event of the same topic.
    pub out_of_order: u64,
    /// Events the server reported as gone (expired cursor) when a client asked for them.
    pub gap_events: u64,
    /// Times clients had to connect again.
    pub reconnects: u64,
    /// Stream connections the server closed because the client fell behind.
    pub slow_disconnects: u64,
    /// Events the server dropped from full send queues (`drop_oldest`).
    pub dropped_oldest: u64,
    /// Stream connections the server closed for a `stream_cut` fault.
    #[serde(default)]
    pub stream_cuts: u64,
    /// Webhook messages the server gave up on (its own count: warm-up events included, and
    /// messages whose late answer arrived after the sender stopped waiting).
    pub dead_letters: u64,
    /// Webhook requests the receivers refused (bad signature, stale timestamp, missing header).
    pub rejected: u64,
    /// Client requests or connections that failed.
    pub client_errors: u64,
    /// Largest delay between an event's scheduled and actual emission, ms.
    pub generator_max_lag_ms: f64,
    /// Clients that missed at least one delivery owed to them.
    pub subscribers_with_loss: u64,
    /// Measured events the server counted handing to the clients (webhooks: 2xx answers),
    /// on its own side of the wire: the independent count the clients' arrivals are checked
    /// against (0 in older results).
    #[serde(default)]
    pub handed_by_server: u64,
    /// The same accounting per topic (summed over the clients following it).
    pub by_topic: Vec<TopicDeliveries>,
}

/// Delivery accounting for one topic, over every client that follows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDeliveries {
    /// The topic.
    pub topic: u32,
    /// Clients following it.
    pub subscribers: u64,
    /// Measured events emitted on it.
    pub events: u64,
    /// `events × subscribers`.
    pub expected: u64,
    /// First arrivals.
    pub delivered: u64,
    /// Not arrived, in the dead-letter list.
    #[serde(default)]
    pub dead_lettered: u64,
    /// `expected − delivered − dead_lettered`.
    pub lost: u64,
    /// Arrivals of an event already had.
    pub duplicates: u64,
    /// Arrivals after a later event of the topic.
    pub out_of_order: u64,
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::event::Mode;
    use crate::scenario::Scenario;

    fn scenario(drain: &str) -> Scenario {
        Scenario::parse(
            Path::new("d.toml"),
            &format!(
                "name = \"d\"\nduration = \"10s\"\ndrain = \"{drain}\"\nmodes = [\"poll\", \"sse\"]\n[events]\nrate = 1\n\
                 [clients]\ncount = 10\n[poll]\ninterval = \"30s\"\njitter = 0.1\nschedule = \"fixed\"\n"
            ),
        )
        .unwrap()
    }

    #[test]
    fn a_drain_shorter_than_a_pollers_longest_gap_is_named_as_the_cause_of_its_losses() {
        let o = Outcomes {
            expected: 100,
            on_time: 93,
            lost: 5,
            dead_lettered: 2,
            ..Outcomes::default()
        };
        // Fixed slots 30 s apart, each up to 3 s off its place: two polls as much as 36 s apart.
        let short = missing_warnings(&scenario("30s"), Mode::Poll, &o);
        assert_eq!(short.len(), 2, "{short:?}");
        assert!(
            short[0]
                .starts_with("5 of 100 deliveries did not arrive by the end of the drain: the drain (30s)")
                && short[0].contains("(36s, its 30s interval and a jitter of 0.1)"),
            "{short:?}"
        );
        assert_eq!(
            short[1],
            "2 of 100 deliveries did not arrive and sit in the dead-letter list"
        );
        // A long enough drain, or a mode that does not poll: the losses alone.
        let plain = "5 of 100 deliveries did not arrive by the end of the drain";
        assert_eq!(missing_warnings(&scenario("36s"), Mode::Poll, &o)[0], plain);
        assert_eq!(missing_warnings(&scenario("30s"), Mode::Sse, &o)[0], plain);
        let none = Outcomes {
            expected: 100,
            on_time: 100,
            ..Outcomes::default()
        };
        assert!(missing_warnings(&scenario("30s"), Mode::Poll, &none).is_empty());
    }
}
