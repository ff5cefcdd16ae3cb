use super::*;

/// The calibration runs as measured on the reference machine (their time series left out).
fn runs() -> Results {
    serde_json::from_str(include_str!("../../tests/fixtures/calibration-runs.json")).unwrap()
}

#[test]
fn wake_ups_that_settle_are_fitted_and_ones_that_do_not_are_said() {
    // One wake-up per event measured: the counts never move after the first round.
    let steady = |_: &Scenario, m: &ModeResult, _: &Calibration| [m.deliveries.events_measured as f64, 0.0];
    let c = Calibration::fit(&runs(), &steady).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    for run in &c.runs {
        assert_eq!(
            run.counts.get(&Op::Wake).copied().unwrap_or(0.0),
            run.counts[&Op::Event]
        );
    }
    // Counts that flip between two values each round (of as many calls as runs) never settle.
    let r = runs();
    let per_round: usize = r.points.iter().map(|p| p.modes.len()).sum();
    let calls = std::cell::Cell::new(0usize);
    let flipping = |_: &Scenario, _: &ModeResult, _: &Calibration| {
        let round = calls.get() / per_round;
        calls.set(calls.get() + 1);
        [if round.is_multiple_of(2) { 100.0 } else { 200.0 }, 0.0]
    };
    let c = Calibration::fit(&r, &flipping).unwrap();
    assert_eq!(
        calls.get(),
        WAKE_ROUNDS * per_round,
        "every round counted every run"
    );
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("still moved by up to"),
        "{}",
        c.warnings[0]
    );
}
