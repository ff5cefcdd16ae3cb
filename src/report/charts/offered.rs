//! A rate sweep's throughput: what each line sustained against what it was offered (with the
//! line where the two are equal, and its knee ringed), its p99 and its server CPU per
//! delivery, each against the offered rate.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::sweep::{draw_bands, Bands};
use super::{
    draw_styled_lines, every_point, with_grouped_legend, Styled, FONT, LABEL_SIZE, TICK_SIZE, TITLE_SIZE,
};
use crate::report::html::number;
use crate::report::lines::{modes, Axis};
use crate::report::offered::{rate_lines, RateLine};
use crate::report::{format_ms, titled};
use crate::results::{ModeResult, Results};

/// Whether `r` is a rate sweep with a sustained rate to draw.
pub fn applies(r: &Results) -> bool {
    !rate_lines(r).is_empty()
}

/// Each line's `(offered, y)` for the `y` its results give.
fn series(lines: &[RateLine], y: impl Fn(&RateLine, usize, &ModeResult) -> Option<f64>) -> Vec<Styled> {
    lines
        .iter()
        .map(|l| {
            let points = l
                .line
                .points
                .iter()
                .zip(&l.line.results)
                .enumerate()
                .filter_map(|(i, (t, (_, m)))| Some((t.offered, y(l, i, m).filter(|v| v.is_finite())?)))
                .collect();
            (l.line.mode, l.line.group, points)
        })
        .collect()
}

fn axis_label(v: &f64) -> String {
    if *v == 0.0 {
        "0".into()
    } else {
        number(*v)
    }
}

/// One panel against the offered rate, its mesh drawn: `(caption, width of the y labels, how
/// many x labels)`, the x axis from 0 to `x_max`, the y axis over `y`, labelled by `y_label`.
fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    (caption, y_label_width, x_labels): (&str, u32, usize),
    x_max: f64,
    y: std::ops::Range<f64>,
    y_label: &dyn Fn(&f64) -> String,
) -> anyhow::Result<
    ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, TICK_SIZE + 2))
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(y_label_width)
        .build_cartesian_2d(0f64..x_max, y)?;
    chart
        .configure_mesh()
        .x_desc("offered deliveries a second")
        .x_label_formatter(&axis_label)
        .y_label_formatter(y_label)
        .x_labels(x_labels)
        .label_style((FONT, TICK_SIZE - 2))
        .axis_desc_style((FONT, LABEL_SIZE - 3))
        .light_line_style(BLACK.mix(0.05))
        .draw()?;
    Ok(chart)
}

pub(super) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Results) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let lines = rate_lines(r);
    let titled = root.titled(
        &titled(
            r,
            "Offered against delivered: rate sustained, p99 and CPU per delivery",
        ),
        (FONT, TITLE_SIZE),
    )?;
    let plot = with_grouped_legend(&titled, &modes(r), &Axis::of(r))?;
    let (_, height) = plot.dim_in_pixel();
    let (top, bottom) = plot.split_vertically(height / 2);
    let (left, right) = {
        let (width, _) = bottom.dim_in_pixel();
        bottom.split_horizontally(width / 2)
    };
    let x_max = lines
        .iter()
        .flat_map(|l| l.line.points.iter().map(|t| t.offered))
        .fold(1.0, f64::max)
        * 1.05;
    let sustained = series(&lines, |l, i, _| Some(l.line.points[i].rate.as_ref()?.median));
    let y_max = sustained
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|p| p.1))
        .fold(x_max / 1.05, f64::max)
        * 1.1;

    // Sustained against offered, above the line where they are equal.
    let mut chart = panel(
        &top,
        ("sustained deliveries a second", 70, 10),
        x_max,
        0.0..y_max,
        &axis_label,
    )?;
    let equal = x_max.min(y_max);
    chart.draw_series(DashedLineSeries::new(
        [(0.0, 0.0), (equal, equal)],
        3,
        5,
        BLACK.mix(0.35).stroke_width(1),
    ))?;
    chart.draw_series(std::iter::once(Text::new(
        "delivered = offered",
        (equal * 0.62, equal * 0.7),
        (FONT, TICK_SIZE - 2).into_font().color(&BLACK.mix(0.55)),
    )))?;
    // Each sustained rate's 95% interval.
    let bands: Bands = lines
        .iter()
        .map(|l| {
            let band = l.line.points.iter().filter_map(|t| {
                t.rate
                    .as_ref()
                    .map(|s| (t.offered, s.interval.low, s.interval.high))
            });
            (l.line.mode, band.collect())
        })
        .collect();
    draw_bands(&mut chart, &bands)?;
    draw_styled_lines(root, &mut chart, &sustained, every_point)?;
    for (l, (_, _, points)) in lines.iter().zip(&sustained) {
        let Some(knee) = l.knee else { continue };
        let Some(&at) = points.iter().find(|p| p.0 == knee) else {
            continue;
        };
        chart.draw_series(std::iter::once(Circle::new(at, 10, BLACK.stroke_width(2))))?;
        chart.draw_series(std::iter::once(Text::new(
            "knee",
            (at.0 + x_max * 0.015, at.1 + y_max * 0.02),
            (FONT, TICK_SIZE - 1).into_font(),
        )))?;
    }

    // p99, on a log scale: log10 of it on a linear axis, labelled back in ms.
    let p99 = series(&lines, |_, _, m| Some(m.latency.p99_ms.max(0.001).log10()));
    let (lo, hi) = p99
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|p| p.1))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
    let (lo, hi) = if lo.is_finite() {
        (lo - 0.3, hi + 0.3)
    } else {
        (-1.0, 3.0)
    };
    let mut chart = panel(&left, ("p99 (log scale)", 58, 5), x_max, lo..hi, &|v| {
        format_ms(10f64.powf(*v))
    })?;
    draw_styled_lines(root, &mut chart, &p99, every_point)?;

    // Server CPU per delivery.
    let cpu = series(&lines, |_, _, m| {
        Some(m.server.cpu_seconds_per_1k_deliveries * 1000.0)
    });
    let cpu_max = cpu
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|p| p.1))
        .fold(1e-9, f64::max)
        * 1.15;
    let mut chart = panel(
        &right,
        ("server CPU ms per 1,000 deliveries", 58, 5),
        x_max,
        0.0..cpu_max,
        &axis_label,
    )?;
    draw_styled_lines(root, &mut chart, &cpu, every_point)?;
    Ok(())
}
