//! A server that holds its most connections, measured and modelled: `[server]
//! max_connections` lets the first clients in and answers the rest 503 with `Retry-After`,
//! and both `run` and `simulate` count what the clients turned away went without.

use std::process::Command;

use pushpull::event::Mode;
use pushpull::results::{ModeResult, Results};
use pushpull::scenario::Scenario;

use crate::util::{exe, run};

const SCENARIO: &str = "name = \"limit\"\nseed = 3\nduration = \"3s\"\nwarmup = \"1s\"\ndrain = \"1s\"\n\
                        modes = [\"poll\", \"long_poll\", \"sse\", \"websocket\"]\n\
                        [events]\nrate = 20\ntopics = 1\n[clients]\ncount = 5\n[poll]\ninterval = \"200ms\"\n\
                        [server]\nmax_connections = 3\n";

/// Three clients have every event and the two turned away none: exactly two fifths lost.
fn two_of_five_go_without(how: &str, m: &ModeResult) {
    let d = &m.deliveries;
    assert!(
        d.expected > 0 && d.expected.is_multiple_of(5),
        "{how} {}: {d:?}",
        m.mode
    );
    assert_eq!(d.delivered, d.expected / 5 * 3, "{how} {}: {d:?}", m.mode);
    assert_eq!(d.lost, d.expected / 5 * 2, "{how} {}: {d:?}", m.mode);
    assert!(m.server.connections_refused > 0, "{how} {}", m.mode);
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("it holds 3 at once (server.max_connections), and 5 clients asked")),
        "{how} {}: {:?}",
        m.mode,
        m.warnings
    );
}

#[tokio::test]
async fn clients_past_the_servers_connections_are_turned_away_measured_and_modelled() {
    let s = Scenario::parse(std::path::Path::new("limit.toml"), SCENARIO).unwrap();
    let measured = run(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limit.toml");
    std::fs::write(&path, SCENARIO).unwrap();
    let out = Command::new(exe())
        .arg("simulate")
        .arg(&path)
        .args(["--round-trip", "1ms", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let modelled = Results::load(&dir.path().join("results.json")).unwrap();
    for (m, model) in measured.modes.iter().zip(&modelled.modes) {
        two_of_five_go_without("measured", m);
        assert_eq!(m.deliveries.subscribers_with_loss, 2, "{}", m.mode);
        two_of_five_go_without("modelled", model);
        assert!(model.server.peak_connections == 3, "{}", model.mode);
        // Pollers are turned away at each of their slots (5 a second), long pollers a second
        // after each refusal (the server's Retry-After), both for the 4 s from the warm-up's
        // end: the model counts what the server counted, within what a busy machine adds to
        // each round (and a refusal more or less at either end for the long pollers).
        let (got, want) = (
            m.server.connections_refused as f64,
            model.server.connections_refused as f64,
        );
        match m.mode {
            Mode::Poll => assert!(
                (0.8..=1.2).contains(&(got / want)),
                "{got} measured, {want} modelled"
            ),
            Mode::LongPoll => assert!((got - want).abs() <= 2.0, "{got} measured, {want} modelled"),
            _ => {}
        }
    }
}

#[test]
fn a_capacity_search_says_that_no_core_count_serves_clients_turned_away() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limit.toml");
    std::fs::write(&path, SCENARIO.to_string() + "p99_target = \"1s\"\n").unwrap();
    let out = Command::new(exe())
        .arg("simulate")
        .arg(&path)
        .args(["--modes", "sse", "--round-trip", "1ms", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = Results::load(&dir.path().join("results.json")).unwrap();
    let c = &r.simulated.as_ref().unwrap().capacity[0];
    // Two of five clients get nothing: two fifths of what is owed, with any number of cores.
    assert_eq!(c.cores, None, "{c:?}");
    assert_eq!(c.lost * 5, r.modes[0].deliveries.expected * 2, "{c:?}");
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains(&format!("none: {} deliveries lost with {}", c.lost, c.most_cores))
            && md.contains("which no core count mends"),
        "{md}"
    );
}
