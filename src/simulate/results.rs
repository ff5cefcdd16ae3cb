//! A simulated run as results: the same schema `run` writes, marked simulated, with the
//! figures the model does not produce listed (and left at zero).

use std::time::Duration;

use super::server::Server;
use super::{long_poll, poll, stream, webhook, Model, Outcome, Progress, Wire};
use crate::environment::{in_parallel, threads_for};
use crate::event::Mode;
use crate::results::{
    Deliveries, Environment, FaultWindow, Figure, LatencySummary, ModeResult, ModelServer, Outcomes, Results,
    Simulated, SweepPoint, SweptValue, SCHEMA_VERSION,
};
use crate::scenario::Scenario;

/// Headline figures the model gives only from a calibration that has them: packets, from
/// its TCP segments per request, event and connection (calibrations written before those
/// were fitted have none).
pub const NOT_MODELLED: [Figure; 1] = [Figure::PacketsPerEvent];

/// Why a scenario cannot be simulated yet, if it cannot.
pub fn unsupported(s: &Scenario) -> Option<String> {
    let points = s
        .sweep
        .as_ref()
        .and_then(|p| p.points(s).ok())
        .unwrap_or_default();
    std::iter::once(s)
        .chain(points.iter().map(|p| &p.scenario))
        .find_map(unsupported_point)
}

fn unsupported_point(s: &Scenario) -> Option<String> {
    if s.modes.contains(&Mode::Webhook) && s.webhook.sender == crate::scenario::Sender::Raw {
        return Some(
            "the model has the dispatcher only: the raw sender (`[webhook] sender = \"raw\"`) measures what this \
             machine can send, which only `run` can do"
                .into(),
        );
    }
    if s.modes.contains(&Mode::Webhook) && s.webhook.backlog != crate::scenario::default_backlog() {
        return Some(format!(
            "the model does not bound the webhook backlog: `[webhook] backlog = {}` holds the real generator back, \
             which only `run` does; leave it out to simulate",
            s.webhook.backlog
        ));
    }
    // `run` is refused at registration (409) past the server's subscriptions; so is the model.
    let most = s
        .server
        .max_subscriptions
        .unwrap_or(crate::scenario::DEFAULT_MAX_SUBSCRIPTIONS);
    if s.modes.contains(&Mode::Webhook) && u64::from(s.clients.count) > most {
        return Some(format!(
            "{} webhook clients are more subscriptions than the server holds ({most}): `run` would be refused at \
             registration, so the model is too; raise `[server] max_subscriptions`",
            s.clients.count
        ));
    }
    None
}

/// What a simulation reports as it goes: each mode's simulated time, and for a sweep each
/// point finished. Called from the threads that run a sweep's points.
pub trait Watch: Sync {
    /// `mode`'s model has reached `at_ns` of simulated time (a run without a sweep).
    fn at(&self, _mode: Mode, _at_ns: u64) {}
    /// `done` of a sweep's `total` points are finished.
    fn points_done(&self, _done: usize, _total: usize) {}
    /// The capacity search for `mode` ran its model on `cores` cores and found `p99_ms`.
    fn probed(&self, _mode: Mode, _cores: u32, _p99_ms: f64) {}
}

/// A [`Watch`] that shows nothing.
pub struct Unwatched;

impl Watch for Unwatched {}

/// Simulates every mode of `s` on `model` (every point of its sweep, the points in parallel
/// across the cores), as results recorded on `environment`, telling `watch` how far it is.
pub fn simulate(
    s: &Scenario,
    model: &Model,
    environment: Environment,
    watch: &dyn Watch,
) -> anyhow::Result<Results> {
    if let Some(why) = unsupported(s) {
        anyhow::bail!(why);
    }
    let points = match &s.sweep {
        Some(plan) => plan.points(s).map_err(|e| anyhow::anyhow!(e.message))?,
        None => Vec::new(),
    };
    // A sweep runs as many points at once as there are cores.
    let at_once = threads_for(points.len()).max(1) as u64;
    for p in points.iter().map(|p| &p.scenario).chain([s]) {
        fits(p, at_once, &environment)?;
    }
    let calibrated = &model.calibration.environment;
    let net = model.network(s);
    let simulated = Some(Simulated {
        round_trip_ms: net.round_trip.as_secs_f64() * 1000.0,
        jitter_ms: net.jitter.as_secs_f64() * 1000.0,
        bandwidth_mbps: net.bandwidth_mbps,
        not_modelled: if model.calibration.packets.is_empty() {
            NOT_MODELLED.to_vec()
        } else {
            Vec::new()
        },
        capacity: Vec::new(),
        server: Some(ModelServer {
            cores: model.cores,
            calibrated_on: format!(
                "{} ({}, {} cores)",
                calibrated.hostname, calibrated.cpu_model, calibrated.cores
            ),
            calibrated_at: calibrated.started_at.clone(),
            same_machine: calibrated.hostname == environment.hostname
                && calibrated.cpu_model == environment.cpu_model,
            clients_beside: model.clients_beside,
            falls_asleep_ns: model.calibration.falls_asleep_ns,
            falls_asleep_alike_ns: model.calibration.falls_asleep_alike_ns.clone(),
            crowded_at: u64::from(model.calibration.crowded_at),
            crowded_ns: model.calibration.cpu_ns(crate::calibration::Op::Crowded),
        }),
    });
    let mut results = Results {
        schema_version: SCHEMA_VERSION,
        scenario: s.clone(),
        environment,
        modes: Vec::new(),
        sources: Vec::new(),
        points: Vec::new(),
        simulated,
    };
    if points.is_empty() {
        results.modes = s
            .modes
            .iter()
            .map(|&mode| mode_result(s, mode, model, &|at| watch.at(mode, at)))
            .collect();
        if let (Some(target), Some(sim)) = (s.server.p99_target, results.simulated.as_mut()) {
            sim.capacity = capacities(s, model, target, watch);
        }
    } else {
        results.points = sweep(&points, model, watch);
    }
    Ok(results)
}

/// Each mode's capacity for `target`, the modes searched in parallel across the cores.
fn capacities(
    s: &Scenario,
    model: &Model,
    target: Duration,
    watch: &dyn Watch,
) -> Vec<crate::results::Capacity> {
    in_parallel(&s.modes, |&mode| {
        super::capacity::search(s, mode, model, target, &|cores, p99| {
            watch.probed(mode, cores, p99)
        })
    })
}

/// Every point of a sweep, the points spread over the cores (each model is single-threaded).
fn sweep(points: &[crate::scenario::sweep::Point], model: &Model, watch: &dyn Watch) -> Vec<SweepPoint> {
    use crate::scenario::sweep;
    let done = std::sync::atomic::AtomicUsize::new(0);
    in_parallel(points, |p| {
        let s = &p.scenario;
        let modes = s
            .modes
            .iter()
            .map(|&m| mode_result(s, m, model, &super::quietly))
            .collect();
        let values = p
            .values
            .iter()
            .map(|(path, v)| SweptValue {
                path: path.clone(),
                value: sweep::show(v),
                number: sweep::as_number(v),
            })
            .collect();
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        watch.points_done(n, points.len());
        SweepPoint {
            label: sweep::label(&p.values),
            values,
            scenario: s.clone(),
            modes,
        }
    })
}

/// Refuses a model that would not fit in the machine's available memory, `copies` of it
/// running at once.
fn fits(s: &Scenario, copies: u64, environment: &Environment) -> anyhow::Result<()> {
    let need = footprint(s) * copies;
    let available = environment.memory_available_bytes;
    anyhow::ensure!(
        available == 0 || need <= available / 10 * 8,
        "the model of {} clients and about {:.0} events needs about {:.1} GiB, more than 80% of the {:.1} GiB \
         this machine has available: use fewer clients, fewer events or a shorter duration",
        s.clients.count,
        events(s),
        need as f64 / GIB,
        available as f64 / GIB
    );
    Ok(())
}

const GIB: f64 = (1u64 << 30) as f64;

/// Events the schedule makes over the warm-up and the measured window, on average.
fn events(s: &Scenario) -> f64 {
    s.mean_event_rate() * (s.warmup + s.duration).as_secs_f64()
}

/// Bytes the largest mode's model holds at once, estimated from its arrays: per client its
/// topics, read positions and followers' entries (16 bytes a topic), its poll slots and its
/// place in the queue (about 100 bytes); per event its time (8 bytes), its place in the
/// schedule's list (16) and, for webhooks, its waiting deliveries (at most one per follower).
pub fn footprint(s: &Scenario) -> u64 {
    let clients = u64::from(s.clients.count);
    let per_client = 16 * u64::from(s.clients.topics_per_client) + 100;
    clients * per_client + (events(s) * 24.0) as u64 + (64 << 20)
}

/// One mode's model run: its server (with the operations it served in the window) and what
/// became of its deliveries.
fn play(s: &Scenario, mode: Mode, model: &Model, cores: u32, progress: Progress) -> (Server, Outcome) {
    let net = model.network(s);
    let mut server = Server::new(s, &model.calibration, cores);
    if model.clients_beside {
        server = server.with_clients_beside(&model.calibration, mode);
    }
    let mut wire = match model.bytes(s, mode) {
        Some(bytes) => Wire::new(&net, bytes, s.seed),
        None => Wire::plain(&net),
    };
    let wire = &mut wire;
    let o = match mode {
        Mode::Poll => poll::run(s, false, wire, &mut server, progress),
        Mode::ConditionalPoll => poll::run(s, true, wire, &mut server, progress),
        Mode::LongPoll => long_poll::run(s, wire, &mut server, progress),
        Mode::Sse | Mode::Websocket => stream::run(s, mode, wire, &mut server, progress),
        Mode::Webhook => webhook::run(s, wire, &mut server, progress),
    };
    (server, o)
}

/// The operations the model's server served in the measured window of one mode's run of `s`
/// ([`crate::calibration::Op::Wake`] among them: what the calibration's fit needs of the model).
pub fn operations(s: &Scenario, mode: Mode, model: &Model) -> crate::calibration::Counts {
    play(
        s,
        mode,
        model,
        s.server.cores.unwrap_or(model.cores),
        &super::quietly,
    )
    .0
    .counts
}

/// One mode's model run, as a mode's results: its CPU, bytes and memory charged at the
/// model's calibrated costs.
pub fn mode_result(s: &Scenario, mode: Mode, model: &Model, progress: Progress) -> ModeResult {
    let net = model.network(s);
    // A sweep's point may set its own cores.
    let cores = s.server.cores.unwrap_or(model.cores);
    let (server, o) = play(s, mode, model, cores, progress);
    let seconds = s.duration.as_secs_f64();
    let given = crate::results::Given {
        client_event_rate: o.expected as f64 / f64::from(s.clients.count) / seconds,
        round_trip_ms: net.round_trip.as_secs_f64() * 1000.0,
        generator_ms: 0.0,
        round_trip_modelled: true,
    };
    let late_after = mode.late_after(s);
    let latency = LatencySummary::from_histogram(&o.latency);
    let lost = o.expected - o.delivered - o.dead_letters;
    let theory = mode.predict(s, &given);
    let cost = super::charge::charged(s, mode, model, &server, &o);
    let outcomes = outcomes(o.expected, &o.latency, o.dead_letters, o.duplicates, late_after);
    let mut warnings = crate::results::missing_warnings(s, mode, &outcomes);
    warnings.extend(crate::results::refused_warning(s, o.connections_refused));
    warnings.extend(super::charge::saturation(s, cores, &server, cost.cpu_seconds));
    warnings.extend(super::charge::sender_saturation(s, &o));
    warnings.extend(super::charge::unpriced(model, &server, &o));
    ModeResult {
        mode,
        theory,
        latency_from_emission: latency.clone(),
        latency,
        deliveries: Deliveries {
            events_measured: o.events,
            expected: o.expected,
            delivered: o.delivered,
            lost,
            dead_letters: o.dead_letters,
            duplicates: o.duplicates,
            reconnects: o.reconnects,
            stream_cuts: o.stream_cuts,
            slow_disconnects: o.slow_disconnects,
            dropped_oldest: o.dropped_oldest,
            client_errors: o.client_errors,
            handed_by_server: o.delivered,
            ..Deliveries::default()
        },
        generator: Default::default(),
        poll_sends: Default::default(),
        server: cost,
        client: Default::default(),
        outcomes,
        late_after_ms: late_after.as_secs_f64() * 1000.0,
        fault_windows: fault_windows(s, mode, &o, late_after),
        latency_over_time: o.timeline.as_ref().map(|t| t.latency()).unwrap_or_default(),
        timeseries: o.timeline.as_ref().map(|t| t.samples()).unwrap_or_default(),
        measured_seconds: seconds,
        deliveries_per_second: o.delivered as f64 / seconds,
        drain_seconds: s.drain.as_secs_f64(),
        drain: Default::default(),
        warnings,
        repetitions: Vec::new(),
        spread: Default::default(),
    }
}

/// What became of the deliveries owed for each fault window's events, for the faults that
/// touch `mode`, as `run` reports them.
fn fault_windows(s: &Scenario, mode: Mode, o: &Outcome, late_after: Duration) -> Vec<FaultWindow> {
    if s.faults.is_empty() {
        return Vec::new();
    }
    let plan = crate::scenario::FaultPlan::new(&s.faults, s.clients.count, s.seed);
    s.faults
        .iter()
        .zip(&o.windows)
        .enumerate()
        .filter(|(_, (f, _))| f.kind.applies_to(mode))
        .map(|(i, (f, w))| FaultWindow {
            fault: f.clone(),
            label: f.label(),
            clients_hit: (0..s.clients.count).filter(|&c| plan.hits(i, c)).count() as u64,
            outcomes: outcomes(w.expected, &w.latency, w.dead_letters, w.duplicates, late_after),
        })
        .collect()
}

/// Where `expected` owed deliveries went, given the latency of those delivered: late ones
/// those slower than `late_after`, the rest of the undelivered lost.
fn outcomes(
    expected: u64,
    latency: &hdrhistogram::Histogram<u64>,
    dead_lettered: u64,
    duplicates: u64,
    late_after: Duration,
) -> Outcomes {
    let late_us = late_after.as_micros() as u64;
    let mut late_h = crate::results::histogram::new_histogram();
    for v in latency
        .iter_recorded()
        .filter(|v| v.value_iterated_to() > late_us)
    {
        late_h.saturating_record_n(v.value_iterated_to(), v.count_at_value());
    }
    let late = late_h.len();
    let delivered = latency.len();
    let ms = |us: u64| us as f64 / 1000.0;
    let late_at = |q: f64| {
        if late > 0 {
            ms(late_h.value_at_quantile(q))
        } else {
            0.0
        }
    };
    Outcomes {
        expected,
        on_time: delivered - late,
        late,
        dead_lettered,
        lost: expected - delivered - dead_lettered,
        duplicates,
        late_p50_ms: late_at(0.5),
        late_p99_ms: late_at(0.99),
        late_max_ms: if late > 0 { ms(late_h.max()) } else { 0.0 },
        ..Outcomes::default()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn scenario(clients: u32) -> Scenario {
        let mut s = Scenario::parse(
            Path::new("m.toml"),
            "name = \"m\"\nduration = \"600s\"\nwarmup = \"0s\"\n[events]\nrate = 100\ntopics = 1000\n\
             [clients]\ncount = 10\ntopics_per_client = 2\n[server]\nmax_subscriptions = 100000000\n",
        )
        .unwrap();
        s.clients.count = clients;
        s
    }

    #[test]
    fn deliveries_slower_than_late_after_are_late() {
        // Every message fails once and waits a 1 s retry (±20%): all later than 500 ms.
        let s = Scenario::parse(
            Path::new("l.toml"),
            "name = \"l\"\nduration = \"60s\"\nwarmup = \"1s\"\ndrain = \"5s\"\nlate_after = \"500ms\"\n\
             modes = [\"webhook\"]\n[events]\nrate = 10\n[clients]\ncount = 5\n\
             [webhook]\nreceiver_fail_attempts = 1\nretry = [\"1s\"]\n",
        )
        .unwrap();
        let model = Model::new(
            Some(Duration::from_millis(2)),
            crate::calibration::Calibration::reference(),
        );
        let m = mode_result(&s, Mode::Webhook, &model, &crate::simulate::quietly);
        let o = &m.outcomes;
        assert!(o.adds_up(), "{o:?}");
        assert_eq!((o.late, o.on_time), (o.expected, 0), "{o:?}");
        assert!((800.0..=1210.0).contains(&o.late_p50_ms), "{o:?}");
    }

    #[test]
    fn the_footprint_grows_with_clients_and_events_and_a_model_too_big_is_refused() {
        // 10⁶ clients × (2 topics × 16 + 100) bytes + 60,000 events × 24 bytes + 64 MiB.
        assert_eq!(
            footprint(&scenario(1_000_000)),
            132_000_000 + 1_440_000 + (64 << 20)
        );
        let mut env = crate::environment::capture();
        env.memory_available_bytes = 100 << 20;
        let err = simulate(
            &scenario(1_000_000),
            &Model::new(Some(Duration::ZERO), crate::calibration::Calibration::reference()),
            env,
            &Unwatched,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("1000000 clients") && err.contains("needs about 0.2 GiB"),
            "{err}"
        );
    }
}
