//! The calibration's scenarios, and which of their runs each part of the fit reads.

use super::{Calibration, Counts, Op, Run, Wakes};
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
/// `calibrate --runs DIR` keeps their runs under (DIR/memory, DIR/pages; [`FAILURES_SCENARIO`]'s
/// go under DIR/failures).
pub const MEMORY_SCENARIOS: [(&str, &str, &str); 2] = [
    (MEMORY_SCENARIO_NAME, MEMORY_SCENARIO, "memory"),
    (PAGES_SCENARIO_NAME, PAGES_SCENARIO, "pages"),
];

/// Whether runs of scenario `name` are for memory alone (not fitted for CPU, bytes, clients).
pub(super) fn for_memory_alone(name: &str) -> bool {
    MEMORY_SCENARIOS.iter().any(|(n, _, _)| *n == name)
}

/// The webhook sender's retry runs, measured after [`MEMORY_SCENARIOS`]: receivers that fail
/// the first attempts of every message, where [`SCENARIO`]'s never fail. Only the CPU is
/// fitted from them (a retry's, [`Op::WebhookRetry`](super::Op::WebhookRetry), beside every other cost): their latency
/// is the retries' and their memory holds the retries waiting.
pub const FAILURES_SCENARIO: &str = include_str!("failures.toml");

/// [`FAILURES_SCENARIO`]'s name, by which its runs are told from the others.
pub const FAILURES_SCENARIO_NAME: &str = "calibration-failures";

/// The webhook sender's and the long-poll server's runs over a round trip, measured after
/// [`FAILURES_SCENARIO`]'s: every reply 40 ms (± 10) away, where every other run's comes back
/// over loopback in a fraction of a millisecond. Not fitted on: the costs fitted on the others
/// are checked against them ([`Calibration::checked`]), for what the model misses of a
/// reply over a real network (each of a fan-out's replies back alone, to a worker parked
/// meanwhile).
pub const ROUND_TRIP_SCENARIO: &str = include_str!("round-trip.toml");

/// [`ROUND_TRIP_SCENARIO`]'s name, by which its runs are told from the others.
pub const ROUND_TRIP_SCENARIO_NAME: &str = "calibration-round-trip";

/// `results`' runs of scenario `name` alone.
pub(super) fn only(results: &Results, name: &str) -> Results {
    let mut r = results.clone();
    r.points.retain(|p| p.scenario.name == name);
    if r.scenario.name != name {
        r.modes.clear();
    }
    r
}

/// The runs of `results` at `c`'s costs, without fitting on them: each one's operations as
/// measured, its wake-ups as the model counts them at those costs.
pub(super) fn checked(results: &Results, c: &Calibration, wakes: Wakes) -> Vec<Run> {
    measured_runs(results)
        .into_iter()
        .map(|(point, s, m)| {
            let mut counts = Counts::measured(m, f64::from(s.clients.count));
            let [wake, request_wake] = wakes(s, m, c);
            counts.set(Op::Wake, wake);
            counts.set(Op::RequestWake, request_wake);
            Run {
                point,
                mode: m.mode,
                counts: Op::ALL
                    .iter()
                    .map(|&op| (op, counts.get(op)))
                    .filter(|&(_, n)| n > 0.0)
                    .collect(),
                cpu_seconds: m.server.cpu_seconds,
                fitted_cpu_seconds: c.cpu_seconds(&counts),
            }
        })
        .collect()
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

#[cfg(test)]
#[path = "runs_tests.rs"]
mod tests;
