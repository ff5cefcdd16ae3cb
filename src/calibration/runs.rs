//! The calibration's scenarios, and which of their runs each part of the fit reads.

use crate::results::{ModeResult, Results};
use crate::scenario::Scenario;

/// The calibration runs, as a scenario file with a sweep.
pub const SCENARIO: &str = include_str!("scenario.toml");

/// The webhook sender's memory runs, measured after [`SCENARIO`]'s: its connections,
/// endpoints and attempts a second pulled apart, which in [`SCENARIO`]'s runs rise together.
/// Only the webhook memory is fitted from them.
pub const MEMORY_SCENARIO: &str = include_str!("memory.toml");

/// [`MEMORY_SCENARIO`]'s name, by which its runs are told from [`SCENARIO`]'s.
pub const MEMORY_SCENARIO_NAME: &str = "calibration-memory";

/// The pollers' page runs, measured after [`MEMORY_SCENARIO`]'s: pages of up to 775 KB, where
/// [`SCENARIO`]'s are all small, for what building and sending them leaves held. Only the
/// pollers' memory is fitted from them.
pub const PAGES_SCENARIO: &str = include_str!("pages.toml");

/// [`PAGES_SCENARIO`]'s name, by which its runs are told from [`SCENARIO`]'s.
pub const PAGES_SCENARIO_NAME: &str = "calibration-pages";

/// The scenarios measured for memory alone, after [`SCENARIO`], with the file names
/// `calibrate --runs DIR` keeps their runs under (DIR/memory, DIR/pages; [`CPU_SCENARIOS`]'
/// go beside them).
pub const MEMORY_SCENARIOS: [(&str, &str, &str); 2] = [
    (MEMORY_SCENARIO_NAME, MEMORY_SCENARIO, "memory"),
    (PAGES_SCENARIO_NAME, PAGES_SCENARIO, "pages"),
];

/// Whether runs of scenario `name` are for memory alone (not fitted for CPU, bytes, clients).
pub(super) fn for_memory_alone(name: &str) -> bool {
    among(&MEMORY_SCENARIOS, name)
}

/// Whether `name` is one of `scenarios`' (name, text, folder).
fn among(scenarios: &[(&str, &str, &str)], name: &str) -> bool {
    scenarios.iter().any(|(n, _, _)| *n == name)
}

/// The webhook sender's retry runs, measured after [`MEMORY_SCENARIOS`]: receivers that fail
/// the first attempts of every message, where [`SCENARIO`]'s never fail. Only the CPU is
/// fitted from them (a retry's, [`Op::WebhookRetry`](super::Op::WebhookRetry), beside every
/// other cost): their latency is the retries' and their memory holds the retries waiting.
pub const FAILURES_SCENARIO: &str = include_str!("failures.toml");

/// [`FAILURES_SCENARIO`]'s name, by which its runs are told from the others.
pub const FAILURES_SCENARIO_NAME: &str = "calibration-failures";

/// The webhook sender's and the long-poll server's runs over a round trip, measured after
/// [`FAILURES_SCENARIO`]'s: every reply 40 ms (± 10) away, where every other run's comes back
/// over loopback in a fraction of a millisecond, so that each of a fan-out's replies comes
/// back alone, to a worker parked meanwhile. Only the CPU is fitted from them (a reply from
/// afar's wake-up, [`Op::ReplyWake`](super::Op::ReplyWake), beside every other cost): their
/// latency is the round trip's.
pub const ROUND_TRIP_SCENARIO: &str = include_str!("round-trip.toml");

/// [`ROUND_TRIP_SCENARIO`]'s name, by which its runs are told from the others.
pub const ROUND_TRIP_SCENARIO_NAME: &str = "calibration-round-trip";

/// The scenarios measured for the CPU alone, after [`MEMORY_SCENARIOS`], with the file names
/// `calibrate --runs DIR` keeps their runs under (DIR/failures, DIR/round-trip).
pub const CPU_SCENARIOS: [(&str, &str, &str); 2] = [
    (FAILURES_SCENARIO_NAME, FAILURES_SCENARIO, "failures"),
    (ROUND_TRIP_SCENARIO_NAME, ROUND_TRIP_SCENARIO, "round-trip"),
];

/// Whether runs of scenario `name` are for the CPU alone (not fitted for memory, bytes,
/// packets or the clients).
pub(super) fn for_cpu_alone(name: &str) -> bool {
    among(&CPU_SCENARIOS, name)
}

/// `results` without the runs of the scenarios for the CPU alone.
pub(super) fn without_cpu_alone(results: &Results) -> Results {
    CPU_SCENARIOS
        .iter()
        .fold(results.clone(), |r, (name, _, _)| without(&r, name))
}

/// `results` without the runs of scenario `name`.
pub(super) fn without(results: &Results, name: &str) -> Results {
    let mut r = results.clone();
    r.points.retain(|p| p.scenario.name != name);
    if r.scenario.name == name {
        r.modes.clear();
    }
    r
}

/// Every run of `results`: its point's label (none for a run without a sweep), scenario and
/// mode.
pub(super) fn measured_runs(results: &Results) -> Vec<(String, &Scenario, &ModeResult)> {
    results
        .points
        .iter()
        .flat_map(|p| p.modes.iter().map(move |m| (p.label.clone(), &p.scenario, m)))
        .chain(
            results
                .modes
                .iter()
                .map(|m| (String::new(), &results.scenario, m)),
        )
        .collect()
}

/// A warning when the windows of `results`' runs hold heartbeats: no cost is fitted to them,
/// so their CPU goes to the streams' other costs (the calibration's own scenarios keep them
/// out of every window). None where none were counted, or the runs predate the count.
pub(super) fn heartbeats_warning(results: &Results) -> Option<String> {
    let runs = measured_runs(results);
    let beats: u64 = runs.iter().filter_map(|(_, _, m)| m.server.heartbeats).sum();
    (beats > 0).then(|| {
        format!(
            "these runs' windows hold {beats} heartbeats, which no cost is fitted to: their CPU is charged to the \
             streams' other costs (a client held, an event written); measure with heartbeats longer than the \
             warm-up and window together"
        )
    })
}

#[cfg(test)]
#[path = "runs_tests.rs"]
mod tests;
