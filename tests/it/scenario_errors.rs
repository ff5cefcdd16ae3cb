//! Mistakes in scenario files get the file, line, column, field and what was expected, and
//! exit code 2.

use std::process::Command;

use crate::util::exe;

/// Runs `pushpull validate` on `text` in-process and returns (exit code, its error, the
/// file's path).
fn validate(text: &str) -> (i32, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    match pushpull::app::validate(&path, false) {
        Ok(resolved) => (0, resolved, path),
        Err(failure) => (i32::from(failure.exit_code()), failure.to_string(), path),
    }
}

const HEAD: &str = "name = \"x\"\nduration = \"1s\"\n[clients]\ncount = 3\n[events]\n";

#[test]
fn unknown_key_names_its_place_and_suggests_the_nearest() {
    let (code, err, path) = validate(&format!("{HEAD}rat = 5\n"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "{}:6:1: `events.rat`: unknown key `rat`: did you mean `rate`?",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn wrong_type_names_its_place_and_what_was_expected() {
    let (code, err, path) = validate(&format!("{HEAD}rate = \"fast\"\n"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{}:6:8: `events.rate`:", path.display())),
        "{err}"
    );
    assert!(
        err.contains("invalid type: string \"fast\", expected f64"),
        "{err}"
    );
}

#[test]
fn negative_rate_is_refused() {
    let (code, err, path) = validate(&format!("{HEAD}rate = -5\n"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "{}:6:8: `events.rate`: expected a number greater than 0",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn zero_duration_is_refused() {
    let text = HEAD.replace("duration = \"1s\"", "duration = \"0s\"") + "rate = 5\n";
    let (code, err, path) = validate(&text);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "{}:2:12: `duration`: expected a duration from more than 0s",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn unknown_mode_suggests_the_nearest() {
    let text =
        format!("{HEAD}rate = 5\n").replace("[clients]", "modes = [\"poll\", \"websockets\"]\n[clients]");
    let (code, err, _) = validate(&text);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(":3:18: `modes`: expected one of"), "{err}");
    assert!(err.contains("did you mean `websocket`?"), "{err}");
}

#[test]
fn a_valid_file_prints_with_every_default_filled_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.toml");
    std::fs::write(&path, format!("{HEAD}rate = 5\n")).unwrap();
    let text = pushpull::app::validate(&path, false).expect("valid");
    let resolved = pushpull::scenario::Scenario::parse(&path, &text).expect("resolved output parses");
    assert_eq!(resolved.events.rate, 5.0);
    assert_eq!(resolved.poll.limit, 100);
    assert_eq!(resolved.modes.len(), 6);
}

#[test]
fn missing_file_is_bad_input() {
    let out = Command::new(exe())
        .args(["validate", "/nonexistent/nothing.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the file"));
}

#[test]
fn an_unknown_poll_schedule_names_the_choices() {
    let (code, err, _) = validate(&format!("{HEAD}rate = 5\n[poll]\nschedule = \"fixd\"\n"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(":8:12: `poll.schedule`: expected one of `fixed`, `after_answer`"),
        "{err}"
    );
    assert!(err.contains("did you mean `fixed`?"), "{err}");
}

#[test]
fn server_cores_are_checked_and_written_back_only_when_set() {
    let (code, err, path) = validate(&format!("{HEAD}rate = 5\n[server]\ncores = 0\n"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{}:8:9: `server.cores`:", path.display())),
        "{err}"
    );
    let (code, resolved, _) = validate(&format!("{HEAD}rate = 5\n[server]\ncores = 16\n"));
    assert_eq!(code, 0, "{resolved}");
    assert!(resolved.contains("[server]\ncores = 16"), "{resolved}");
    let (_, resolved, _) = validate(&format!("{HEAD}rate = 5\n"));
    assert!(!resolved.contains("[server]"), "{resolved}");
}

#[test]
fn a_servers_connections_are_checked_and_written_back_only_when_set() {
    let (code, err, path) = validate(&format!("{HEAD}rate = 5\n[server]\nmax_connections = 0\n"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{}:8:19: `server.max_connections`:", path.display())),
        "{err}"
    );
    let (code, resolved, _) = validate(&format!("{HEAD}rate = 5\n[server]\nmax_connections = 2000\n"));
    assert_eq!(code, 0, "{resolved}");
    assert!(
        resolved.contains("[server]\nmax_connections = 2000"),
        "{resolved}"
    );
}

#[test]
fn run_refuses_a_server_bigger_than_the_machine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    std::fs::write(&path, format!("{HEAD}rate = 5\n[server]\ncores = 4096\n")).unwrap();
    let out = Command::new(exe())
        .arg("run")
        .arg(&path)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.cores = 4096") && err.contains("can only be simulated"),
        "{err}"
    );
}

#[test]
fn the_network_is_checked_and_written_back_only_when_set() {
    let (code, err, path) = validate(&format!("{HEAD}rate = 5\n[network]\njitter = \"2 parsecs\"\n"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{}:8:10: `network.jitter`:", path.display())),
        "{err}"
    );
    let (code, err, _) = validate(&format!("{HEAD}rate = 5\n[network]\nbandwidth_mbps = 0\n"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`network.bandwidth_mbps`"), "{err}");
    let (code, resolved, _) = validate(&format!(
        "{HEAD}rate = 5\n[network]\nround_trip = \"40ms\"\njitter = \"5ms\"\n"
    ));
    assert_eq!(code, 0, "{resolved}");
    assert!(
        resolved.contains("[network]\nround_trip = \"40ms\"\njitter = \"5ms\""),
        "{resolved}"
    );
}

#[test]
fn drive_refuses_server_limits_it_cannot_set() {
    let dir = tempfile::tempdir().unwrap();
    for key in ["max_held_long_polls", "max_connections"] {
        let path = dir.path().join("limits.toml");
        std::fs::write(&path, format!("{HEAD}rate = 5\n[server]\n{key} = 10\n")).unwrap();
        let out = Command::new(exe())
            .args([
                "drive",
                "--target",
                "http://127.0.0.1:9",
                "--control",
                "http://127.0.0.1:9",
                "--quiet",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("server.{key} applies to the server `run` starts")),
            "{err}"
        );
    }
}

#[test]
fn every_shipped_scenario_is_valid() {
    // Every file under scenarios/ (the shipped scenarios, the held-out, the internet-scale, the
    // benches and the probes the README quotes) validates as it stands.
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")];
    let mut checked = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                if let Err(failure) = pushpull::app::validate(&path, false) {
                    panic!("{failure}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "only {checked} scenario files found");
}
