//! One mode's run, phase by phase: set up (reset the server, connect the clients), follow
//! the schedule (the generator runs, the sampler reads each second), drain what is still in
//! flight, then stop the clients and collect.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::ProgressBar;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::child::Control;
use super::clients::{self, Clients};
use super::collect::{self, Measured};
use super::{sampler, Endpoints};
use crate::api::{ResetRequest, StatsSnapshot, Window};
use crate::modes::{self, Mode};
use crate::procstat::{self, ProcStat};
use crate::recorder::{Recorder, Timeline};
use crate::results::{ModeResult, Sample};
use crate::scenario::{FaultPlan, Scenario};

/// Runs `mode` once against `endpoints` and collects its result.
pub(super) async fn run_mode(
    endpoints: &Endpoints,
    s: &Arc<Scenario>,
    mode: Mode,
    bar: &ProgressBar,
) -> anyhow::Result<ModeResult> {
    let ready = set_up(endpoints, s, mode, bar).await?;
    let ran = follow(endpoints, s, mode, &ready, bar).await?;
    let drained = drain(&endpoints.control, &ready.recorder, mode, &ran, s.drain, bar).await?;
    bar.set_message("collecting");
    ready.stop.cancel();
    let (ledgers, handed, dead) = clients::finish_clients(ready.clients, &endpoints.control).await?;
    let timeseries = ran.sampler.await.unwrap_or_default();
    let (window, recorder) = (ran.window, &ready.recorder);
    collect::mode_result(Measured {
        scenario: s,
        mode,
        expected: ran.expected,
        latencies: recorder.merged(),
        poll_sends: recorder.poll_sends(),
        round_trip_ms: ready.round_trip_ms,
        ledgers,
        handed,
        drained: drained.seconds < s.drain.as_secs_f64(),
        server: window.at_end.since(&window.at_warmup),
        whole: drained.after.since(&window.at_warmup),
        measured_seconds: window.at_end.at_ns.saturating_sub(window.at_warmup.at_ns) as f64 / 1e9,
        deliveries_in_window: ran.deliveries_in_window,
        tcp: window.tcp,
        drain: collect::drain_cost(
            &drained.after.since(&window.at_end),
            recorder.delivered().saturating_sub(ran.delivered_in_window),
            drained.driver.cpu_seconds - ran.driver.1.cpu_seconds,
        ),
        memory: collect::Memory {
            baseline: ready.idle.process.rss_bytes,
            steady: window.at_end.process.rss_bytes,
            log: window.log_bytes,
            // The kernel's high-water mark is kept lazily and its RSS counters per thread
            // are batched, so a reading taken earlier can pass it by a few pages: the peak is
            // at least every reading.
            peak: drained
                .after
                .process
                .peak_rss_bytes
                .max(window.at_end.process.rss_bytes),
        },
        driver_cpu_seconds: ran.driver.1.cpu_seconds - ran.driver.0.cpu_seconds,
        driver_peak_rss_bytes: drained.driver.peak_rss_bytes,
        driver_share_cores: driver_share_cores(endpoints.local),
        emitted: window.emitted,
        timeseries,
        drain_seconds: drained.seconds,
        timeline: ran.timeline,
        plan: ready.plan,
        dead,
    })
}

/// The cores the driver may use: a server on this host takes half the machine; a remote one
/// leaves it all.
fn driver_share_cores(server_is_local: bool) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if server_is_local {
        cores / 2.0
    } else {
        cores
    }
}

/// Everything in place before the schedule starts.
struct Ready {
    recorder: Arc<Recorder>,
    plan: FaultPlan,
    /// Stops the clients and the sampler.
    stop: CancellationToken,
    round_trip_ms: f64,
    /// The server's counters before any client connected.
    idle: StatsSnapshot,
    clients: Clients,
}

/// Resets the server for `mode`, measures the round trip, and connects the clients.
async fn set_up(
    endpoints: &Endpoints,
    s: &Arc<Scenario>,
    mode: Mode,
    bar: &ProgressBar,
) -> anyhow::Result<Ready> {
    let control = &endpoints.control;
    control
        .reset(&ResetRequest {
            scenario: s.to_toml(),
            mode,
        })
        .await?;
    let recorder = Arc::new(Recorder::with_clock_offset(endpoints.offset_ns));
    let plan = FaultPlan::new(&s.faults, s.clients.count, s.seed);
    let stop = CancellationToken::new();
    let round_trip_ms = measure_round_trip(endpoints.control_addr).await?;
    let idle = control.stats().await?;
    bar.set_message("connecting clients");
    let clients = clients::start_clients(endpoints, s, mode, &plan, &recorder, &stop).await?;
    Ok(Ready {
        recorder,
        plan,
        stop,
        round_trip_ms,
        idle,
        clients,
    })
}

/// The schedule as it ran.
struct Ran {
    timeline: Timeline,
    /// What the generator emitted and the server's counters at the window's two ends.
    window: Window,
    /// The driver's own readings at the end of the warm-up and of the schedule.
    driver: (ProcStat, ProcStat),
    sampler: JoinHandle<Vec<Sample>>,
    /// Measured deliveries recorded when the schedule ended.
    delivered_in_window: u64,
    /// All first deliveries that arrived in the measured window, the warm-up's too.
    deliveries_in_window: u64,
    /// Deliveries owed: each client's measured events of its topics.
    expected: u64,
}

/// Starts the generator and the sampler, waits out the schedule, and reads what it emitted.
async fn follow(
    endpoints: &Endpoints,
    s: &Scenario,
    mode: Mode,
    ready: &Ready,
    bar: &ProgressBar,
) -> anyhow::Result<Ran> {
    let (control, recorder) = (&endpoints.control, &ready.recorder);
    let at_start = control.stats().await?;
    let driver_at_start = procstat::read();
    // The schedule starts a little ahead, so the driver knows its start before any event exists.
    let lead = Duration::from_millis(20);
    let start_ns = recorder.now_ns() + lead.as_nanos() as u64;
    let measured_from = start_ns + s.warmup.as_nanos() as u64;
    let timeline = Timeline {
        start_ns,
        measured_ns: (measured_from, measured_from + s.duration.as_nanos() as u64),
        late_after_ns: mode.late_after(s).as_nanos() as u64,
        windows: s.faults.iter().map(|f| f.window_ns(start_ns)).collect(),
    };
    recorder.start(timeline.clone());
    control.start(timeline.start_ns).await?;
    let sampler = tokio::spawn(sampler::sample(
        control.clone(),
        recorder.clone(),
        at_start.server_cpu_seconds(),
        driver_at_start.cpu_seconds,
        ready.stop.clone(),
    ));
    let driver = follow_schedule(s, Instant::now() + lead, recorder, bar).await;
    // The server read its counters on the generator's thread at both ends of the window.
    let window = control.stop().await?;
    let expected = (0..s.clients.count)
        .flat_map(|c| s.client_topics(c))
        .map(|t| window.emitted.measured[t as usize])
        .sum();
    Ok(Ran {
        timeline,
        window,
        driver,
        sampler,
        delivered_in_window: recorder.delivered(),
        deliveries_in_window: recorder.delivered_in_window(),
        expected,
    })
}

/// The median round trip of a small request between the idle driver and server, ms: 15
/// `/healthz` requests 10 ms apart on one kept-alive hyper connection (the clients' own
/// kind) to the uncounted control listener, after one that opens the connection.
async fn measure_round_trip(addr: SocketAddr) -> anyhow::Result<f64> {
    use http_body_util::Empty;
    let mut conn = modes::http::HttpConn::new(addr);
    let mut trips = Vec::with_capacity(15);
    for i in 0..16 {
        let req = conn.get("/healthz").body(Empty::new()).expect("valid request");
        let t0 = Instant::now();
        let res = conn.send(req).await.context("measuring the round trip")?;
        modes::http::body_bytes(res)
            .await
            .context("measuring the round trip")?;
        if i > 0 {
            trips.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        // Spaced, so that both processes are idle again, as they are when an event comes.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    trips.sort_by(f64::total_cmp);
    Ok(trips[trips.len() / 2])
}

/// Waits out the schedule (which began at `started`), keeping the progress bar moving, and
/// reads the driver's own CPU when the warm-up ends and when the schedule ends.
async fn follow_schedule(
    s: &Scenario,
    started: Instant,
    recorder: &Recorder,
    bar: &ProgressBar,
) -> (procstat::ProcStat, procstat::ProcStat) {
    let mut readings = Vec::with_capacity(2);
    for (phase, until) in [("warm-up", s.warmup), ("measuring", s.warmup + s.duration)] {
        let deadline = started + until;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            bar.set_position(now.saturating_duration_since(started).as_millis() as u64);
            bar.set_message(format!("{phase}: {} delivered", recorder.delivered()));
            tokio::time::sleep((deadline - now).min(Duration::from_millis(100))).await;
        }
        readings.push(procstat::read());
    }
    (readings[0], readings[1])
}

/// The drain as it ended.
struct Drained {
    seconds: f64,
    /// The server's counters at its end.
    after: StatsSnapshot,
    /// The driver's own reading at its end.
    driver: ProcStat,
}

/// Drains until every owed delivery is in and, for webhooks, the dispatcher is idle (a retry
/// still to come may yet deliver a duplicate, and the accounting must see it), or until the
/// grace period ends.
async fn drain(
    control: &Control,
    recorder: &Recorder,
    mode: Mode,
    ran: &Ran,
    grace: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<Drained> {
    let expected = ran.expected;
    let drain_start = Instant::now();
    while drain_start.elapsed() < grace {
        if recorder.delivered() >= expected {
            let w = if mode == Mode::Webhook {
                control.stats().await?.webhook
            } else {
                Default::default()
            };
            if w.in_flight + w.queued + w.waiting == 0 {
                break;
            }
        }
        bar.set_message(format!("draining: {}/{expected} delivered", recorder.delivered()));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seconds = drain_start.elapsed().as_secs_f64();
    Ok(Drained {
        seconds,
        after: control.stats().await?,
        driver: procstat::read(),
    })
}
