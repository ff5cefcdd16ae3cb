//! Runs measured before the TCP census's read was kept out of the server's CPU carry it (a few
//! milliseconds a run, more with more connections); runs measured since do not. A fit that
//! pools both says so.

use crate::results::Results;

/// Whether `results` pools runs whose CPU carries the TCP census's read at the window's start
/// (measured before it was kept out: TCP read, no census CPU counted) with runs whose CPU
/// does not.
pub(super) fn mixed(results: &Results) -> bool {
    let read: Vec<bool> = super::measured_runs(results)
        .iter()
        .filter(|(_, _, m)| m.server.tcp.measured().is_some())
        .map(|(_, _, m)| m.server.census_cpu_seconds > 0.0)
        .collect();
    read.contains(&true) && read.contains(&false)
}

#[cfg(test)]
mod tests {
    use super::super::Calibration;
    use crate::results::ModeResult;
    use crate::scenario::Scenario;

    #[test]
    fn runs_measured_with_and_without_the_census_in_their_cpu_are_said_to_differ() {
        // The fixture's runs were measured before the census's CPU was kept out: alone,
        // nothing to say. One of them marked as measured since (its census counted): the
        // pool mixes both.
        let steady =
            |_: &Scenario, m: &ModeResult, _: &Calibration| [m.deliveries.events_measured as f64, 0.0, 0.0];
        let said = |r: &crate::results::Results| {
            Calibration::fit(r, &steady, &super::super::tests::flat)
                .unwrap()
                .warnings
                .iter()
                .any(|w| w.contains("TCP counters"))
        };
        let mut r = super::super::tests::runs();
        assert!(!said(&r));
        r.points[0].modes[0].server.census_cpu_seconds = 0.003;
        assert!(said(&r));
    }
}
