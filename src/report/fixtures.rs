//! Results built by hand for the report's tests.

use crate::event::Mode;
use crate::results::{ModeResult, Results, Sample, SweepPoint, SweptValue};
use crate::scenario::Sender;

use super::offered::RATE;

/// A webhook result offered `offered` a second for 5 s that delivered `rate` a second for
/// 8 whole seconds; one that fell behind left a third of its deliveries to the drain.
fn result(template: &ModeResult, offered: f64, rate: f64) -> ModeResult {
    let mut m = template.clone();
    m.mode = Mode::Webhook;
    m.repetitions.clear();
    m.measured_seconds = 5.0;
    m.deliveries.expected = (offered * 5.0) as u64;
    m.deliveries.delivered = m.deliveries.expected;
    m.theory.latency_mean_ms = 1.0;
    m.drain.deliveries = if rate < offered {
        m.deliveries.expected / 3
    } else {
        0
    };
    // A partial second at each end, whole seconds between.
    let counts = [0.0, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 8.7, 8.7];
    m.timeseries = counts
        .iter()
        .enumerate()
        .map(|(i, c)| Sample {
            t_s: i as f64,
            delivered: (c * rate) as u64,
            ..Sample::default()
        })
        .collect();
    m
}

/// A sweep of the event rate (four points) and the sender, each line's `(offered, rate)`
/// at each point.
pub(crate) fn rate_sweep(lines: &[(&str, [(f64, f64); 4])]) -> Results {
    let mut r = crate::results::one_run_fixture();
    let template = r.modes[0].clone();
    let value = |path: &str, value: String, number| SweptValue {
        path: path.into(),
        value,
        number,
    };
    r.points = (0..4)
        .flat_map(|i| lines.iter().map(move |(sender, points)| (i, sender, points[i])))
        .map(|(i, sender, (offered, rate))| SweepPoint {
            label: String::new(),
            values: vec![
                value(RATE, format!("{}", i + 1), Some(offered / 100.0)),
                value("webhook.sender", sender.to_string(), None),
            ],
            scenario: {
                let mut s = r.scenario.clone();
                s.webhook.sender = if *sender == "raw" {
                    Sender::Raw
                } else {
                    Sender::Dispatcher
                };
                s
            },
            modes: vec![result(&template, offered, rate)],
        })
        .collect();
    r
}
