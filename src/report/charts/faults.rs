//! The run through its faults: one lane per fault naming its window, then deliveries per
//! second, webhook retries per second, and the latency of the events scheduled in each second
//! (median and 99th percentile), one line per mode, with the windows shaded.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{with_legend, FONT, LABEL_SIZE, TICK_SIZE, TITLE_SIZE};
use crate::event::Mode;
use crate::results::{ModeResult, Results};

/// Light fills for the windows, told apart by their labels too.
const SHADES: [RGBColor; 4] = [
    RGBColor(120, 120, 120),
    RGBColor(213, 94, 0),
    RGBColor(0, 114, 178),
    RGBColor(0, 158, 115),
];

type Series = Vec<(Mode, Vec<(f64, f64)>)>;

fn latency(r: &Results, pick: fn(&crate::results::LatencyPoint) -> f64) -> Series {
    r.modes
        .iter()
        .map(|m: &ModeResult| {
            let points = m
                .latency_over_time
                .iter()
                .map(|p| (p.t_s + 0.5, pick(p)))
                .collect();
            (m.mode, points)
        })
        .collect()
}

fn per_second(a: &crate::results::Sample, b: &crate::results::Sample, now: u64, before: u64) -> f64 {
    now.saturating_sub(before) as f64 / (b.t_s - a.t_s)
}

pub(super) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Results) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let titled = root.titled(
        &crate::report::titled(r, "Through the faults"),
        (FONT, TITLE_SIZE),
    )?;
    let modes: Vec<_> = r.modes.iter().map(|m| m.mode).collect();
    let plot = with_legend(&titled, &modes)?;
    let faults = &r.scenario.faults;
    let run_end = (r.scenario.warmup + r.scenario.duration).as_secs_f64();
    // Up to the last second anything happened (deliveries or retries), a little past the run.
    let t_max = r
        .modes
        .iter()
        .flat_map(|m| m.timeseries.windows(2))
        .filter(|w| w[1].delivered > w[0].delivered || w[1].webhook_retries > w[0].webhook_retries)
        .map(|w| w[1].t_s)
        .fold(run_end, f64::max)
        + 1.0;
    let lane_height = 16 * faults.len() as u32 + 8;
    let (lanes, panels) = plot.split_vertically(lane_height);
    draw_lanes(&lanes, r, t_max)?;
    let panels = panels.split_evenly((4, 1));
    let data: [(&str, Series); 4] = [
        (
            "deliveries/s",
            super::per_sample(r, |a, b| per_second(a, b, b.delivered, a.delivered)),
        ),
        (
            "retries/s",
            super::per_sample(r, |a, b| per_second(a, b, b.webhook_retries, a.webhook_retries)),
        ),
        ("p50 ms", latency(r, |p| p.p50_ms)),
        ("p99 ms", latency(r, |p| p.p99_ms)),
    ];
    let data = data.map(|(title, series)| {
        let kept = series
            .into_iter()
            .map(|(mode, points)| (mode, points.into_iter().filter(|p| p.0 <= t_max).collect()))
            .collect::<Series>();
        (title, kept)
    });
    let last = data.len() - 1;
    for (i, (panel, (title, series))) in panels.iter().zip(data).enumerate() {
        let max = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        let y_max = (max * 1.15).max(1.0);
        let mut chart = ChartBuilder::on(panel)
            .margin(5)
            .x_label_area_size(if i == last { 34 } else { 10 })
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..t_max, 0f64..y_max)?;
        let mut mesh = chart.configure_mesh();
        mesh.y_desc(title)
            .label_style((FONT, TICK_SIZE - 3))
            .axis_desc_style((FONT, LABEL_SIZE - 4))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .y_labels(3);
        if i == last {
            mesh.x_desc(
                "seconds since the generator started (latency by the second events were scheduled in)",
            );
        } else {
            mesh.x_label_formatter(&|_| String::new());
        }
        mesh.light_line_style(BLACK.mix(0.05)).draw()?;
        // Shade the windows, except a fault that covers nearly the whole run (its lane shows it).
        for (f, fault) in faults.iter().enumerate() {
            if fault.lasts.as_secs_f64() >= 0.9 * run_end {
                continue;
            }
            let (from, to) = (fault.at.as_secs_f64(), fault.end().as_secs_f64().min(t_max));
            let shade = SHADES[f % SHADES.len()];
            chart.draw_series([Rectangle::new(
                [(from, 0.0), (to, y_max)],
                shade.mix(0.10).filled(),
            )])?;
        }
        super::draw_lines(root, &mut chart, &series, super::every_point)?;
    }
    Ok(())
}

/// One lane per fault above the panels: a bar over its window, named.
fn draw_lanes<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &Results,
    t_max: f64,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let faults = &r.scenario.faults;
    let mut lanes = ChartBuilder::on(area)
        .margin_left(5)
        .margin_right(5)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..t_max, 0f64..faults.len().max(1) as f64)?;
    for (f, fault) in faults.iter().enumerate() {
        let shade = SHADES[f % SHADES.len()];
        let y = (faults.len() - 1 - f) as f64;
        let (from, to) = (fault.at.as_secs_f64(), fault.end().as_secs_f64().min(t_max));
        lanes.draw_series([Rectangle::new(
            [(from, y + 0.15), (to, y + 0.85)],
            shade.mix(0.45).filled(),
        )])?;
        // The label sits right of the bar, else left of it, else inside it.
        let label = format!("{}. {}", f + 1, fault.label());
        let (x, anchor) = if to < t_max * 0.7 {
            (to + t_max * 0.01, plotters::style::text_anchor::HPos::Left)
        } else if from > t_max * 0.3 {
            (from - t_max * 0.01, plotters::style::text_anchor::HPos::Right)
        } else {
            (from + t_max * 0.01, plotters::style::text_anchor::HPos::Left)
        };
        let style = (FONT, TICK_SIZE - 3).into_font().color(&BLACK.mix(0.8)).pos(
            plotters::style::text_anchor::Pos::new(anchor, plotters::style::text_anchor::VPos::Center),
        );
        lanes.draw_series([Text::new(label, (x.max(0.0), y + 0.5), style)])?;
    }
    Ok(())
}
