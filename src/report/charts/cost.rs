//! What each mode cost the server, as small multiples: one panel per metric, one bar per mode.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{color, FONT, TICK_SIZE, TITLE_SIZE};
use crate::results::{ModeResult, Results};

/// A cost panel: title, unit and how to read the value.
pub(crate) struct Metric {
    /// Panel title.
    pub title: &'static str,
    /// Reads the value from a mode's results.
    pub value: fn(&ModeResult) -> f64,
    /// Formats the value.
    pub format: fn(f64) -> String,
}

/// The panels, in reading order.
pub(crate) const METRICS: [Metric; 6] = [
    Metric {
        title: "requests per delivered event",
        value: |m| m.server.requests_per_delivery,
        format: |v| format!("{v:.2}"),
    },
    Metric {
        title: "responses with no event (%)",
        value: |m| m.server.empty_share * 100.0,
        format: |v| format!("{v:.1}%"),
    },
    Metric {
        title: "bytes on the wire per event",
        value: |m| m.server.bytes_per_delivery,
        format: |v| format!("{v:.0} B"),
    },
    Metric {
        title: "server CPU per 1,000 events (ms)",
        value: |m| m.server.cpu_seconds_per_1k_deliveries * 1000.0,
        format: |v| format!("{v:.1} ms"),
    },
    Metric {
        title: "peak open connections",
        value: |m| m.server.peak_connections as f64,
        format: |v| format!("{v:.0}"),
    },
    Metric {
        title: "server memory per client (KiB)",
        value: |m| m.server.memory_per_client_bytes / 1024.0,
        format: |v| format!("{v:.1} KiB"),
    },
];

/// An axis number without its unit (the panel title says it).
fn compact(v: f64) -> String {
    if v == 0.0 || v.abs() >= 10.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub(super) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Results) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let titled = root.titled(
        &crate::report::titled(r, "What each mode costs the server (lower is cheaper)"),
        (FONT, TITLE_SIZE),
    )?;
    let panels = titled.split_evenly((2, 3));
    let n = r.modes.len().max(1);
    for (panel, metric) in panels.iter().zip(&METRICS) {
        let values: Vec<f64> = r
            .modes
            .iter()
            .map(|m| (metric.value)(m))
            .map(|v| if v.is_finite() { v } else { 0.0 })
            .collect();
        let max = values.iter().copied().fold(0.0, f64::max);
        let top = if max > 0.0 { max * 1.35 } else { 1.0 };
        let mut chart = ChartBuilder::on(panel)
            .caption(metric.title, (FONT, TICK_SIZE + 2))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(118)
            .build_cartesian_2d(0f64..top, 0f64..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&|y| {
                let i = y.floor() as usize;
                if (y - y.floor() - 0.5).abs() < 0.26 && i < r.modes.len() {
                    r.modes[n - 1 - i].mode.name().to_string()
                } else {
                    String::new()
                }
            })
            .x_labels(3)
            .x_label_formatter(&|v| compact(*v))
            .label_style((FONT, TICK_SIZE - 2))
            .light_line_style(BLACK.mix(0.05))
            .draw()?;
        for (i, (m, v)) in r.modes.iter().zip(&values).enumerate() {
            let row = (n - 1 - i) as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, row + 0.2), (*v, row + 0.8)],
                color(m.mode).filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                (metric.format)(*v),
                (*v + top * 0.02, row + 0.62),
                (FONT, TICK_SIZE - 2).into_font().color(&BLACK),
            )))?;
        }
    }
    Ok(())
}
