//! Headline figures in words: one format per [`Figure`], for a single value, a spread over
//! repetitions, and the report's "Spread over repetitions" section.

use super::{format_ms, Section};
use crate::results::{Figure, FigureSpread, ModeResult, Results};

/// `v` as the table prints `f`.
pub fn value(f: Figure, v: f64) -> String {
    match f {
        Figure::LatencyP50 | Figure::LatencyP99 if v.is_infinite() => "> drain".into(),
        Figure::LatencyP50 | Figure::LatencyP99 => format_ms(v),
        Figure::RequestsPerEvent | Figure::PacketsPerEvent | Figure::CpuMsPer1k => format!("{v:.2}"),
        Figure::EmptyShare => format!("{:.1}%", v * 100.0),
        Figure::MemoryPerClient => format!("{:.1} KiB", v / 1024.0),
        Figure::BytesPerEvent | Figure::DeliveriesPerSecond | Figure::RequestsPerSecond => format!("{v:.0}"),
        Figure::HeartbeatsPerSecond => format!("{v:.1}"),
    }
}

/// A difference or half-range of `f` in its unit (no `> drain`: an infinite one reads `∞`).
pub fn amount(f: Figure, v: f64) -> String {
    if v.is_infinite() {
        "∞".into()
    } else if v == 0.0 {
        "0".into()
    } else {
        value(f, v)
    }
}

/// `median ± half-range`.
pub fn spread(f: Figure, s: &FigureSpread) -> String {
    if s.median.is_infinite() {
        return value(f, s.median);
    }
    format!("{} ± {}", value(f, s.median), amount(f, s.half_range()))
}

/// `f` of `m` as the table shows it: its spread over repetitions where there were several,
/// else its value; `—` where it was not measured.
pub fn cell(f: Figure, m: &ModeResult) -> String {
    match (m.spread.get(&f), f.of(m)) {
        (Some(s), _) => spread(f, s),
        (None, Some(v)) => value(f, v),
        (None, None) => "—".into(),
    }
}

/// Column headers of the spread section.
const HEADER: [&str; 5] = [
    "mode",
    "figure",
    "median",
    "min – max",
    "95% interval of the median",
];

/// One row per mode and figure with a spread; None when nothing was repeated.
pub fn section(r: &Results) -> Option<Section> {
    let mut rows = Vec::new();
    let mut n = 0;
    for m in &r.modes {
        for (&f, s) in &m.spread {
            n = n.max(s.n);
            rows.push((
                m.mode,
                vec![
                    m.mode.to_string(),
                    f.name().to_string(),
                    value(f, s.median),
                    format!("{} – {}", value(f, s.min), value(f, s.max)),
                    s.ci95.map_or("— (fewer than 5 repetitions)".into(), |ci| {
                        format!("{} – {}", value(f, ci.low), value(f, ci.high))
                    }),
                ],
            ));
        }
    }
    (!rows.is_empty()).then(|| Section {
        id: "spread",
        title: "Spread over repetitions",
        header: &HEADER,
        rows,
        note: format!(
            "Each mode ran {n} times on the same seeded schedule, the order of the modes rotated every round, so \
             these spreads are the machine's noise, not the workload's. The interval is a percentile bootstrap of \
             the median (10,000 resamples), given from 5 repetitions on. Figures are ranked only where their \
             intervals (or, below 5 repetitions, their ranges) do not overlap and their medians differ by more than \
             1%. With 5 repetitions the interval is the range itself: a resample's median falls on the smallest \
             value more often than 2.5% of the time."
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_figure_in_its_unit() {
        assert_eq!(value(Figure::LatencyP99, f64::INFINITY), "> drain");
        assert_eq!(value(Figure::LatencyP50, 0.51), "510 µs");
        assert_eq!(value(Figure::EmptyShare, 0.385), "38.5%");
        assert_eq!(value(Figure::MemoryPerClient, 2048.0), "2.0 KiB");
        let s = FigureSpread::of(&[1.0, 1.2, 1.1], 1).unwrap();
        assert_eq!(spread(Figure::RequestsPerEvent, &s), "1.10 ± 0.10");
        let beyond = FigureSpread::of(&[500.0, f64::INFINITY, 600.0], 1).unwrap();
        assert_eq!(spread(Figure::LatencyP99, &beyond), "600 ms ± ∞");
    }
}
