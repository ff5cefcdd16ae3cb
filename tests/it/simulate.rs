//! `pushpull simulate`: the same scenario file, the same results schema and reports, marked
//! simulated, with the figures the model does not give left out.

use std::process::Command;

use pushpull::results::{Figure, Results};

use crate::util::exe;

fn simulate(scenario: &str, dir: &std::path::Path) -> std::process::Output {
    let path = dir.join("sim.toml");
    std::fs::write(&path, scenario).unwrap();
    Command::new(exe())
        .arg("simulate")
        .arg(&path)
        .args(["--round-trip", "2ms", "--quiet", "--out"])
        .arg(dir)
        .output()
        .unwrap()
}

const SCENARIO: &str = "name = \"sim\"\nseed = 4\nduration = \"10s\"\nwarmup = \"5s\"\ndrain = \"5s\"\n\
                        [events]\nrate = 50\ntopics = 10\n[clients]\ncount = 20000\n[poll]\ninterval = \"2s\"\n";

#[test]
fn simulate_writes_results_and_reports_marked_simulated() {
    // 20,000 clients: `run` would need 20,656 open files per process; a model needs none.
    let dir = tempfile::tempdir().unwrap();
    let out = simulate(SCENARIO, dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = Results::load(&dir.path().join("results.json")).unwrap();
    let sim = r.simulated.as_ref().expect("marked simulated");
    assert_eq!(sim.round_trip_ms, 2.0);
    assert!(!r.has(Figure::CpuMsPer1k) && r.has(Figure::LatencyP50));
    assert_eq!(r.modes.len(), 6);
    for m in &r.modes {
        assert_eq!(m.deliveries.delivered, m.deliveries.expected, "{}", m.mode);
        assert!(m.outcomes.adds_up(), "{}: {:?}", m.mode, m.outcomes);
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.starts_with("# pushpull report: sim (simulated)"), "{md}");
    assert!(md.contains("not from a measurement") && md.contains("cpu_ms_per_1k"));
    assert!(
        !md.contains("measured"),
        "a simulated report never says measured:\n{md}"
    );
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<title>pushpull: sim (simulated)</title>"));
    for chart in ["latency-cdf", "latency-percentiles"] {
        let svg = std::fs::read_to_string(dir.path().join(format!("{chart}.svg"))).unwrap();
        assert!(svg.contains("(simulated)"), "{chart}");
    }
    assert!(
        !dir.path().join("cost.svg").exists(),
        "no chart of costs the model does not give"
    );
    // The same seed gives the same figures; the report renders again from them unchanged.
    let again = tempfile::tempdir().unwrap();
    assert!(simulate(SCENARIO, again.path()).status.success());
    let r2 = Results::load(&again.path().join("results.json")).unwrap();
    assert_eq!(r.modes, r2.modes);
    pushpull::app::report(&[dir.path().join("results.json")], None).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("report.md")).unwrap(), md);
}

#[test]
fn what_the_model_lacks_is_refused_or_kept_apart() {
    let dir = tempfile::tempdir().unwrap();
    let faults = format!("{SCENARIO}[[faults]]\nkind = \"stream_cut\"\nat = \"10s\"\nfor = \"1s\"\n");
    let out = simulate(&faults, dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not model faults yet"));
    // A simulated results.json is not merged with measured ones (two of them stand side by
    // side instead).
    assert!(simulate(SCENARIO, dir.path()).status.success());
    let mut measured = Results::load(&dir.path().join("results.json")).unwrap();
    measured.simulated = None;
    let m = dir.path().join("measured.json");
    std::fs::write(&m, serde_json::to_string(&measured).unwrap()).unwrap();
    let three = [dir.path().join("results.json"), m.clone(), m];
    let failure = pushpull::app::report(&three, Some(dir.path().join("merged"))).expect_err("refused");
    assert!(failure.to_string().contains("not merged"), "{failure}");
}

#[test]
fn a_measured_and_a_simulated_run_stand_side_by_side() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quickstart-one-run.json");
    let measured = Results::load(&fixture).unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert!(simulate(&measured.scenario.to_toml(), dir.path())
        .status
        .success());
    let out = dir.path().join("side");
    let rendered =
        pushpull::app::report(&[fixture, dir.path().join("results.json")], Some(out.clone())).unwrap();
    assert_eq!(rendered.html, out.join("validation.html"));
    let text = rendered.side_by_side.expect("a side-by-side");
    assert!(
        text.contains("cpu_ms_per_1k") && text.contains("not modelled"),
        "{text}"
    );
    let md = std::fs::read_to_string(out.join("validation.md")).unwrap();
    assert!(
        md.contains("simulated beside measured") && md.contains("goals it is held to"),
        "{md}"
    );
    // Every mode's every headline figure is a row.
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| mode"))
            .count(),
        6 * 10
    );
}

#[test]
fn thresholds_on_what_the_model_gives_are_judged_and_the_rest_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let base = SCENARIO.replace("[events]", "modes = [\"poll\"]\n[events]");
    let with = |t: &str| format!("{base}[thresholds]\n{t}");
    // A held threshold and one on CPU, which the model does not give: exit 0, said so.
    let out = simulate(
        &with("\"poll.lost\" = \"== 0\"\n\"poll.cpu_seconds_per_1k_deliveries\" = \"< 0.001\"\n"),
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains("| poll.cpu_seconds_per_1k_deliveries < 0.001 | no data | not modelled |"),
        "{md}"
    );
    // One the model breaks fails as after a measurement (exit 3).
    let out = simulate(&with("\"poll.empty_share\" = \">= 0.99\"\n"), dir.path());
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FAIL (simulated"));
}

#[test]
fn a_sweep_is_simulated_point_by_point_and_drawn_without_what_is_not_modelled() {
    let dir = tempfile::tempdir().unwrap();
    let base = SCENARIO
        .replace("[events]", "modes = [\"poll\", \"webhook\"]\n[events]")
        .replace("count = 20000", "count = 2000");
    let out = simulate(
        &format!("{base}[sweep]\n\"poll.interval\" = [\"1s\", \"4s\"]\n"),
        dir.path(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = Results::load(&dir.path().join("results.json")).unwrap();
    assert_eq!(r.points.len(), 2);
    let p50 = |i: usize| r.points[i].modes[0].latency.p50_ms;
    // A poll every 4 s leaves an event waiting four times as long as one every second.
    assert!((p50(1) / p50(0) - 4.0).abs() < 0.4, "{} then {}", p50(0), p50(1));
    let svg = std::fs::read_to_string(dir.path().join("sweep-curves.svg")).unwrap();
    assert!(svg.contains("(simulated)") && !svg.contains("server CPU") && !svg.contains("bytes per event"));
    assert!(dir.path().join("sweep-curves.png").exists());
    assert!(
        !dir.path().join("sweep-pareto.svg").exists(),
        "latency against CPU: not modelled"
    );
}
