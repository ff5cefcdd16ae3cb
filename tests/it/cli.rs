//! `pushpull run` end to end, as a user runs it.

use std::process::Command;

use pushpull::results::Results;

use crate::util::exe;

#[test]
fn run_writes_results_that_parse_back() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tiny.toml");
    std::fs::write(
        &scenario,
        "name = \"cli\"\nduration = \"500ms\"\nwarmup = \"100ms\"\ndrain = \"2s\"\nmodes = [\"sse\", \"long_poll\"]\n\
         [events]\nrate = 40\n[clients]\ncount = 4\n",
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = Command::new(exe())
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("long_poll") && stdout.contains("p50"),
        "the table is printed: {stdout}"
    );
    let results = Results::load(&out_dir.join("results.json")).expect("results parse back");
    assert_eq!(results.modes.len(), 2);
    assert_eq!(results.scenario.name, "cli");
    assert!(results.environment.cores >= 1);
    for m in &results.modes {
        assert_eq!(
            m.deliveries.delivered, m.deliveries.expected,
            "{:?}",
            m.deliveries
        );
        assert_eq!(
            m.latency.decode_histogram().unwrap().len(),
            m.deliveries.delivered
        );
    }
}

#[test]
fn run_json_prints_results_and_overrides_apply() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tiny.toml");
    // Regression: a fault that none of the modes left by `--modes` feels (a receiver's, in a
    // run of WebSockets) made the server refuse the scenario once the run had started.
    std::fs::write(
        &scenario,
        "name = \"cli\"\nduration = \"5m\"\nwarmup = \"0s\"\n[events]\nrate = 40\n[clients]\ncount = 2\n\
         [[faults]]\nkind = \"receiver_gone\"\nat = \"0s\"\nfor = \"1s\"\n",
    )
    .unwrap();
    let out = Command::new(exe())
        .arg("run")
        .arg(&scenario)
        .args([
            "--modes",
            "websocket",
            "--duration",
            "300ms",
            "--seed",
            "9",
            "--json",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results: Results = serde_json::from_slice(&out.stdout).expect("stdout is the results JSON");
    assert_eq!(results.scenario.seed, 9);
    assert_eq!(results.scenario.duration, std::time::Duration::from_millis(300));
    assert_eq!(results.modes.len(), 1);
}

#[test]
fn bad_mode_override_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tiny.toml");
    std::fs::write(
        &scenario,
        "name = \"cli\"\nduration = \"1s\"\n[events]\nrate = 4\n[clients]\ncount = 2\n",
    )
    .unwrap();
    let out = Command::new(exe())
        .arg("run")
        .arg(&scenario)
        .args(["--modes", "carrier_pigeon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mode `carrier_pigeon`"));
}

/// Runs `pushpull run` on a poll scenario of `clients` clients under `ulimit`.
fn run_under_ulimit(ulimit: &str, clients: u32) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("many.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"many\"\nduration = \"300ms\"\nwarmup = \"100ms\"\ndrain = \"2s\"\nmodes = [\"poll\"]\n\
             [events]\nrate = 20\n[clients]\ncount = {clients}\n[poll]\ninterval = \"100ms\"\n"
        ),
    )
    .unwrap();
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit {ulimit} && exec \"$0\" run \"$1\" --quiet --out \"$2\""
        ))
        .arg(exe())
        .arg(&scenario)
        .arg(dir.path())
        .output()
        .unwrap()
}

#[test]
fn more_clients_than_the_machine_allows_files_is_refused_before_anything_runs() {
    // 1,000 clients need 1,276 open files; a hard limit of 300 cannot be raised.
    let out = run_under_ulimit("-n 300", 1000);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1000 clients need about 1276 open files") && err.contains("300"),
        "{err}"
    );
}

#[test]
fn a_soft_open_file_limit_below_the_need_is_raised_to_the_hard_one() {
    let out = run_under_ulimit("-Sn 300", 400);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
