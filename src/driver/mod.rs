//! The driver: everything that is not the server. It starts the server as a child process and,
//! for each mode in turn, resets it, connects the clients, starts the generator, waits out the
//! schedule, drains what is in flight within the grace period, and collects the measurements.

mod accounting;
pub mod child;
mod clients;
mod collect;
mod mode;
pub mod noise;
mod sampler;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::environment;
use crate::modes::{Given, Mode};
use crate::results::{spread, ModeResult, Results, SCHEMA_VERSION};
use crate::scenario::Scenario;
use child::{ClockSync, Control, ServerProcess};

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
    environment::ensure_open_files(scenario.descriptors_needed(), scenario.clients.count)?;
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
        simulated: None,
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
            let server = ServerProcess::spawn(exe, &scenario.server).await?;
            let endpoints = Endpoints {
                public: server.addr,
                control: Control::new(server.control, None)?,
                control_addr: server.control,
                receiver_ip: None,
                local: true,
                offset_ns: 0,
            };
            let outcome = mode::run_mode(&endpoints, scenario, mode, bar).await;
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
            mode::run_mode(&endpoints, scenario, mode, bar).await
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
        round_trip_modelled: false,
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
        simulated: None,
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
