//! `--repeat` and `compare` end to end, as a CI job uses them.

use std::path::Path;
use std::process::{Command, Output};

use pushpull::results::{Figure, Results};

use crate::util::exe;

const TINY: &str = "name = \"rep\"\nduration = \"600ms\"\nwarmup = \"100ms\"\ndrain = \"1s\"\n\
                    modes = [\"poll\", \"sse\"]\n[events]\nrate = 40\n[clients]\ncount = 4\n\
                    [poll]\ninterval = \"100ms\"\n";

fn pushpull(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new(exe());
    for a in args {
        c.arg(a);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn save(r: &Results, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string(r).unwrap()).unwrap();
}

#[test]
fn repeat_keeps_every_repetition_and_compare_finds_a_planted_regression() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("rep.toml");
    std::fs::write(&scenario, TINY).unwrap();
    let out = dir.path().join("base");
    let run = pushpull(&[&"run", &scenario, &"--repeat", &"3", &"--out", &out]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(
        text(&run).contains(" ± "),
        "the table shows spreads: {}",
        text(&run)
    );

    let base = Results::load(&out.join("results.json")).unwrap();
    assert_eq!(base.scenario.repeat, 3);
    for m in &base.modes {
        assert_eq!(m.repetitions.len(), 3, "{}", m.mode);
        let sum: u64 = m.repetitions.iter().map(|r| r.deliveries.delivered).sum();
        assert_eq!(m.deliveries.delivered, sum, "the pool sums its repetitions");
        assert_eq!(m.deliveries.delivered, m.deliveries.expected);
        let s = m.spread[&Figure::RequestsPerEvent];
        assert_eq!(s.n, 3);
        let each: Vec<f64> = m
            .repetitions
            .iter()
            .map(|r| r.server.requests_per_delivery)
            .collect();
        assert!(
            each.contains(&s.min) && each.contains(&s.max) && each.contains(&s.median),
            "{s:?} {each:?}"
        );
        // Connections held one run after another are not added up.
        let conns = |r: &pushpull::results::ModeResult| r.server.tcp.measured().map(|t| t.connections);
        assert_eq!(
            conns(m),
            m.repetitions.iter().filter_map(conns).max(),
            "{}",
            m.mode
        );
        // Rates are over the summed time of the repetitions, one after another.
        let seconds: f64 = m.repetitions.iter().map(|r| r.measured_seconds).sum();
        assert!((m.deliveries_per_second - sum as f64 / seconds).abs() < 1e-6);
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("## Spread over repetitions"), "{report}");
    // Every mode's rows reach the HTML page, not only the first few.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(
        html.matches("<td>requests_per_second</td>").count(),
        2,
        "one row per mode"
    );

    // The same results against themselves: nothing beyond noise, nothing to fail on.
    let same = pushpull(&[
        &"compare",
        &out.join("results.json"),
        &out.join("results.json"),
        &"--fail-on",
        &"latency.p99>1%",
    ]);
    assert!(same.status.success(), "{}", text(&same));
    assert!(text(&same).contains("0 regressed, 0 improved"), "{}", text(&same));

    // Plant a regression: poll's p99 twice as slow in every repetition.
    let mut worse = base.clone();
    let poll = worse.modes.iter_mut().find(|m| m.mode.name() == "poll").unwrap();
    let s = poll.spread.get_mut(&Figure::LatencyP99).unwrap();
    let band = s.max - s.min;
    (s.median, s.min, s.max) = (s.median * 2.0 + band, s.min * 2.0 + band, s.max * 2.0 + band);
    let new = dir.path().join("new/results.json");
    save(&worse, &new);
    let pages = dir.path().join("pages");
    let gate = pushpull(&[
        &"compare",
        &out.join("results.json"),
        &new,
        &"--out",
        &pages,
        &"--fail-on",
        &"latency.p99>10%",
    ]);
    assert_eq!(gate.status.code(), Some(3), "{}", text(&gate));
    assert!(text(&gate).contains("poll latency.p99"), "{}", text(&gate));
    assert!(text(&gate).contains("regressed"), "{}", text(&gate));
    let html = std::fs::read_to_string(pages.join("compare.html")).unwrap();
    assert!(html.contains("regressed") && pages.join("compare.md").exists());
    // A bound it does not break passes.
    let loose = pushpull(&[
        &"compare",
        &out.join("results.json"),
        &new,
        &"--fail-on",
        &"latency.p99>500%",
    ]);
    assert!(loose.status.success(), "{}", text(&loose));

    // Another scenario is refused as bad input.
    let mut other = base.clone();
    other.scenario.events.rate = 41.0;
    let elsewhere = dir.path().join("other/results.json");
    save(&other, &elsewhere);
    let refused = pushpull(&[&"compare", &out.join("results.json"), &elsewhere]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("same scenario"), "{}", text(&refused));
}

#[test]
fn a_bad_bound_is_bad_input() {
    let out = pushpull(&[&"compare", &"a.json", &"b.json", &"--fail-on", &"latency.p98>1%"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("latency.p99"),
        "names the figures: {}",
        text(&out)
    );
}
