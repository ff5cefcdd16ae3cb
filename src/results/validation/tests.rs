use super::*;

/// What marks results as the model's, leaving `not_modelled` out.
fn modelled(not_modelled: Vec<Figure>) -> crate::results::Simulated {
    crate::results::Simulated {
        round_trip_ms: 0.3,
        jitter_ms: 0.0,
        bandwidth_mbps: None,
        not_modelled,
        server: None,
        capacity: Vec::new(),
    }
}

/// A sweep over `clients.count` whose poll p99 is `p99s` at 10, 100, 1000 and 5000.
fn swept(p99s: [f64; 4]) -> Results {
    let mut r = crate::results::one_run_fixture();
    let poll = r.modes.iter().find(|m| m.mode == Mode::Poll).unwrap().clone();
    r.points = [10.0, 100.0, 1000.0, 5000.0]
        .iter()
        .zip(p99s)
        .rev()
        .map(|(&x, p99)| {
            let mut m = poll.clone();
            m.latency.p99_ms = p99;
            // The p99 as set: no histogram to read it off, no repetitions.
            (m.spread, m.repetitions, m.latency.histogram) = Default::default();
            crate::results::SweepPoint {
                label: format!("clients.count={x}"),
                values: vec![crate::results::SweptValue {
                    path: "clients.count".into(),
                    value: x.to_string(),
                    number: Some(x),
                }],
                scenario: r.scenario.clone(),
                modes: vec![m],
            }
        })
        .collect();
    r
}

#[test]
fn the_knee_is_where_p99_first_doubles_over_the_flat_part_before_it() {
    // Whatever order the points are stored in, by the swept value.
    assert_eq!(knee(&swept([1.0, 1.2, 1.1, 5.0]), Mode::Poll), Some(5000.0));
    assert_eq!(
        knee(&swept([1.0, 0.6, 1.3, 9.0]), Mode::Poll),
        Some(1000.0),
        "twice the lowest before"
    );
    assert_eq!(knee(&swept([1.0, 1.5, 1.9, 1.99]), Mode::Poll), None);
    let measured = swept([1.0, 1.2, 1.1, 5.0]);
    let mut simulated = swept([1.0, 1.0, 4.0, 8.0]);
    simulated.simulated = Some(modelled(Vec::new()));
    let v = validate(&measured, &simulated).unwrap();
    assert_eq!(v.knees.len(), 1);
    let k = &v.knees[0];
    assert_eq!(
        (k.measured, k.simulated, k.verdict),
        (Some(5000.0), Some(1000.0), Verdict::Missed)
    );
    assert_eq!(
        k.goal,
        Goal::Share(0.2),
        "the goal it was judged against, in validation.json"
    );
    assert_eq!(
        v.checks.len(),
        4 * (Figure::ALL.len() - 1),
        "every figure at every point but heartbeats, which a poller has none of"
    );
    assert!(v.checks.iter().all(|c| c
        .point
        .as_deref()
        .is_some_and(|p| p.starts_with("clients.count="))));
}

#[test]
fn a_repeated_measurements_knee_is_its_median_p99s_and_a_repetitions_own_knee_is_within_noise() {
    // Three repetitions of each point, p99 by hand: the second puts the knee at 1000 alone,
    // the median curve (1, 1.2, 1.3, 5) puts it at 5000; pooled over the repetitions (the
    // ModeResult's own p99, set to the worst here) it would be at 1000.
    let reps = [[1.0, 1.2, 1.3, 5.0], [0.9, 1.0, 2.5, 6.0], [1.1, 1.3, 1.2, 4.0]];
    let mut measured = swept([1.1, 1.3, 2.5, 6.0]);
    for p in &mut measured.points {
        let x = p.values[0].number.unwrap();
        let i = [10.0, 100.0, 1000.0, 5000.0]
            .iter()
            .position(|&v| v == x)
            .unwrap();
        let m = &mut p.modes[0];
        m.repetitions = reps
            .iter()
            .map(|r| {
                let mut one = m.clone();
                one.latency.p99_ms = r[i];
                one
            })
            .collect();
        m.spread = crate::results::spread::spreads(&m.repetitions);
    }
    assert_eq!(knee(&measured, Mode::Poll), Some(5000.0));
    let verdict = |model: [f64; 4]| {
        let mut simulated = swept(model);
        simulated.simulated = Some(modelled(Vec::new()));
        let k = validate(&measured, &simulated).unwrap().knees.remove(0);
        assert_eq!(k.measured_each, vec![Some(5000.0), Some(1000.0), Some(5000.0)]);
        k.verdict
    };
    assert_eq!(verdict([1.0, 1.0, 1.0, 3.0]), Verdict::Met);
    assert_eq!(verdict([1.0, 1.0, 3.0, 8.0]), Verdict::WithinNoise);
    assert_eq!(verdict([1.0, 3.0, 3.0, 8.0]), Verdict::Missed);
    assert_eq!(verdict([1.0, 1.0, 1.0, 1.5]), Verdict::Missed, "no knee at all");
}

#[test]
fn a_knee_is_judged_only_over_points_whose_every_run_had_the_deliveries_a_p99_needs() {
    // At 10 clients each run delivered 14: its "p99" is the slowest of 14, lower than the
    // true p99 of the hundreds at the next point. Over the 100 deliveries a p99 needs, the
    // flat part is 0.6 and 1.0 and the knee 5000 (3.0 > 2 × 0.6), not 100 (0.6 > 2 × 0.25).
    let few = |r: &mut Results, n: u64| {
        for p in &mut r.points {
            if p.values[0].number == Some(10.0) {
                p.modes[0].latency.count = n;
            }
        }
    };
    let mut r = swept([0.25, 0.6, 1.0, 3.0]);
    assert_eq!(
        knee(&r, Mode::Poll),
        Some(100.0),
        "830 deliveries: a p99 of its own"
    );
    few(&mut r, 99);
    assert_eq!(knee(&r, Mode::Poll), Some(5000.0));
    few(&mut r, 100);
    assert_eq!(knee(&r, Mode::Poll), Some(100.0));
    // Repeated: a point counts only if each repetition had them, for the median's knee and
    // for each repetition's own.
    let mut r = swept([0.25, 0.6, 1.0, 3.0]);
    for p in &mut r.points {
        let m = &mut p.modes[0];
        m.repetitions = vec![m.clone(), m.clone()];
        if p.values[0].number == Some(10.0) {
            m.repetitions[1].latency.count = 14;
        }
        m.spread = crate::results::spread::spreads(&m.repetitions);
    }
    assert_eq!(knee(&r, Mode::Poll), Some(5000.0));
    assert_eq!(repetition_knees(&r, Mode::Poll), vec![Some(100.0), Some(5000.0)]);
}

#[test]
fn a_miss_smaller_than_the_noise_is_not_called_a_miss() {
    let measured = crate::results::one_run_fixture();
    let mut simulated = measured.clone();
    simulated.simulated = Some(modelled(Vec::new()));
    // Requests per event 11% high: outside the 10% goal by 1% of the value.
    let poll = simulated.modes.iter_mut().find(|m| m.mode == Mode::Poll).unwrap();
    poll.server.requests_per_delivery *= 1.11;
    // Judged on `n` requests for as many deliveries in each run.
    let verdict = |n: u64| {
        let (mut m, mut s) = (measured.clone(), simulated.clone());
        for r in [&mut m, &mut s] {
            let poll = r.modes.iter_mut().find(|m| m.mode == Mode::Poll).unwrap();
            poll.server.requests = n;
            poll.deliveries.delivered = n;
        }
        let checks = validate(&m, &s).unwrap().checks;
        let c = checks
            .iter()
            .find(|c| c.mode == Mode::Poll && c.figure == Figure::RequestsPerEvent);
        c.unwrap().verdict
    };
    // Thirty requests (a standard error of 18%): no verdict. A million (0.1%): a miss.
    assert_eq!(verdict(30), Verdict::WithinNoise);
    assert_eq!(verdict(1_000_000), Verdict::Missed);
}

#[test]
fn a_miss_inside_the_spread_of_the_repetitions_is_not_called_a_miss() {
    use crate::results::FigureSpread;
    let measured = crate::results::one_run_fixture();
    let mut simulated = measured.clone();
    simulated.simulated = Some(modelled(Vec::new()));
    // The model 1.4 times the measured median, beyond the 25% goal.
    let modelled = simulated.modes.iter_mut().find(|m| m.mode == Mode::Sse).unwrap();
    let cpu = Figure::CpuMsPer1k.of(modelled).unwrap();
    assert!(cpu > 0.0);
    modelled.server.cpu_seconds_per_1k_deliveries *= 1.4;
    let verdict = |repetitions: &[f64]| {
        let mut m = measured.clone();
        let sse = m.modes.iter_mut().find(|m| m.mode == Mode::Sse).unwrap();
        let values: Vec<f64> = repetitions.iter().map(|k| cpu * k).collect();
        sse.spread
            .insert(Figure::CpuMsPer1k, FigureSpread::of(&values, 1).unwrap());
        let checks = validate(&m, &simulated).unwrap().checks;
        let c = checks
            .iter()
            .find(|c| c.mode == Mode::Sse && c.figure == Figure::CpuMsPer1k)
            .unwrap();
        (c.verdict, c.measured_band)
    };
    // One repetition 1.2 times the median: the model is within 25% of it.
    let (v, band) = verdict(&[0.9, 1.0, 1.2]);
    assert_eq!(v, Verdict::WithinNoise);
    assert_eq!(band, Some((cpu * 0.9, cpu * 1.2)));
    // Repetitions within 2% of each other: a miss.
    assert_eq!(verdict(&[0.98, 1.0, 1.02]).0, Verdict::Missed);
    // A single run has no band, and is judged on its value.
    let checks = validate(&measured, &simulated).unwrap().checks;
    let c = checks
        .iter()
        .find(|c| c.mode == Mode::Sse && c.figure == Figure::CpuMsPer1k)
        .unwrap();
    assert_eq!((c.verdict, c.measured_band), (Verdict::Missed, None));
}

#[test]
fn goals_are_shares_or_milliseconds() {
    assert_eq!(Goal::of(Mode::Poll, Figure::LatencyP50), Some(Goal::Share(0.10)));
    assert_eq!(Goal::of(Mode::Sse, Figure::LatencyP50), Some(Goal::Ms(0.5)));
    assert_eq!(Goal::of(Mode::Sse, Figure::EmptyShare), None);
    assert!(Goal::Share(0.1).met(500.0, 545.0) && !Goal::Share(0.1).met(500.0, 556.0));
    assert!(Goal::Ms(0.5).met(0.35, 0.8) && !Goal::Ms(0.5).met(0.35, 0.9));
}

#[test]
fn a_run_beside_its_model_is_judged_and_the_unmodelled_left_out() {
    let measured = crate::results::one_run_fixture();
    let mut simulated = measured.clone();
    simulated.simulated = Some(modelled(vec![Figure::CpuMsPer1k]));
    // The model's poll p50 30% above the measured one misses (830 deliveries put the p50's
    // standard error near 3%); its requests match.
    let poll = simulated.modes.iter_mut().find(|m| m.mode == Mode::Poll).unwrap();
    poll.server.empty_share *= 1.05;
    let measured_poll = measured.modes.iter().find(|m| m.mode == Mode::Poll).unwrap();
    let p50 = Figure::LatencyP50.headline(measured_poll).unwrap();
    let mut h = crate::results::histogram::new_histogram();
    h.record_n((p50 * 1300.0) as u64, poll.deliveries.expected)
        .unwrap();
    poll.latency = crate::results::LatencySummary::from_histogram(&h);
    poll.deliveries.delivered = poll.deliveries.expected;
    let checks = validate(&measured, &simulated).unwrap().checks;
    let find = |mode, f| checks.iter().find(|c| c.mode == mode && c.figure == f).unwrap();
    assert_eq!(find(Mode::Poll, Figure::LatencyP50).verdict, Verdict::Missed);
    assert_eq!(find(Mode::Poll, Figure::EmptyShare).verdict, Verdict::Met);
    assert_eq!(find(Mode::Poll, Figure::RequestsPerEvent).verdict, Verdict::Met);
    assert_eq!(find(Mode::Sse, Figure::CpuMsPer1k).verdict, Verdict::NotModelled);
    assert_eq!(
        find(Mode::Sse, Figure::DeliveriesPerSecond).verdict,
        Verdict::NoGoal
    );
    // Two measured runs, or the sides swapped, are refused.
    assert!(validate(&measured, &measured).is_err());
    assert!(validate(&simulated, &measured).is_err());
}

#[test]
fn a_streams_heartbeats_are_checked_where_either_side_counted_them() {
    // 30 heartbeats measured over a 10 s window, 33 modelled: 3.0 and 3.3 a second, no goal.
    let mut measured = crate::results::one_run_fixture();
    measured
        .modes
        .retain(|m| matches!(m.mode, Mode::Sse | Mode::Poll));
    for m in &mut measured.modes {
        m.measured_seconds = 10.0;
        m.spread = Default::default();
        m.server.heartbeats = m.mode.streams().then_some(30);
    }
    let mut simulated = measured.clone();
    simulated.simulated = Some(modelled(Vec::new()));
    simulated.modes[0].server.heartbeats = simulated.modes[0].mode.streams().then_some(33);
    simulated.modes[1].server.heartbeats = simulated.modes[1].mode.streams().then_some(33);
    let v = validate(&measured, &simulated).unwrap();
    let beats: Vec<&Check> = v
        .checks
        .iter()
        .filter(|c| c.figure == Figure::HeartbeatsPerSecond)
        .collect();
    assert_eq!(beats.len(), 1, "the stream's alone: {beats:?}");
    let c = beats[0];
    assert_eq!(
        (c.mode, c.measured, c.simulated),
        (Mode::Sse, Some(3.0), Some(3.3))
    );
    assert_eq!(c.verdict, Verdict::NoGoal);
    // Measured before the server counted them: the model's figure stands beside none.
    for m in &mut measured.modes {
        m.server.heartbeats = None;
    }
    let v = validate(&measured, &simulated).unwrap();
    let c = v
        .checks
        .iter()
        .find(|c| c.figure == Figure::HeartbeatsPerSecond)
        .unwrap();
    assert_eq!((c.measured, c.verdict), (None, Verdict::NotMeasured));
    // And where the model has none either, nothing stands beside nothing: no row.
    for m in &mut simulated.modes {
        m.server.heartbeats = m.mode.streams().then_some(0);
    }
    let v = validate(&measured, &simulated).unwrap();
    assert!(!v.checks.iter().any(|c| c.figure == Figure::HeartbeatsPerSecond));
}
