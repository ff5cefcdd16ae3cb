//! Thresholds: checked after a run, listed in the report, exit code 3 when one fails.

use std::process::Command;

use crate::util::exe;

fn scenario(dir: &std::path::Path, thresholds: &str) -> std::path::PathBuf {
    let path = dir.join("t.toml");
    std::fs::write(
        &path,
        format!(
            "name = \"thresholds\"\nduration = \"500ms\"\nwarmup = \"100ms\"\ndrain = \"2s\"\nmodes = [\"sse\"]\n\
             [events]\nrate = 40\n[clients]\ncount = 3\n[thresholds]\n{thresholds}"
        ),
    )
    .unwrap();
    path
}

#[test]
fn passing_thresholds_exit_0_and_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(
        dir.path(),
        "\"sse.latency.p99\" = \"< 5s\"\n\"sse.lost\" = \"== 0\"\n",
    );
    let out = Command::new(exe())
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("threshold sse.latency.p99 < 5s: pass"),
        "{stdout}"
    );
    assert!(stdout.contains("threshold sse.lost == 0: pass"), "{stdout}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("id=\"thresholds\"") && html.contains("sse.lost == 0"));
}

#[test]
fn a_failing_threshold_and_one_with_no_data_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(
        dir.path(),
        "\"sse.latency.p50\" = \"< 1us\"\n\"webhook.lost\" = \"== 0\"\n\"sse.delivered\" = \">= 1\"\n",
    );
    let out = Command::new(exe())
        .arg("run")
        .arg(&path)
        .arg("--quiet")
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("threshold sse.latency.p50 < 1us: FAIL"),
        "{stderr}"
    );
    assert!(
        stderr.contains("threshold webhook.lost == 0: FAIL (measured no data)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("sse.delivered"),
        "passing thresholds stay quiet under --quiet: {stderr}"
    );
    assert!(
        stderr.contains("2 of the scenario's thresholds failed"),
        "{stderr}"
    );
    // The run's results and report are written all the same.
    assert!(dir.path().join("results.json").exists() && dir.path().join("report.md").exists());
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("| webhook.lost == 0 | no data | **FAIL** |"), "{md}");
}

#[test]
fn an_unknown_metric_is_a_validation_error_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), "\"sse.latency.p98\" = \"< 5ms\"\n");
    let out = Command::new(exe()).arg("validate").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(":11:1: `thresholds.\"sse.latency.p98\"`: unknown metric `latency.p98`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `latency.p99`?"), "{stderr}");
}

#[test]
fn a_bad_bound_points_at_the_condition() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), "\"poll.empty_share\" = \"< lots\"\n");
    let out = Command::new(exe()).arg("validate").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(":11:22: `thresholds.\"poll.empty_share\"`: `lots` is not a number"),
        "{stderr}"
    );
}

#[test]
fn thresholds_survive_the_resolved_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenario(dir.path(), "\"sse.latency.p99\" = \"< 50ms\"\n");
    let out = Command::new(exe()).arg("validate").arg(&path).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let again = pushpull::scenario::Scenario::parse(&path, &text).expect("the resolved scenario parses");
    assert_eq!(again.thresholds.0.len(), 1);
    assert_eq!(again.thresholds.0[0].bound, 50.0);
}
