//! `calibrate`: measure the calibration runs (or read them back) and fit the server's costs
//! per operation from them, for `simulate`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{write_results, Failure};
use crate::calibration::{Calibration, Op, CPU_SCENARIOS, MEMORY_SCENARIOS, SCENARIO};
use crate::cli::CalibrateArgs;
use crate::event::Mode;
use crate::scenario::Scenario;
use crate::{driver, report, results, simulate};

/// `calibrate`: runs [`SCENARIO`] on this machine (or loads its results), fits, writes the
/// calibration and prints what it found.
pub async fn calibrate(args: CalibrateArgs) -> Result<(), Failure> {
    let measured = match args.from.as_slice() {
        [] => measure(&args).await?,
        paths => pooled(paths).map_err(|e| Failure::BadInput(format!("{e:#}")))?,
    };
    let calibration = Calibration::fit(&measured, &wakes, &median_beside)
        .map_err(|e| Failure::BadInput(format!("{e:#}")))?;
    let text = serde_json::to_string_pretty(&calibration).expect("a calibration serializes") + "\n";
    std::fs::write(&args.out, text)
        .map_err(|e| Failure::RunFailed(anyhow::anyhow!("writing {}: {e}", args.out.display())))?;
    if !args.quiet {
        print!("{}", render(&calibration));
        println!("calibration: {}", args.out.display());
    }
    Ok(())
}

/// The runs of one or more measurements of the calibration scenario, as one set to fit: the
/// same runs measured again on one machine tell its costs apart better than once.
fn pooled(paths: &[PathBuf]) -> anyhow::Result<results::Results> {
    let mut all = results::Results::load(&paths[0])?;
    let machine = |r: &results::Results| (r.environment.cpu_model.clone(), r.environment.cores);
    for path in &paths[1..] {
        let r = results::Results::load(path)?;
        anyhow::ensure!(
            machine(&r) == machine(&all),
            "{} was measured on {} ({} cores) and {} on {} ({} cores): a calibration is one machine's",
            paths[0].display(),
            all.environment.cpu_model,
            all.environment.cores,
            path.display(),
            r.environment.cpu_model,
            r.environment.cores
        );
        if !r.modes.is_empty() {
            all.points.push(results::SweepPoint {
                label: path.display().to_string(),
                values: Vec::new(),
                scenario: r.scenario.clone(),
                modes: r.modes,
            });
        }
        all.points.extend(r.points);
    }
    Ok(all)
}

/// The model of a measured run: its scenario's, over the round trip the measurement found, at
/// `calibration`'s costs.
fn model_of(m: &results::ModeResult, calibration: &Calibration) -> simulate::Model {
    let round_trip = Duration::from_secs_f64(m.theory.given.round_trip_ms.max(0.0) / 1000.0);
    simulate::Model::new(Some(round_trip), calibration.clone())
}

/// The wake-ups the model counts for a measured run, with its clients beside the server as
/// the run had them when `calibration` carries their CPU.
fn wakes(s: &Scenario, m: &results::ModeResult, calibration: &Calibration) -> [f64; 3] {
    let mut model = model_of(m, calibration);
    model.clients_beside = !calibration.clients.is_empty();
    let counts = simulate::operations(s, m.mode, &model);
    [
        counts.get(Op::Wake),
        counts.get(Op::RequestWake),
        counts.get(Op::ReplyWake),
    ]
}

/// The model's median latency for a measured run, with the clients beside the server as they
/// were.
fn median_beside(s: &Scenario, m: &results::ModeResult, calibration: &Calibration) -> f64 {
    let mut model = model_of(m, calibration);
    model.clients_beside = true;
    simulate::mode_result(s, m.mode, &model, &simulate::quietly)
        .latency
        .p50_ms
}

/// The calibration scenario, then the scenarios measured for memory alone (the webhook
/// sender's, the pollers' pages) and for the CPU alone (the webhook sender's retries, the
/// replies from afar), measured here with a fresh server per mode and point, as one set of
/// runs; `--runs DIR` keeps the first in DIR and the others in DIR/memory, DIR/pages,
/// DIR/failures and DIR/round-trip.
async fn measure(args: &CalibrateArgs) -> Result<results::Results, Failure> {
    let mut all = measure_one(args, "calibration.toml", SCENARIO, args.runs.clone()).await?;
    for (_, text, kept) in MEMORY_SCENARIOS.into_iter().chain(CPU_SCENARIOS) {
        let runs = measure_one(
            args,
            &format!("{kept}.toml"),
            text,
            args.runs.as_ref().map(|d| d.join(kept)),
        )
        .await?;
        all.points.extend(runs.points);
    }
    Ok(all)
}

/// One of the calibration's scenarios, measured, and kept in `runs` if given.
async fn measure_one(
    args: &CalibrateArgs,
    name: &str,
    text: &str,
    runs: Option<PathBuf>,
) -> Result<results::Results, Failure> {
    let mut s = Scenario::parse(Path::new(name), text)
        .map_err(|e| Failure::RunFailed(anyhow::anyhow!("the calibration scenario {name}: {e}")))?;
    if let Some(d) = args.duration {
        lengthen(&mut s, d);
    }
    let exe = std::env::current_exe().map_err(|e| Failure::RunFailed(e.into()))?;
    let opts = driver::RunOptions {
        target: driver::Target::Spawn(exe),
        progress: !args.quiet,
        bars: None,
    };
    let r = driver::run_sweep(&s, &opts).await.map_err(Failure::RunFailed)?;
    if let Some(dir) = &runs {
        write_results(&r, dir).map_err(Failure::RunFailed)?;
        report::write_all(&r, dir).map_err(Failure::RunFailed)?;
    }
    Ok(r)
}

/// Measures `s`'s runs for `duration` instead of its own, and a point that sweeps its
/// duration for as much longer (or shorter) than `duration` as it was than `s`'s: the
/// calibration's many clients held nearly idle are measured three times as long as its
/// other points, whatever the length asked for.
fn lengthen(s: &mut Scenario, duration: Duration) {
    let scale = duration.as_secs_f64() / s.duration.as_secs_f64();
    s.duration = duration;
    let swept = s.sweep.iter_mut().flat_map(|w| w.params.iter_mut());
    for value in swept
        .filter(|p| p.path == "duration")
        .flat_map(|p| p.values.iter_mut())
    {
        if let Some(d) = value
            .as_str()
            .and_then(|v| crate::scenario::humane::parse(v).ok())
        {
            let scaled = Duration::from_millis((d.as_secs_f64() * scale * 1000.0).round().max(1.0) as u64);
            *value = toml::Value::String(crate::scenario::humane::format(scaled));
        }
    }
}

/// The costs, memory and bytes found, and how closely the fit reproduces each run's CPU.
pub fn render(c: &Calibration) -> String {
    let mut out = format!(
        "Server costs on {} ({} cores), fitted from {} measured runs\n\n",
        c.environment.cpu_model,
        c.environment.cores,
        c.runs.len()
    );
    out += &format!("{:<40} {:>12}\n", "CPU per", "µs (± s.e.)");
    for cost in &c.cpu {
        if !c.measured(cost.op) {
            // Fitted at nothing for want of a run that carried one out (a retry, in runs
            // whose receivers never fail; a reply from afar, in runs all on loopback), not
            // found to cost nothing.
            out += &format!("{:<40} {:>12}\n", cost.op.says(), "not measured: no run had one");
            continue;
        }
        let (value, err) = match cost.op {
            Op::Second => (cost.cpu_ns / 1e6, cost.std_error_ns / 1e6),
            _ => (cost.cpu_ns / 1e3, cost.std_error_ns / 1e3),
        };
        let unit = if cost.op == Op::Second { " ms" } else { "" };
        out += &format!("{:<40} {value:>8.2} ± {err:.2}{unit}\n", cost.op.says());
    }
    out += &format!(
        "{:<40} {:>8.2} ms{}\n",
        "a core idle falls asleep after (mean)",
        c.falls_asleep_ns as f64 / 1e6,
        match c.falls_asleep_alike_ns.as_slice() {
            [] | [_] => String::new(),
            alike => format!(
                " ({} fit the runs alike)",
                crate::results::thresholds_in_words(alike, "and").unwrap_or_default()
            ),
        }
    );
    if c.crowded_at > 0 {
        let alike: Vec<String> = c
            .crowded_at_alike
            .iter()
            .map(|&n| if n == 0 { "none".into() } else { n.to_string() })
            .collect();
        out += &format!(
            "{:<40} {:>8}{}\n",
            "clients held for the whole crowding",
            c.crowded_at,
            match alike.as_slice() {
                [] | [_] => String::new(),
                [head @ .., last] => format!(" ({} and {last} fit the runs alike)", head.join(", ")),
            }
        );
    }
    if !c.clients.is_empty() {
        out += "\nthe clients' own CPU (simulate --clients-beside-server): ms a second, µs a request, µs an event\n";
        for d in &c.clients {
            out += &format!(
                "{:<17} {:>8.2} {:>8.1} {:>8.1}\n",
                d.mode.to_string(),
                d.second_ns / 1e6,
                d.request_ns / 1e3,
                d.event_ns / 1e3
            );
        }
        let h = &c.clients_handoff;
        out += &format!(
            "each delivery's handoff to its reader: {} ns for each client held (the push modes' median latency \
             modelled within {:.0}% rms of the measured; {:.0}% without it)\n",
            h.ns_per_client,
            (h.error.exp() - 1.0) * 100.0,
            (h.error_without.exp() - 1.0) * 100.0
        );
    }
    out += &format!(
        "\n{:<17} {:>12} {:>12} {:>14} {:>14}\n",
        "", "KiB/conn", "fixed MB", "B out/request", "B out/event"
    );
    for m in &c.memory {
        let b = c.bytes(m.mode).unwrap_or(crate::calibration::ByteCost {
            mode: m.mode,
            read_per_request: 0.0,
            read_per_delivery: 0.0,
            written_per_request: 0.0,
            written_per_delivery: 0.0,
            written_per_empty: None,
            payload_bytes: 0.0,
        });
        out += &format!(
            "{:<17} {:>12.1} {:>12.2} {:>14.0} {:>14.0}\n",
            m.mode.to_string(),
            m.per_connection_bytes / 1024.0,
            m.fixed_bytes / 1e6,
            b.written_per_request,
            b.written_per_delivery
        );
    }
    for m in c
        .memory
        .iter()
        .filter(|m| m.per_endpoint_bytes > 0.0 || m.per_attempt_per_second_bytes > 0.0)
    {
        let busy = if m.per_busy_connection_bytes > 0.0 {
            format!(
                ", and {:.1} KiB more for each connection busy (carrying {} attempts a second or more)",
                m.per_busy_connection_bytes / 1024.0,
                m.busy_at_attempts_per_second
            )
        } else {
            String::new()
        };
        out += &format!(
            "{}: also {:.2} KiB per endpoint and {:.0} B per attempt a second{busy}\n",
            m.mode,
            m.per_endpoint_bytes / 1024.0,
            m.per_attempt_per_second_bytes
        );
    }
    for b in c.bytes.iter() {
        if let Some(empty) = b.written_per_empty {
            out += &format!(
                "{}: writes {empty:.0} B for an answer with no event, {:.0} B for one with events (and each event's)\n",
                b.mode, b.written_per_request
            );
        }
    }
    for m in c.memory.iter().filter(|m| m.per_page_byte > 0.0) {
        out += &format!(
            "{}: also {:.2} B per byte of its mean page\n",
            m.mode, m.per_page_byte
        );
    }
    if !c.packets.is_empty() {
        out += &format!(
            "\nTCP segments both ways {:<3} {:>12} {:>12} {:>16}\n",
            "", "a request", "an event", "a connection"
        );
        for p in &c.packets {
            out += &format!(
                "{:<26} {:>12.2} {:>12.2} {:>16.2}\n",
                p.mode.to_string(),
                p.per_request,
                p.per_delivery,
                p.per_connection
            );
        }
    }
    for w in &c.warnings {
        out += &format!("\nwarning: {w}\n");
    }
    let mut errors = c.errors();
    errors.sort_by(f64::total_cmp);
    if let (Some(worst), false) = (errors.last(), errors.is_empty()) {
        out += &format!(
            "\nThe fit gives each run's CPU within {:.0}% (median) and {:.0}% (worst) of what was measured.\n",
            errors[errors.len() / 2] * 100.0,
            worst * 100.0
        );
    }
    out + &fit_by_point(c)
}

/// How the fitted costs explain each point's runs, mode by mode: their CPU at the fitted costs
/// over the measured, the runs of a point and mode pooled; and the one furthest from 1. A
/// row below 1 is a load whose work the costs price too low (its wake-ups counted as the
/// model counts them), which the median and worst error over all runs do not show.
fn fit_by_point(c: &Calibration) -> String {
    let mut points: Vec<&str> = Vec::new();
    let mut modes: Vec<Mode> = Vec::new();
    // (point, mode) → (fitted, measured), s.
    let mut sums: BTreeMap<(usize, Mode), (f64, f64)> = BTreeMap::new();
    for run in &c.runs {
        let point = match points.iter().position(|p| *p == run.point) {
            Some(i) => i,
            None => {
                points.push(&run.point);
                points.len() - 1
            }
        };
        if !modes.contains(&run.mode) {
            modes.push(run.mode);
        }
        let sum = sums.entry((point, run.mode)).or_default();
        sum.0 += run.fitted_cpu_seconds;
        sum.1 += run.cpu_seconds;
    }
    modes.sort();
    let ratio = |point: usize, mode: Mode| {
        sums.get(&(point, mode))
            .filter(|(_, measured)| *measured > 0.0)
            .map(|(fitted, measured)| fitted / measured)
    };
    let mut out =
        "\nThe fit against each point: its runs' CPU at these costs over the measured\n".to_string();
    out += "point";
    for m in &modes {
        out += &format!(" {:>width$}", m.to_string(), width = m.to_string().len().max(5));
    }
    out += "\n";
    let mut furthest: Option<(f64, usize, Mode)> = None;
    for (i, label) in points.iter().enumerate() {
        out += &format!("{:>5}", i + 1);
        for &m in &modes {
            let width = m.to_string().len().max(5);
            match ratio(i, m) {
                Some(r) => {
                    out += &format!(" {r:>width$.2}");
                    if furthest.is_none_or(|(worst, _, _)| r.ln().abs() > worst.ln().abs()) {
                        furthest = Some((r, i, m));
                    }
                }
                None => out += &format!(" {:>width$}", "-"),
            }
        }
        out += &format!("  {label}\n");
    }
    if let Some((r, i, m)) = furthest {
        out += &format!("Furthest from the measured: point {}'s {m} at {r:.2}.\n", i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_asked_for_lengthens_a_swept_duration_alike() {
        // The calibration's runs take 4 s and its held clients' 12 s: asked for 2 s, they
        // take 2 s and 6 s, and the points measure what their runs were asked for.
        let mut s = Scenario::parse(Path::new("calibration.toml"), SCENARIO).unwrap();
        lengthen(&mut s, Duration::from_secs(2));
        let sweep = s.sweep.clone().expect("the calibration sweeps its points");
        let points = sweep.points(&s).unwrap();
        let durations: Vec<Duration> = points.iter().map(|p| p.scenario.duration).collect();
        assert_eq!(durations.len(), 8);
        assert_eq!(
            durations.iter().filter(|&&d| d == Duration::from_secs(2)).count(),
            7,
            "{durations:?}"
        );
        assert_eq!(durations[5], Duration::from_secs(6), "{durations:?}");
    }

    #[test]
    fn an_operation_no_run_carried_out_is_said_unmeasured_not_free() {
        // The shipped calibration without its failing receivers' runs, as every calibration
        // measured before them is: no run retried, so the table says a retry was not
        // measured (whatever its price), where its attempts were.
        let mut c = Calibration::reference();
        c.runs
            .retain(|r| r.counts.get(&Op::WebhookRetry).is_none_or(|&n| n == 0.0));
        assert!(c
            .runs
            .iter()
            .any(|r| r.counts.get(&Op::WebhookAttempt).is_some_and(|&n| n > 0.0)));
        let line = |says: &str| {
            render(&c)
                .lines()
                .find(|l| l.starts_with(says))
                .unwrap_or_else(|| panic!("no line for {says}"))
                .to_string()
        };
        assert!(line(Op::WebhookRetry.says()).ends_with("not measured: no run had one"));
        assert!(!line(Op::WebhookAttempt.says()).contains("not measured"));
    }

    #[test]
    fn the_fit_is_shown_against_each_point_and_mode_with_the_furthest_named() {
        // Two points: the first's pollers measured 1 s and 3 s over two runs and fitted 1 s
        // and 1 s (2 / 4 = 0.50), its SSE 2 s fitted 2 s (1.00); the second's pollers 1 s
        // fitted 1.1 s (1.10), and no SSE run.
        let run = |point: &str, mode: Mode, measured: f64, fitted: f64| crate::calibration::Run {
            point: point.into(),
            mode,
            counts: Default::default(),
            cpu_seconds: measured,
            fitted_cpu_seconds: fitted,
        };
        let mut c = Calibration::reference();
        c.runs = vec![
            run("clients.count=20", Mode::Poll, 1.0, 1.0),
            run("clients.count=20", Mode::Sse, 2.0, 2.0),
            run("clients.count=20", Mode::Poll, 3.0, 1.0),
            run("clients.count=3000", Mode::Poll, 1.0, 1.1),
        ];
        let text = fit_by_point(&c);
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(rows[2], ["point", "poll", "sse"], "{text}");
        assert_eq!(rows[3], ["1", "0.50", "1.00", "clients.count=20"], "{text}");
        assert_eq!(rows[4], ["2", "1.10", "-", "clients.count=3000"], "{text}");
        assert!(
            text.contains("Furthest from the measured: point 1's poll at 0.50."),
            "{text}"
        );
    }

    #[test]
    fn a_runs_wake_ups_are_counted_with_its_clients_holding_the_cores_beside_the_server() {
        // A calibration run of 50 pollers every 500 ms (a request every 10 ms), counted at
        // the shipped costs: with no clients' CPU fitted, as if the server were alone, nearly
        // every request finds a core asleep; with clients that take 20 ms of a core for each
        // request, their reads keep the cores busy and far fewer do.
        let runs: results::Results =
            serde_json::from_str(include_str!("../../tests/fixtures/calibration-runs.json")).unwrap();
        let (s, m) = runs
            .points
            .iter()
            .flat_map(|p| p.modes.iter().map(move |m| (&p.scenario, m)))
            .find(|(s, m)| m.mode == Mode::Poll && s.clients.count == 50)
            .expect("the run of 50 pollers");
        let mut alone = Calibration::reference();
        alone.clients.clear();
        let mut beside = Calibration::reference();
        beside.clients = vec![crate::calibration::ClientCpu {
            mode: Mode::Poll,
            second_ns: 0.0,
            request_ns: 20e6,
            event_ns: 0.0,
        }];
        let [_, alone_wakes, _] = wakes(s, m, &alone);
        let [_, beside_wakes, _] = wakes(s, m, &beside);
        assert!(alone_wakes > 0.0);
        assert!(
            beside_wakes < 0.5 * alone_wakes,
            "{beside_wakes} against {alone_wakes}"
        );
    }
}
