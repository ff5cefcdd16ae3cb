//! From raw measurements of one mode to its [`ModeResult`].

use super::accounting::{self, Owed};
use crate::api::{Emitted, StatsSnapshot};
use crate::modes::{Given, Mode};
use crate::recorder::{ClientCounts, Latencies, Ledger};
use crate::results::{
    ClientCost, Deliveries, DrainCost, LatencySummary, ModeResult, Sample, ServerCost, TopicDeliveries,
};
use crate::scenario::Scenario;

/// Everything measured during one mode.
pub(super) struct Measured<'a> {
    pub scenario: &'a Scenario,
    pub mode: Mode,
    pub emitted: Emitted,
    pub expected: u64,
    pub latencies: Latencies,
    /// How late the pollers' requests left against their slots.
    pub poll_sends: crate::clock::Lateness,
    /// The measured round trip between the idle driver and server, ms.
    pub round_trip_ms: f64,
    pub ledgers: Vec<Ledger>,
    /// What the server counted handing each client (webhooks: 2xx answers from it).
    pub handed: Vec<u64>,
    /// Whether the drain ended because everything was in, not because its grace ran out.
    pub drained: bool,
    /// The server's counters from the end of the warm-up to the end of the schedule: what
    /// costs are counted over.
    pub server: StatsSnapshot,
    /// The same from the end of the warm-up to the end of the drain: what outcomes (retries,
    /// dead letters, disconnects) are counted over, wherever they fell.
    pub whole: StatsSnapshot,
    /// Seconds between those two readings.
    pub measured_seconds: f64,
    /// First deliveries that arrived inside that window, the warm-up's events' too: what its
    /// costs were spent on.
    pub deliveries_in_window: u64,
    /// What TCP counted on the server's connections over the same window as `server`.
    pub tcp: crate::api::TcpReading,
    /// What the drain cost, apart.
    pub drain: DrainCost,
    pub memory: Memory,
    /// The driver's CPU over the same window as `server`.
    pub driver_cpu_seconds: f64,
    pub driver_peak_rss_bytes: u64,
    /// The driver's share of the cores, for its per-second saturation warning.
    pub driver_share_cores: f64,
    pub timeseries: Vec<Sample>,
    pub drain_seconds: f64,
    /// The run's clock and fault windows.
    pub timeline: crate::recorder::Timeline,
    /// Which clients each fault hit.
    pub plan: crate::scenario::FaultPlan,
    /// `(client, topic, seq)` of every dead letter.
    pub dead: std::collections::HashSet<(u32, crate::event::TopicId, crate::event::Seq)>,
}

/// The server's memory readings, bytes.
pub(super) struct Memory {
    /// Before any client connected.
    pub baseline: u64,
    /// At the end of the window.
    pub steady: u64,
    /// What the event log held then.
    pub log: u64,
    /// The process's peak (VmHWM) at the end of the drain.
    pub peak: u64,
}

/// Requests the server handled, plus, for webhooks, the requests it made.
fn requests(st: &StatsSnapshot) -> u64 {
    st.requests_total + st.webhook.attempts
}

/// The drain's cost from the server's counters over it (`drain` = end of drain since end of
/// window), the deliveries that arrived in it and the driver's CPU.
pub(super) fn drain_cost(drain: &StatsSnapshot, deliveries: u64, driver_cpu_seconds: f64) -> DrainCost {
    DrainCost {
        deliveries,
        requests: requests(drain),
        bytes: drain.counters.bytes_read + drain.counters.bytes_written,
        server_cpu_seconds: drain.server_cpu_seconds(),
        driver_cpu_seconds,
    }
}

/// Sums the ledgers per topic, with what the accounting found missing, and counts the
/// clients that missed something.
fn by_topic(ledgers: &[Ledger], measured: &[u64], missing: &[(u64, u64)]) -> (Vec<TopicDeliveries>, u64) {
    let mut topics: Vec<TopicDeliveries> = measured
        .iter()
        .zip(missing)
        .enumerate()
        .map(|(t, (&events, &(dead_lettered, lost)))| TopicDeliveries {
            topic: t as u32,
            events,
            dead_lettered,
            lost,
            ..TopicDeliveries::default()
        })
        .collect();
    let mut with_loss = 0;
    for ledger in ledgers {
        let mut owed = 0;
        for (t, c) in ledger.topic_counts() {
            let row = &mut topics[t as usize];
            row.subscribers += 1;
            row.expected += row.events;
            row.delivered += c.delivered;
            row.duplicates += c.duplicates;
            row.out_of_order += c.out_of_order;
            owed += row.events;
        }
        if ledger.counts.delivered < owed {
            with_loss += 1;
        }
    }
    topics.retain(|row| row.subscribers > 0);
    (topics, with_loss)
}

/// The mode's result; an error when the delivery accounting does not add up.
pub(super) fn mode_result(m: Measured<'_>) -> anyhow::Result<ModeResult> {
    let mut counts = ClientCounts::default();
    for l in &m.ledgers {
        counts += l.counts;
    }
    let accounted = accounting::account(
        &m.ledgers,
        &m.latencies,
        &Owed {
            scenario: m.scenario,
            mode: m.mode,
            emitted: &m.emitted,
            timeline: &m.timeline,
            plan: &m.plan,
            dead: &m.dead,
        },
    )?;
    let (outcomes, fault_windows) = (accounted.whole, accounted.windows);
    let strict = m.drained && m.scenario.faults.is_empty();
    let handed_by_server = accounting::check_handed(m.mode, &m.ledgers, &m.handed, strict)?;
    anyhow::ensure!(
        outcomes.expected == m.expected,
        "the clients' topics owe {} deliveries, the generator's counts {}: the accounting is wrong",
        outcomes.expected,
        m.expected
    );
    let (by_topic, subscribers_with_loss) =
        by_topic(&m.ledgers, &m.emitted.measured, &accounted.missing_by_topic);
    let (after, whole) = (&m.server, &m.whole);
    let mut warnings = crate::results::missing_warnings(m.scenario, m.mode, &outcomes);
    warnings.extend(crate::results::refused_warning(
        m.scenario,
        whole.counters.connections_refused,
    ));
    if whole.webhook.intake_held_ns > 0 {
        warnings.push(format!(
            "the webhook backlog reached its bound ({} deliveries waiting) and held the event generator back for \
             {:.3} s in all: intake slowed to what the sender delivered, and the events' lateness shows it \
             (generator p99 {:.3} ms late)",
            m.scenario.webhook.backlog,
            whole.webhook.intake_held_ns as f64 / 1e9,
            m.emitted.lateness.p99_ns as f64 / 1e6,
        ));
    }
    let lateness_ms = m.emitted.lateness.p50_ns as f64 / 1e6;
    let theory = m.mode.predict(
        m.scenario,
        &Given {
            // Conditioned on the events drawn: what each client was owed, per second.
            client_event_rate: m.expected as f64
                / f64::from(m.scenario.clients.count)
                / m.scenario.duration.as_secs_f64(),
            round_trip_ms: m.round_trip_ms,
            generator_ms: lateness_ms,
            round_trip_modelled: false,
        },
    );
    // Deliveries per second (all of them over the window) says more than a mode that fell
    // behind kept up with.
    let after_window = m.drain.deliveries;
    let (behind, keeping_up) = crate::results::throughput::fell_behind(
        counts.delivered,
        after_window,
        theory.latency_mean_ms,
        m.measured_seconds,
    );
    if behind {
        let sustained = match crate::results::throughput::sustained(&m.timeseries) {
            Some(s) => format!(
                "once deliveries flowed it sustained {:.0} a second (the median of {} whole seconds)",
                s.median, s.seconds
            ),
            None => format!(
                "within it, {:.0} a second arrived",
                counts.delivered.saturating_sub(after_window) as f64 / m.measured_seconds
            ),
        };
        warnings.push(format!(
            "{after_window} of the {} deliveries arrived after the measured window, in the drain, more than twice \
             the {keeping_up:.0} a mode keeping up would leave it (its theory's mean latency): it fell behind the \
             events, and deliveries per second counts them all over the window; {sustained}",
            counts.delivered,
        ));
    }
    let requests = requests(after);
    let server_cpu = after.server_cpu_seconds();
    let driver_cpu = m.driver_cpu_seconds;
    let wall = m.measured_seconds;
    let driver_share = if wall > 0.0 { driver_cpu / wall } else { 0.0 };
    let noise = super::noise::judge(&m.timeseries, m.driver_share_cores);
    let saturated = noise.saturated;
    warnings.extend(noise.warnings);
    let latency = LatencySummary::from_histogram(&m.latencies.scheduled);
    if latency.count > 0 && lateness_ms > 0.1 * latency.p50_ms {
        warnings.push(format!(
            "the generator emitted events {lateness_ms:.3} ms late at the median, more than a tenth of the median \
             latency ({:.3} ms): that much of it is the instrument",
            latency.p50_ms
        ));
    }
    let mem = &m.memory;
    Ok(ModeResult {
        mode: m.mode,
        theory,
        latency,
        latency_from_emission: LatencySummary::from_histogram(&m.latencies.emitted),
        deliveries: Deliveries {
            events_measured: m.emitted.measured.iter().sum(),
            expected: m.expected,
            delivered: counts.delivered,
            lost: outcomes.lost,
            duplicates: counts.duplicates,
            out_of_order: counts.out_of_order,
            gap_events: counts.gap_events,
            reconnects: counts.reconnects,
            slow_disconnects: whole.counters.slow_disconnects,
            dropped_oldest: whole.counters.dropped_oldest,
            stream_cuts: whole.counters.stream_cuts,
            dead_letters: whole.webhook.dead_letters,
            rejected: counts.rejected,
            client_errors: counts.errors,
            generator_max_lag_ms: m.emitted.max_lag_ns as f64 / 1e6,
            subscribers_with_loss,
            handed_by_server,
            by_topic,
        },
        server: ServerCost {
            requests,
            requests_per_second: if wall > 0.0 { requests as f64 / wall } else { 0.0 },
            requests_by_route: after.requests.clone(),
            empty_responses: after.counters.empty_responses,
            bytes_read: after.counters.bytes_read,
            bytes_written: after.counters.bytes_written,
            cpu_seconds: server_cpu,
            generator_spin_cpu_seconds: after.counters.generator_spin_ns as f64 / 1e9,
            census_cpu_seconds: after.counters.census_ns as f64 / 1e9,
            peak_rss_bytes: mem.peak,
            peak_connections: whole.counters.peak_connections,
            connections_refused: whole.counters.connections_refused,
            rss_baseline_bytes: mem.baseline,
            rss_steady_bytes: mem.steady,
            log_bytes: mem.log,
            memory_per_client_bytes: mem.steady.saturating_sub(mem.baseline + mem.log) as f64
                / f64::from(m.scenario.clients.count),
            webhook: whole.webhook,
            tcp: m.tcp,
            deliveries_in_window: Some(m.deliveries_in_window),
            heartbeats: m.mode.streams().then_some(after.counters.heartbeats),
            voluntary_switches: Some(after.process.voluntary_switches),
            involuntary_switches: Some(after.process.involuntary_switches),
            ..ServerCost::default()
        }
        .with_ratios(m.deliveries_in_window),
        client: ClientCost {
            requests: counts.requests,
            cpu_seconds: driver_cpu,
            cpu_share_of_core: driver_share,
            peak_rss_bytes: m.driver_peak_rss_bytes,
            saturated,
        },
        late_after_ms: m.timeline.late_after_ns as f64 / 1e6,
        latency_over_time: accounting::latency_over_time(&m.latencies),
        outcomes,
        fault_windows,
        timeseries: m.timeseries,
        measured_seconds: m.measured_seconds,
        deliveries_per_second: if m.measured_seconds > 0.0 {
            counts.delivered as f64 / m.measured_seconds
        } else {
            0.0
        },
        drain_seconds: m.drain_seconds,
        drain: m.drain,
        generator: m.emitted.lateness,
        poll_sends: m.poll_sends,
        warnings,
        repetitions: Vec::new(),
        spread: Default::default(),
    })
}
