//! `pushpull drive`: the driver against a server that is already running.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use pushpull::driver::child::parse_listening;
use pushpull::results::Results;

use crate::util::exe;

/// A `pushpull serve` child, killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn drive_runs_against_a_running_server_and_records_the_clock_offset() {
    let mut child = Command::new(exe())
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Serve(child);
    let (public, control) = parse_listening(line.trim()).expect("serve prints its addresses");

    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("drive.toml");
    std::fs::write(
        &scenario,
        "name = \"drive\"\nduration = \"600ms\"\nwarmup = \"100ms\"\ndrain = \"2s\"\n\
         modes = [\"poll\", \"websocket\", \"webhook\"]\n[events]\nrate = 40\ntopics = 2\n[clients]\ncount = 4\n\
         [poll]\ninterval = \"100ms\"\n",
    )
    .unwrap();
    let out = Command::new(exe())
        .arg("drive")
        .arg(&scenario)
        .args([
            "--target",
            &format!("http://{public}"),
            "--control",
            &format!("http://{control}"),
            "--quiet",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = Results::load(&dir.path().join("results.json")).unwrap();
    assert_eq!(r.modes.len(), 3);
    for m in &r.modes {
        assert_eq!(
            m.deliveries.delivered, m.deliveries.expected,
            "{}: {:?}",
            m.mode, m.deliveries
        );
        assert!(m.deliveries.expected > 0);
    }
    // Same host, same monotonic clock: the estimated offset is zero within its uncertainty.
    let offset = r.environment.clock_offset_ns.expect("the offset is recorded");
    let uncertainty = r.environment.clock_uncertainty_ns.expect("with its uncertainty");
    assert!(
        offset.unsigned_abs() <= uncertainty + 1_000,
        "offset {offset} ns ± {uncertainty} ns"
    );
    assert!(
        r.environment.clock.contains(&public.to_string()),
        "{}",
        r.environment.clock
    );
}

#[test]
fn drive_refuses_a_target_that_is_not_an_address() {
    let out = Command::new(exe())
        .args([
            "drive",
            "scenarios/quickstart.toml",
            "--target",
            "http://example.com",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected http://ADDRESS:PORT"));
}
