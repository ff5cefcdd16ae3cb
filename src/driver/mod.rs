//! The driver: everything that is not the server. It starts the server as a child process and,
//! for each mode in turn, resets it, connects the clients, starts the generator, waits out the
//! schedule, drains what is in flight within the grace period, and collects the measurements.

mod accounting;
pub mod child;
mod collect;
pub mod environment;
pub mod noise;
pub mod recorder;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::{stream, StreamExt, TryStreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rand::SeedableRng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{Register, ResetRequest};
use crate::modes::webhook::receiver::{ReceiverClient, Receivers};
use crate::modes::webhook::signature::Secret;
use crate::modes::{self, ClientCtx, Given, Mode};
use crate::procstat;
use crate::results::{spread, MachineSample, ModeResult, Results, Sample, SCHEMA_VERSION};
use crate::scenario::{FaultPlan, Scenario};
use child::{ClockSync, Control, ServerProcess};
use collect::Measured;
use recorder::{Ledger, Recorder, Timeline};

/// Which server a run talks to.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start `exe serve` on loopback for each mode: a fresh server per mode, one clock.
    Spawn(PathBuf),
    /// A server that is already running, possibly on another host.
    Remote {
        /// Its client address.
        public: SocketAddr,
        /// Its control address.
        control: SocketAddr,
        /// The control API's token, when the server asks for one.
        control_token: Option<String>,
        /// Where webhook receivers listen; loopback addresses when None.
        receiver_ip: Option<IpAddr>,
    },
}

/// How a run is carried out (not what it measures: that is the scenario).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The server to run against.
    pub target: Target,
    /// Show progress bars.
    pub progress: bool,
    /// Where the bars go when several runs share the terminal (a sweep's points).
    pub bars: Option<MultiProgress>,
}

/// Where one mode's clients and control calls go.
struct Endpoints {
    public: SocketAddr,
    control: Control,
    /// The control listener's address, for the trip measurement.
    control_addr: SocketAddr,
    receiver_ip: Option<IpAddr>,
    /// Whether the server runs on this host (and so shares its cores with the driver).
    local: bool,
    /// Server clock − driver clock, ns (0 when they share a host and its monotonic clock).
    offset_ns: i64,
}

/// Runs every mode of `scenario` and returns the results. With [`Target::Spawn`] each mode
/// gets a fresh server child, so no mode inherits another's memory, connections or warm caches.
pub async fn run(scenario: &Scenario, opts: &RunOptions) -> anyhow::Result<Results> {
    let mut environment = environment::capture();
    let scenario_arc = Arc::new(scenario.clone());
    let n = scenario.modes.len();
    let rounds = scenario.repeat.max(1) as usize;
    let mut reps: Vec<Vec<ModeResult>> = vec![Vec::new(); n];
    let mut offsets = Vec::new();
    for round in 0..rounds {
        // Each round starts one mode later, so a drift of the machine falls on every mode.
        for k in 0..n {
            let i = (k + round) % n;
            let mode = scenario.modes[i];
            let bar = progress_bar(opts, mode, k, (round, rounds), scenario);
            match run_on_target(opts, &scenario_arc, mode, &bar, &mut offsets).await {
                Ok(result) => {
                    bar.finish_with_message(format!(
                        "done: {}/{} delivered, p50 {:.1} ms",
                        result.deliveries.delivered, result.deliveries.expected, result.latency.p50_ms
                    ));
                    reps[i].push(result);
                }
                Err(e) => {
                    bar.abandon_with_message("failed");
                    let round = if rounds > 1 {
                        format!(" (round {} of {rounds})", round + 1)
                    } else {
                        String::new()
                    };
                    return Err(e.context(format!("running mode `{mode}`{round}")));
                }
            }
        }
    }
    let modes = scenario
        .modes
        .iter()
        .zip(reps)
        .map(|(&mode, reps)| pool_repetitions(scenario, mode, reps))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(worst) = offsets.iter().max_by_key(|o| o.uncertainty_ns) {
        environment.clock = format!(
            "server at {}: its CLOCK_MONOTONIC, mapped to the driver's by an offset estimated from /healthz round \
             trips before each mode (last {:+.3} ms, uncertain by up to ±{:.3} ms)",
            match &opts.target {
                Target::Remote { public, .. } => public.to_string(),
                Target::Spawn(_) => "this host".into(),
            },
            offsets.last().map_or(0, |o| o.offset_ns) as f64 / 1e6,
            worst.uncertainty_ns as f64 / 1e6
        );
        environment.clock_offset_ns = offsets.last().map(|o| o.offset_ns);
        environment.clock_uncertainty_ns = Some(worst.uncertainty_ns);
    }
    Ok(Results {
        schema_version: SCHEMA_VERSION,
        scenario: scenario.clone(),
        environment,
        modes,
        sources: Vec::new(),
        points: Vec::new(),
    })
}

/// One mode once, on a fresh server child or on the remote server.
async fn run_on_target(
    opts: &RunOptions,
    scenario: &Arc<Scenario>,
    mode: Mode,
    bar: &ProgressBar,
    offsets: &mut Vec<ClockSync>,
) -> anyhow::Result<ModeResult> {
    match &opts.target {
        Target::Spawn(exe) => {
            let server = ServerProcess::spawn(exe).await?;
            let endpoints = Endpoints {
                public: server.addr,
                control: Control::new(server.control, None)?,
                control_addr: server.control,
                receiver_ip: None,
                local: true,
                offset_ns: 0,
            };
            let outcome = run_mode(&endpoints, scenario, mode, bar).await;
            server.shutdown(&endpoints.control).await;
            outcome
        }
        Target::Remote {
            public,
            control,
            control_token,
            receiver_ip,
        } => {
            let control_addr = *control;
            let control = Control::new(control_addr, control_token.as_deref())?;
            let sync = control
                .clock_offset()
                .await
                .context("estimating the server's clock offset")?;
            offsets.push(sync);
            let endpoints = Endpoints {
                public: *public,
                control,
                control_addr,
                receiver_ip: *receiver_ip,
                local: false,
                offset_ns: sync.offset_ns,
            };
            run_mode(&endpoints, scenario, mode, bar).await
        }
    }
}

/// One mode's repetitions as one result: pooled, with each figure's spread, and the theory
/// predicted again from the median of what the repetitions took as given.
fn pool_repetitions(s: &Scenario, mode: Mode, reps: Vec<ModeResult>) -> anyhow::Result<ModeResult> {
    if reps.len() < 2 {
        return crate::results::pool(reps);
    }
    let median = |f: fn(&ModeResult) -> f64| spread::median(&reps.iter().map(f).collect::<Vec<_>>());
    let given = Given {
        client_event_rate: median(|m| m.theory.given.client_event_rate),
        round_trip_ms: median(|m| m.theory.given.round_trip_ms),
        generator_ms: median(|m| m.theory.given.generator_ms),
    };
    let mut pooled = crate::results::pool(reps)?;
    pooled.theory = mode.predict(s, &given);
    Ok(pooled)
}

/// Runs every point of a swept scenario (each a full run of its modes) into one result.
pub async fn run_sweep(scenario: &Scenario, opts: &RunOptions) -> anyhow::Result<Results> {
    use crate::scenario::sweep;
    let plan = scenario.sweep.as_ref().context("the scenario has no [sweep]")?;
    let points = plan.points(scenario).map_err(|e| anyhow::anyhow!(e.message))?;
    let mut out = Vec::new();
    let mut environment = None;
    // One bar over the points, with each point's mode bars below it.
    let bars = MultiProgress::new();
    let overall = if opts.progress {
        bars.add(ProgressBar::new(points.len() as u64))
    } else {
        ProgressBar::hidden()
    };
    overall.set_style(
        ProgressStyle::with_template("{prefix:>20} [{bar:30.green/white}] {pos}/{len} points {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    overall.set_prefix("sweep");
    let point_opts = RunOptions {
        bars: opts.progress.then(|| bars.clone()),
        ..opts.clone()
    };
    for (i, point) in points.iter().enumerate() {
        let label = sweep::label(&point.values);
        overall.set_message(label.clone());
        let r = run(&point.scenario, &point_opts)
            .await
            .with_context(|| format!("sweep point {} ({label})", i + 1))?;
        overall.inc(1);
        environment.get_or_insert(r.environment);
        let values = point
            .values
            .iter()
            .map(|(path, v)| crate::results::SweptValue {
                path: path.clone(),
                value: sweep::show(v),
                number: sweep::as_number(v),
            })
            .collect();
        out.push(crate::results::SweepPoint {
            label,
            values,
            scenario: point.scenario.clone(),
            modes: r.modes,
        });
    }
    overall.finish_with_message("done");
    Ok(Results {
        schema_version: SCHEMA_VERSION,
        scenario: scenario.clone(),
        environment: environment.context("a sweep has at least one point")?,
        modes: Vec::new(),
        sources: Vec::new(),
        points: out,
    })
}

/// A bar for the `index`th mode of round `round.0` of `round.1`.
fn progress_bar(
    opts: &RunOptions,
    mode: Mode,
    index: usize,
    round: (usize, usize),
    s: &Scenario,
) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let total_ms = (s.warmup + s.duration).as_millis() as u64;
    // Join the shared display before drawing anything, or the first draw lands outside it.
    let bar = match &opts.bars {
        Some(bars) => bars.add(ProgressBar::new(total_ms)),
        None => ProgressBar::new(total_ms),
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix:>20} [{bar:30.cyan/blue}] {elapsed:>4} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let (r, rounds) = round;
    bar.set_prefix(if rounds > 1 {
        format!(
            "round {}/{rounds} · {}/{} {mode}",
            r + 1,
            index + 1,
            s.modes.len()
        )
    } else {
        format!("{}/{} {mode}", index + 1, s.modes.len())
    });
    bar
}

/// The clients of one mode while they run.
enum Clients {
    Tasks(Vec<JoinHandle<Ledger>>),
    /// Receivers, and each client's subscription id.
    Webhook(Receivers, Vec<String>),
}

async fn run_mode(
    endpoints: &Endpoints,
    s: &Arc<Scenario>,
    mode: Mode,
    bar: &ProgressBar,
) -> anyhow::Result<crate::results::ModeResult> {
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
    let clients = start_clients(endpoints, s, mode, &plan, &recorder, &stop).await?;
    let at_start = control.stats().await?;
    let driver_at_start = procstat::read();
    // The schedule starts a little ahead, so the driver knows its start before any event exists.
    let lead = Duration::from_millis(20);
    let start_ns = recorder.now_ns() + lead.as_nanos() as u64;
    let timeline = Timeline {
        start_ns,
        late_after_ns: mode.late_after(s).as_nanos() as u64,
        windows: s.faults.iter().map(|f| f.window_ns(start_ns)).collect(),
    };
    recorder.start(timeline.clone());
    control.start(timeline.start_ns).await?;
    let sampler = tokio::spawn(sample(
        control.clone(),
        recorder.clone(),
        at_start.server_cpu_seconds(),
        driver_at_start.cpu_seconds,
        stop.clone(),
    ));
    let driver_window = follow_schedule(s, Instant::now() + lead, &recorder, bar).await;
    // The server read its counters on the generator's thread at both ends of the window.
    let window = control.stop().await?;
    let delivered_in_window = recorder.delivered();
    let expected: u64 = (0..s.clients.count)
        .flat_map(|c| s.client_topics(c))
        .map(|t| window.emitted.measured[t as usize])
        .sum();
    let drain_seconds = drain(control, &recorder, mode, expected, s.drain, bar).await?;
    let after = control.stats().await?;
    let driver_after = procstat::read();
    bar.set_message("collecting");

    stop.cancel();
    let (ledgers, handed, dead) = finish_clients(clients, control).await?;
    let timeseries = sampler.await.unwrap_or_default();
    collect::mode_result(Measured {
        scenario: s,
        mode,
        expected,
        latencies: recorder.merged(),
        poll_sends: recorder.poll_sends(),
        round_trip_ms,
        ledgers,
        handed,
        drained: drain_seconds < s.drain.as_secs_f64(),
        server: window.at_end.since(&window.at_warmup),
        whole: after.since(&window.at_warmup),
        measured_seconds: window.at_end.at_ns.saturating_sub(window.at_warmup.at_ns) as f64 / 1e9,
        tcp: window.tcp,
        drain: collect::drain_cost(
            &after.since(&window.at_end),
            recorder.delivered().saturating_sub(delivered_in_window),
            driver_after.cpu_seconds - driver_window.1.cpu_seconds,
        ),
        memory: collect::Memory {
            baseline: idle.process.rss_bytes,
            steady: window.at_end.process.rss_bytes,
            log: window.log_bytes,
            peak: after.process.peak_rss_bytes,
        },
        driver_cpu_seconds: driver_window.1.cpu_seconds - driver_window.0.cpu_seconds,
        driver_peak_rss_bytes: driver_after.peak_rss_bytes,
        driver_share_cores: {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
            // A server on this host takes half the machine; a remote one leaves it all.
            if endpoints.local {
                cores / 2.0
            } else {
                cores
            }
        },
        emitted: window.emitted,
        timeseries,
        drain_seconds,
        timeline,
        plan,
        dead,
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

/// Drains until every owed delivery is in and, for webhooks, the dispatcher is idle (a retry
/// still to come may yet deliver a duplicate, and the accounting must see it), or until the
/// grace period ends. Returns the seconds it took.
async fn drain(
    control: &Control,
    recorder: &Recorder,
    mode: Mode,
    expected: u64,
    grace: Duration,
    bar: &ProgressBar,
) -> anyhow::Result<f64> {
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
    Ok(drain_start.elapsed().as_secs_f64())
}

/// The dead letter set as `(client, topic, seq)`.
type DeadSet = std::collections::HashSet<(u32, crate::event::TopicId, crate::event::Seq)>;

/// Stops the clients and takes their ledgers, with what the server counted handing each of
/// them; for webhooks, also which deliveries sit in the dead-letter list.
async fn finish_clients(
    clients: Clients,
    control: &Control,
) -> anyhow::Result<(Vec<Ledger>, Vec<u64>, DeadSet)> {
    let mut dead = DeadSet::new();
    let mut handed = control.handed().await?;
    let ledgers = match clients {
        Clients::Webhook(receivers, ids) => {
            let by_id: std::collections::HashMap<&str, u32> = ids
                .iter()
                .enumerate()
                .map(|(c, id)| (id.as_str(), c as u32))
                .collect();
            for letter in control.dead_letters().await? {
                let client = by_id.get(letter.subscription.as_str()).with_context(|| {
                    format!("a dead letter names an unknown endpoint {}", letter.subscription)
                })?;
                dead.insert((*client, letter.topic, letter.seq));
            }
            handed.by_client = ids
                .iter()
                .map(|id| handed.by_subscription.get(id).copied().unwrap_or(0))
                .collect();
            receivers.finish().await
        }
        Clients::Tasks(handles) => {
            let mut ledgers = Vec::with_capacity(handles.len());
            for h in handles {
                ledgers.push(
                    tokio::time::timeout(Duration::from_secs(10), h)
                        .await
                        .context("a client did not stop")??,
                );
            }
            ledgers
        }
    };
    Ok((ledgers, handed.by_client, dead))
}

async fn start_clients(
    endpoints: &Endpoints,
    s: &Arc<Scenario>,
    mode: Mode,
    plan: &FaultPlan,
    recorder: &Arc<Recorder>,
    stop: &CancellationToken,
) -> anyhow::Result<Clients> {
    let control = &endpoints.control;
    let ledger = |c: u32| Ledger::new(c, s.client_topics(c), recorder.clone());
    if mode == Mode::Webhook {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s.seed);
        let signing = s.webhook.signing;
        let secrets: Vec<Option<(String, Secret)>> = (0..s.clients.count)
            .map(|_| signing.then(|| Secret::generate(&mut rng)))
            .collect();
        let clients = (0..s.clients.count)
            .zip(&secrets)
            .map(|(c, sec)| ReceiverClient {
                ledger: ledger(c),
                secret: sec.as_ref().map(|(_, k)| k.clone()),
                faults: plan.for_client(c, mode),
            })
            .collect();
        let receivers = Receivers::start(
            endpoints.receiver_ip,
            s.webhook.receiver_hosts,
            clients,
            s.webhook.receiver_fail_attempts,
        )
        .await?;
        let ids = stream::iter(0..s.clients.count)
            .map(|c| {
                let req = Register {
                    url: receivers.url(c),
                    topics: s.client_topics(c),
                    secret: secrets[c as usize].as_ref().map(|(t, _)| t.clone()),
                };
                async move { control.register(&req).await.map(|r| r.id) }
            })
            .buffered(32)
            .try_collect::<Vec<_>>()
            .await
            .context("registering webhook endpoints")?;
        return Ok(Clients::Webhook(receivers, ids));
    }
    let handles = (0..s.clients.count)
        .map(|c| {
            let faults = plan.for_client(c, mode);
            let ctx = ClientCtx::new(c, endpoints.public, s.clone(), ledger(c), stop.clone(), faults);
            tokio::spawn(modes::run_client(mode, ctx))
        })
        .collect();
    // Clients that hold a connection (streams, long polls) are all waited for: an event
    // published while thousands of them are still connecting would be charged the connection
    // storm as latency. Pollers need no wait: they ask on their own schedule.
    let attached = |st: &crate::api::StatsSnapshot| match mode {
        Mode::Sse | Mode::Websocket => Some(st.counters.stream_subscribers),
        Mode::LongPoll => Some(st.counters.held_long_polls),
        _ => None,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(n) = attached(&control.stats().await?) {
        if n >= u64::from(s.clients.count) {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {n} of {} {mode} clients connected within 30 s",
            s.clients.count
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Clients::Tasks(handles))
}

/// Samples the server's stats, the driver's CPU and the machine once a second until `stop`.
async fn sample(
    control: Control,
    recorder: Arc<Recorder>,
    server_cpu0: f64,
    driver_cpu0: f64,
    stop: CancellationToken,
) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    // The previous reading: when, the machine, the server process's CPU, the driver's CPU.
    let mut prev = (
        Instant::now(),
        procstat::machine_cpu(),
        None::<f64>,
        procstat::cpu_seconds(),
    );
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        let Ok(st) = control.stats().await else {
            continue;
        };
        let (now, machine, driver_cpu) = (Instant::now(), procstat::machine_cpu(), procstat::cpu_seconds());
        let server_total = st.process.cpu_seconds;
        let driver_seconds = driver_cpu - prev.3;
        let machine_sample = match (prev.1, machine) {
            (Some(a), Some(b)) => {
                let busy = b.busy - a.busy;
                let server = prev.2.map_or(0.0, |s| server_total - s);
                MachineSample {
                    interval_s: now.duration_since(prev.0).as_secs_f64(),
                    cores,
                    busy_seconds: busy,
                    others_seconds: (busy - server - driver_seconds).max(0.0),
                    steal_seconds: b.steal - a.steal,
                    load_1m: procstat::load_average().unwrap_or(0.0),
                    driver_seconds,
                }
            }
            _ => MachineSample::default(),
        };
        // The first reading of the server's CPU has no interval before it to charge.
        let first = prev.2.is_none();
        prev = (now, machine, Some(server_total), driver_cpu);
        out.push(Sample {
            source: 0,
            t_s: recorder.since_start().unwrap_or_default().as_secs_f64(),
            delivered: recorder.delivered(),
            requests: st.requests_total,
            server_cpu_seconds: st.server_cpu_seconds() - server_cpu0,
            server_rss_bytes: st.process.rss_bytes,
            open_connections: st.counters.open_connections,
            held_long_polls: st.counters.held_long_polls,
            webhook_in_flight: st.webhook.in_flight,
            webhook_retries: st.webhook.retries,
            driver_cpu_seconds: driver_cpu - driver_cpu0,
            machine: if first {
                MachineSample::default()
            } else {
                machine_sample
            },
        });
    }
    out
}
