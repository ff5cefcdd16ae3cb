//! Latency distribution per mode: the share of deliveries that arrived within a time, on a log
//! time axis, so a poller's hundreds of milliseconds and a stream's single milliseconds fit on
//! one chart.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{draw_lines, log_bounds, measured, with_legend, FONT, LABEL_SIZE, TICK_SIZE, TITLE_SIZE};
use crate::report::format_ms;
use crate::results::{LatencySummary, Results};

/// (latency in ms, % of deliveries at or below it) for each recorded value.
pub(crate) fn cdf_points(l: &LatencySummary) -> anyhow::Result<Vec<(f64, f64)>> {
    let h = l.decode_histogram()?;
    let total = h.len().max(1) as f64;
    let mut seen = 0u64;
    Ok(h.iter_recorded()
        .map(|v| {
            seen += v.count_at_value();
            (
                (v.value_iterated_to() as f64 / 1000.0).max(0.001),
                seen as f64 / total * 100.0,
            )
        })
        .collect())
}

/// Markers at the 10th, 20th, … percentiles: enough to tell the lines apart in grey.
fn deciles(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    (1..10)
        .filter_map(|d| points.iter().find(|p| p.1 >= d as f64 * 10.0).copied())
        .collect()
}

pub(super) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Results) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let series = measured(r)
        .map(|m| Ok((m.mode, cdf_points(&m.latency)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (lo, hi) = log_bounds(series.iter().flat_map(|(_, p)| p.iter().map(|p| p.0)));
    let titled = root.titled(
        &crate::report::titled(r, "Delivery latency: share of deliveries within a time"),
        (FONT, TITLE_SIZE),
    )?;
    let modes: Vec<_> = series.iter().map(|(m, _)| *m).collect();
    let plot = with_legend(&titled, &modes)?;
    let mut chart = ChartBuilder::on(&plot)
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(64)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("latency from the event's scheduled time (log scale)")
        .y_desc("deliveries within (%)")
        .x_label_formatter(&|v| format_ms(*v))
        .label_style((FONT, TICK_SIZE))
        .axis_desc_style((FONT, LABEL_SIZE))
        .light_line_style(BLACK.mix(0.05))
        .draw()?;
    draw_lines(root, &mut chart, &series, deciles)?;
    Ok(())
}
