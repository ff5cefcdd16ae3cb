//! Merging results of several runs of one scenario.

use std::path::Path;
use std::process::Command;

use pushpull::results::{LatencySummary, Results};

use crate::util::exe;

fn run(dir: &Path, seed: u64, rate: u32) -> std::path::PathBuf {
    let scenario = dir.join(format!("s{seed}.toml"));
    std::fs::write(
        &scenario,
        format!(
            "name = \"merge\"\nseed = {seed}\nduration = \"600ms\"\nwarmup = \"100ms\"\ndrain = \"2s\"\n\
             modes = [\"poll\", \"sse\"]\n[events]\nrate = {rate}\ntopics = 2\n[clients]\ncount = 4\n\
             [poll]\ninterval = \"100ms\"\n"
        ),
    )
    .unwrap();
    let out = dir.join(format!("run{seed}-{rate}"));
    let status = Command::new(exe())
        .arg("run")
        .arg(&scenario)
        .arg("--quiet")
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    out.join("results.json")
}

#[test]
fn merging_two_runs_equals_one_run_over_the_combined_samples() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (run(dir.path(), 1, 40), run(dir.path(), 2, 40));
    let merged_dir = dir.path().join("merged");
    let out = Command::new(exe())
        .arg("report")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&merged_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (ra, rb) = (Results::load(&a).unwrap(), Results::load(&b).unwrap());
    let merged = Results::load(&merged_dir.join("results.json")).unwrap();
    assert_eq!(merged.sources.len(), 2);
    for (k, m) in merged.modes.iter().enumerate() {
        let (x, y) = (&ra.modes[k], &rb.modes[k]);
        let mut combined = x.latency.decode_histogram().unwrap();
        combined.add(y.latency.decode_histogram().unwrap()).unwrap();
        let expected = LatencySummary::from_histogram(&combined);
        assert_eq!(
            m.latency, expected,
            "{}: merged percentiles are those of all samples together",
            m.mode
        );
        assert_eq!(m.latency.count, x.latency.count + y.latency.count);
        assert_eq!(
            m.deliveries.expected,
            x.deliveries.expected + y.deliveries.expected
        );
        assert_eq!(
            m.deliveries.delivered,
            x.deliveries.delivered + y.deliveries.delivered
        );
        assert_eq!(m.server.requests, x.server.requests + y.server.requests);
        // The window's deliveries, the ratios' divisor, add up, and the ratios follow them.
        let in_window = |r: &pushpull::results::ModeResult| r.server.deliveries_in_window.unwrap();
        assert_eq!(in_window(m), in_window(x) + in_window(y));
        let requests_per_delivery = m.server.requests as f64 / in_window(m) as f64;
        assert!(
            (m.server.requests_per_delivery - requests_per_delivery).abs() < 1e-9,
            "ratios are recomputed"
        );
        let sources: std::collections::BTreeSet<u32> = m.timeseries.iter().map(|s| s.source).collect();
        assert_eq!(
            sources.into_iter().collect::<Vec<_>>(),
            vec![0, 1],
            "each run's time series is kept"
        );
        let topic_sum: u64 = m.deliveries.by_topic.iter().map(|t| t.expected).sum();
        assert_eq!(topic_sum, m.deliveries.expected);
    }
    assert!(merged_dir.join("report.html").exists());
}

#[test]
fn merging_other_scenarios_or_without_an_out_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (run(dir.path(), 1, 40), run(dir.path(), 1, 20));
    let out = Command::new(exe())
        .arg("report")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(dir.path().join("m"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("different scenario"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(exe())
        .arg("report")
        .arg(&a)
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --out"));
}
