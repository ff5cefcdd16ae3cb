//! The percentile spectrum, as HdrHistogram plots it: latency at the median, 90%, 99%, 99.9%,
//! 99.99% and the maximum, with the tail stretched out so rare slow deliveries are visible.
//! A mode's line stops at the last percentile its sample supports (see
//! [`crate::results::LatencySummary::supports`]).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    draw_lines, every_point, log_bounds, measured, with_legend, FONT, LABEL_SIZE, TICK_SIZE, TITLE_SIZE,
};
use crate::report::format_ms;
use crate::results::Results;

const QUANTILES: [f64; 9] = [0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999];

/// "Nines": 50% → 0.3, 90% → 1, 99% → 2, 99.9% → 3.
fn nines(q: f64) -> f64 {
    -(1.0 - q).log10()
}

/// Where the maximum is drawn.
const MAX_X: f64 = 5.0;

fn label(x: f64) -> String {
    if x >= MAX_X - 1e-9 {
        return "max".into();
    }
    if x < 0.25 {
        return String::new();
    }
    let p = (1.0 - 10f64.powf(-x)) * 100.0;
    let text = format!("{p:.4}");
    format!("{}%", text.trim_end_matches('0').trim_end_matches('.'))
}

pub(super) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Results) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let mut series = Vec::new();
    for m in measured(r) {
        let h = m.latency.decode_histogram()?;
        // Only the percentiles the sample supports: a p99.9 needs 1,000 deliveries, the
        // maximum as many as the p99.9.
        let mut points: Vec<(f64, f64)> = QUANTILES
            .iter()
            .filter(|&&q| m.latency.supports(q))
            .map(|&q| (nines(q), (h.value_at_quantile(q) as f64 / 1000.0).max(0.001)))
            .collect();
        if m.latency.supports(0.999) {
            points.push((MAX_X, (h.max() as f64 / 1000.0).max(0.001)));
        }
        series.push((m.mode, points));
    }
    let (lo, hi) = log_bounds(series.iter().flat_map(|(_, p)| p.iter().map(|p| p.1)));
    let titled = root.titled(
        &crate::report::titled(r, "Delivery latency by percentile"),
        (FONT, TITLE_SIZE),
    )?;
    let modes: Vec<_> = series.iter().map(|(m, _)| *m).collect();
    let plot = with_legend(&titled, &modes)?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..MAX_X + 0.25, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (log scale)")
        .x_labels(6)
        .x_label_formatter(&|x| label(*x))
        .y_label_formatter(&|v| format_ms(*v))
        .label_style((FONT, TICK_SIZE))
        .axis_desc_style((FONT, LABEL_SIZE))
        .light_line_style(BLACK.mix(0.05))
        .draw()?;
    draw_lines(root, &mut chart, &series, every_point)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(label(nines(0.5)), "50%");
        assert_eq!(label(nines(0.99)), "99%");
        assert_eq!(label(nines(0.999)), "99.9%");
        assert_eq!(label(MAX_X), "max");
    }
}
