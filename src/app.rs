//! What each command does, called by `main` with the parsed command line: `run`, `drive` and
//! `simulate` (load, override, run or model, write the results and the report, check
//! thresholds), `serve`, `validate`, `report` and `compare`, and the exit code each failure
//! maps to.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::cli::{self, Cli, Command};
use crate::driver::{self, child::LISTENING_PREFIX};
use crate::scenario::Scenario;
use crate::{modes, report, results, server};

mod calibrate;
mod simulated_time;

/// Why a command did not succeed; decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The user's input is wrong (exit code 2).
    #[error("{0}")]
    BadInput(String),
    /// The run itself failed (exit code 1).
    #[error("{0:#}")]
    RunFailed(anyhow::Error),
    /// The run completed but thresholds failed (exit code 3).
    #[error("{0} of the scenario's thresholds failed")]
    ThresholdsFailed(usize),
    /// `compare` found regressions beyond its `--fail-on` bounds (exit code 3).
    #[error("regressed beyond the bounds: {}", .0.join("; "))]
    Regressed(Vec<String>),
}

impl Failure {
    /// 2 for bad input, 1 for a failed run, 3 for failed thresholds or a regression past a
    /// bound.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::BadInput(_) => 2,
            Failure::RunFailed(_) => 1,
            Failure::ThresholdsFailed(_) | Failure::Regressed(_) => 3,
        }
    }
}

/// Carries out a parsed command line.
pub async fn execute(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Run { scenario, args } => {
            let exe = std::env::current_exe().map_err(|e| Failure::RunFailed(e.into()))?;
            run_scenario(&scenario, args, driver::Target::Spawn(exe)).await
        }
        Command::Drive {
            scenario,
            target,
            control,
            control_token,
            receiver_ip,
            args,
        } => {
            let target = driver::Target::Remote {
                public: target,
                control,
                control_token,
                receiver_ip,
            };
            run_scenario(&scenario, args, target).await
        }
        Command::Simulate {
            scenario,
            round_trip,
            calibration,
            clients_beside_server,
            args,
        } => simulate(
            &scenario,
            args,
            round_trip,
            calibration.as_deref(),
            clients_beside_server,
        ),
        Command::Report { results, out } => {
            let rendered = report(&results, out)?;
            if let Some((n, path)) = rendered.merged {
                println!("merged {n} results: {}", path.display());
            }
            if let Some(text) = &rendered.side_by_side {
                print!("{text}");
            }
            println!("report: {}", rendered.html.display());
            Ok(())
        }
        Command::Compare {
            base,
            new,
            out,
            fail_on,
        } => compare(&base, &new, out.as_deref(), &fail_on),
        Command::Validate { scenario, json } => {
            print!("{}", validate(&scenario, json)?);
            Ok(())
        }
        Command::Serve(args) => serve(args).await,
        Command::Calibrate(args) => calibrate::calibrate(args).await,
    }
}

/// `serve`: the event server alone, on the addresses asked for, until Ctrl-C or the control
/// API shuts it down.
async fn serve(args: cli::ServeArgs) -> Result<(), Failure> {
    let mut allowlist = modes::webhook::Allowlist::default();
    for range in &args.allow {
        allowlist
            .add(range)
            .map_err(|e| Failure::BadInput(format!("--allow {range}: {e}")))?;
    }
    // A connection storm (ten thousand clients at once) overflows tokio's default accept
    // queue of 1,024: the kernel drops the SYNs and the clients retry after 1, 3, 7, 15 and
    // 31 s. Ask for the most the kernel allows (it caps the backlog at `somaxconn`).
    let bind = |addr: std::net::SocketAddr| {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        };
        socket
            .and_then(|s| {
                s.set_reuseaddr(true)?;
                s.bind(addr)?;
                s.listen(u32::from(u16::MAX))
            })
            .map_err(|e| Failure::BadInput(format!("cannot listen on {addr}: {e}")))
    };
    let public = bind(args.listen)?;
    let control = bind(args.control)?;
    let local = |l: &tokio::net::TcpListener| l.local_addr().map_err(|e| Failure::RunFailed(e.into()));
    println!(
        "{LISTENING_PREFIX}{} control http://{}",
        local(&public)?,
        local(&control)?
    );
    let control =
        server::Control::new(control, args.control_token).map_err(|e| Failure::RunFailed(e.into()))?;
    if let Some(token) = &control.token {
        println!("control token: {token}");
    }
    let _ = std::io::stdout().flush();
    let limits = server::Limits {
        max_held_long_polls: args.max_held_long_polls,
        max_subscriptions: args.max_subscriptions,
        max_streams_per_client: args.max_streams_per_client,
        max_connections: args
            .max_connections
            .unwrap_or_else(crate::environment::connections_held),
        ..server::Limits::default()
    };
    let state = server::AppState::with_limits(allowlist, limits);
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    server::serve(public, control, state, ctrl_c)
        .await
        .map_err(|e| Failure::RunFailed(e.into()))
}

/// `run` and `drive`: load, override, run, write results and report, check thresholds.
async fn run_scenario(
    scenario: &std::path::Path,
    args: cli::RunArgs,
    target: driver::Target,
) -> Result<(), Failure> {
    let s = load(scenario, &args)?;
    let limits = [
        ("max_held_long_polls", s.server.max_held_long_polls),
        ("max_subscriptions", s.server.max_subscriptions),
        ("max_connections", s.server.max_connections),
    ];
    if let (driver::Target::Remote { .. }, Some((key, _))) =
        (&target, limits.iter().find(|(_, v)| v.is_some()))
    {
        return Err(Failure::BadInput(format!(
            "{}: server.{key} applies to the server `run` starts: a running server has the limits it was started \
             with (`serve --{}`)",
            scenario.display(),
            key.replace('_', "-")
        )));
    }
    if let Some(cores) = s.server.cores {
        let here = std::thread::available_parallelism().map_or(1, |n| n.get());
        let why = match &target {
            driver::Target::Remote { .. } => Some(
                "applies to the server `run` starts: a running server has the cores it was started with".to_string(),
            ),
            driver::Target::Spawn(_) if cores as usize > here => Some(format!(
                "this machine has {here} cores, so a server of {cores} can only be simulated (`pushpull simulate`)"
            )),
            driver::Target::Spawn(_) => None,
        };
        if let Some(why) = why {
            return Err(Failure::BadInput(format!(
                "{}: server.cores = {cores} {why}",
                scenario.display()
            )));
        }
    }
    let opts = driver::RunOptions {
        target,
        progress: !args.quiet && !args.json,
        bars: None,
    };
    let results = if s.sweep.is_some() {
        driver::run_sweep(&s, &opts).await
    } else {
        driver::run(&s, &opts).await
    }
    .map_err(Failure::RunFailed)?;
    publish(&results, &args)
}

/// `simulate`: the scenario's model instead of a measurement, written and reported the same
/// way.
fn simulate(
    scenario: &std::path::Path,
    args: cli::RunArgs,
    round_trip: Option<std::time::Duration>,
    calibration: Option<&std::path::Path>,
    clients_beside: bool,
) -> Result<(), Failure> {
    let mut s = load(scenario, &args)?;
    let calibration = match calibration {
        Some(path) => {
            crate::calibration::Calibration::load(path).map_err(|e| Failure::BadInput(format!("{e:#}")))?
        }
        None => crate::calibration::Calibration::reference(),
    };
    if let Some(why) = crate::simulate::unsupported(&s) {
        return Err(Failure::BadInput(format!("{}: {why}", scenario.display())));
    }
    if s.repeat > 1 {
        if !args.quiet && !args.json {
            eprintln!(
                "note: the model gives the same figures every time for a seed, so it runs once (repeat = {} \
                 is for measurements)",
                s.repeat
            );
        }
        s.repeat = 1;
    }
    if clients_beside {
        let unfitted: Vec<String> = s
            .modes
            .iter()
            .filter(|mode| !calibration.clients.iter().any(|c| c.mode == **mode))
            .map(|mode| mode.to_string())
            .collect();
        if !unfitted.is_empty() {
            return Err(Failure::BadInput(format!(
                "--clients-beside-server needs the clients' CPU of every mode modelled, and this calibration has none \
                 for {}: run `pushpull calibrate` again",
                unfitted.join(", ")
            )));
        }
    }
    let mut model = crate::simulate::Model::new(round_trip, calibration);
    model.clients_beside = clients_beside;
    if let Some(cores) = s.server.cores {
        model.cores = cores;
    }
    let bars = simulated_time::SimulatedTime::new(&s, !args.quiet && !args.json);
    let results = crate::simulate::simulate(&s, &model, crate::environment::capture(), &bars)
        .map_err(Failure::RunFailed)?;
    bars.finish();
    publish(&results, &args)
}

/// Loads a scenario and applies the command line's overrides.
fn load(scenario: &std::path::Path, args: &cli::RunArgs) -> Result<Scenario, Failure> {
    let mut s = Scenario::load(scenario).map_err(|e| Failure::BadInput(e.to_string()))?;
    if let Some(modes) = &args.modes {
        s.modes = modes.clone();
    }
    if let Some(d) = args.duration {
        s.duration = d;
    }
    if let Some(seed) = args.seed {
        s.seed = seed;
    }
    if let Some(n) = args.repeat {
        s.repeat = n;
    }
    Ok(s)
}

/// Writes results.json and the report, prints the table (or the JSON), and checks the
/// scenario's thresholds.
fn publish(results: &results::Results, args: &cli::RunArgs) -> Result<(), Failure> {
    let (quiet, json) = (args.quiet, args.json);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reports").join(&results.scenario.name));
    let path = write_results(results, &out).map_err(Failure::RunFailed)?;
    let html = report::write_all(results, &out).map_err(Failure::RunFailed)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(results).expect("results serialize")
        );
    } else if !quiet {
        if results.points.is_empty() {
            println!("\n{}", report::table::render(results));
            for v in report::verdict::verdicts(results) {
                println!("{v}");
            }
        }
        if let Some(section) = report::capacity::section(results) {
            let mut rows = vec![section.header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
            rows.extend(section.rows.into_iter().map(|(_, row)| row));
            println!("\n{}\n{}", section.title, report::table::align(&rows));
        }
        for p in &results.points {
            println!(
                "\npoint {}\n{}",
                p.label,
                report::table::render(&results.point_view(p))
            );
        }
        println!("\nresults: {}\nreport:  {}", path.display(), html.display());
    }
    let outcomes = report::thresholds::evaluate(results);
    for o in &outcomes {
        let value = o.measured.map_or("no data".to_string(), |v| format!("{v:.4}"));
        let line = format!(
            "threshold {}: {} ({} {value})",
            o.threshold,
            o.result(),
            report::source(results)
        );
        if o.failed() {
            eprintln!("{line}");
        } else if !quiet && !json {
            println!("{line}");
        }
    }
    match outcomes.iter().filter(|o| o.failed()).count() {
        0 => Ok(()),
        failed => Err(Failure::ThresholdsFailed(failed)),
    }
}

/// What `report` wrote.
#[derive(Debug)]
pub struct Rendered {
    /// When several results were merged: how many, and the merged results.json.
    pub merged: Option<(usize, PathBuf)>,
    /// When a measured and a simulated run were laid side by side: the table, as text.
    pub side_by_side: Option<String>,
    /// The report page.
    pub html: PathBuf,
}

/// `report`: renders the report again from results files, merging several first (into
/// `out`, which a merge needs); a measured and a simulated run of one scenario are laid side
/// by side instead (validation.html, validation.md and validation.json in `out`).
pub fn report(files: &[PathBuf], out: Option<PathBuf>) -> Result<Rendered, Failure> {
    let loaded = files
        .iter()
        .map(|p| results::Results::load(p))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|e| Failure::BadInput(format!("{e:#}")))?;
    if let [a, b] = loaded.as_slice() {
        if a.simulated.is_some() != b.simulated.is_some() {
            let ((measured, mp), (simulated, sp)) = if a.simulated.is_none() {
                ((a, &files[0]), (b, &files[1]))
            } else {
                ((b, &files[1]), (a, &files[0]))
            };
            let dir = out.ok_or_else(|| Failure::BadInput("a side-by-side needs --out DIR".into()))?;
            let validation = results::validation::validate(measured, simulated)
                .map_err(|e| Failure::BadInput(format!("{e:#}")))?;
            let sides = report::validation::Sides {
                measured: mp,
                simulated: sp,
            };
            let html = report::validation::write(measured, simulated, &validation, &sides, &dir)
                .map_err(Failure::RunFailed)?;
            return Ok(Rendered {
                merged: None,
                side_by_side: Some(report::validation::render_text(&validation)),
                html,
            });
        }
    }
    let (r, written, dir) = if let [single] = loaded.as_slice() {
        let dir = out.unwrap_or_else(|| files[0].parent().map(PathBuf::from).unwrap_or_default());
        (single.clone(), None, dir)
    } else {
        let dir = out.ok_or_else(|| Failure::BadInput("merging several results needs --out DIR".into()))?;
        let merged = results::merge(&loaded).map_err(|e| Failure::BadInput(format!("{e:#}")))?;
        let path = write_results(&merged, &dir).map_err(Failure::RunFailed)?;
        (merged, Some((loaded.len(), path)), dir)
    };
    let html = report::write_all(&r, &dir).map_err(Failure::RunFailed)?;
    Ok(Rendered {
        merged: written,
        side_by_side: None,
        html,
    })
}

/// `validate`: the scenario with every default written out, as TOML or JSON.
pub fn validate(scenario: &std::path::Path, json: bool) -> Result<String, Failure> {
    let s = Scenario::load(scenario).map_err(|e| Failure::BadInput(e.to_string()))?;
    let mut text = if json {
        serde_json::to_string_pretty(&s).expect("scenario serializes")
    } else {
        s.to_toml()
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// `compare`: judge every change, print it, write the pages, check the bounds.
fn compare(
    base: &std::path::Path,
    new: &std::path::Path,
    out: Option<&std::path::Path>,
    fail_on: &[results::compare::FailOn],
) -> Result<(), Failure> {
    let load =
        |p: &std::path::Path| results::Results::load(p).map_err(|e| Failure::BadInput(format!("{e:#}")));
    let (b, n) = (load(base)?, load(new)?);
    let c = results::compare::compare(&b, &n).map_err(|e| Failure::BadInput(format!("{e:#}")))?;
    print!("{}", report::compare::render_text(&c));
    if let Some(dir) = out {
        let sides = report::compare::Sides {
            scenario: &b.scenario.name,
            base,
            new,
        };
        let html = report::compare::write(&c, &sides, dir).map_err(Failure::RunFailed)?;
        println!("report: {}", html.display());
    }
    let broken: Vec<String> = fail_on
        .iter()
        .flat_map(|bound| {
            c.changes.iter().filter(|ch| bound.broken_by(ch)).map(move |ch| {
                let at = if ch.point.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", ch.point)
                };
                format!(
                    "{}{at} {}: {} → {} ({bound})",
                    ch.mode,
                    ch.figure,
                    report::figures::value(ch.figure, ch.base),
                    report::figures::value(ch.figure, ch.new)
                )
            })
        })
        .collect();
    if broken.is_empty() {
        Ok(())
    } else {
        Err(Failure::Regressed(broken))
    }
}

/// Writes `results.json` into `dir` and returns its path.
pub fn write_results(results: &results::Results, dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("results.json");
    let json = serde_json::to_string_pretty(results).expect("results serialize");
    std::fs::write(&path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
