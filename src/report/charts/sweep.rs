//! Sweep charts: each metric against the swept parameter, one line per mode and value of the
//! other swept parameters (with a band from the lowest to the highest repetition where points
//! were repeated); and every
//! (mode, point) on a latency-versus-cost plane with the Pareto frontier marked, the points no
//! other is both faster and cheaper than.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    draw_marker, draw_styled_lines, every_point, with_grouped_legend, with_legend, Styled, FONT, LABEL_SIZE,
    TICK_SIZE, TITLE_SIZE,
};
use crate::event::Mode;
use crate::report::format_ms;
use crate::report::lines::{lines, modes, Axis};
use crate::results::{Figure, ModeResult, Results};

type Read = fn(&ModeResult) -> f64;

/// Per line, its mode and `(x, lowest, highest)` at each point.
pub(super) type Bands = Vec<(Mode, Vec<(f64, f64, f64)>)>;

/// Per-event costs show efficiency; totals (requests/s, CPU, connections) show how cost grows
/// with the swept parameter.
/// The flag marks panels drawn on a log scale (latency spans milliseconds to seconds); the
/// figure is the one a panel needs the results to have.
const PANELS: [(&str, Read, bool, Figure); 6] = [
    (
        "median latency (log scale)",
        |m| m.latency.p50_ms,
        true,
        Figure::LatencyP50,
    ),
    (
        "requests per delivered event",
        |m| m.server.requests_per_delivery,
        false,
        Figure::RequestsPerEvent,
    ),
    (
        "bytes per event",
        |m| m.server.bytes_per_delivery,
        false,
        Figure::BytesPerEvent,
    ),
    (
        "server requests per second",
        |m| m.server.requests_per_second,
        false,
        Figure::RequestsPerSecond,
    ),
    (
        "server CPU (% of one core)",
        |m| {
            if m.measured_seconds > 0.0 {
                m.server.cpu_seconds / m.measured_seconds * 100.0
            } else {
                0.0
            }
        },
        false,
        Figure::CpuMsPer1k,
    ),
    (
        "peak open connections",
        |m| m.server.peak_connections as f64,
        false,
        // Peak connections have no figure of their own; every producer gives them.
        Figure::DeliveriesPerSecond,
    ),
];

/// Each metric against the swept parameter.
pub(super) fn draw_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Results,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let axis = Axis::of(r);
    let (x_desc, xs, log_x) = (axis.desc.as_str(), &axis.xs, axis.positive);
    let titled = root.titled(
        &crate::report::titled(r, "Each metric against the swept parameter"),
        (FONT, TITLE_SIZE),
    )?;
    let plot = with_grouped_legend(&titled, &modes(r), &axis)?;
    // The panels of figures these results have (a simulation leaves out its unmodelled costs).
    let shown: Vec<_> = PANELS.into_iter().filter(|p| r.has(p.3)).collect();
    let panels = plot.split_evenly(if shown.len() > 4 { (2, 3) } else { (2, 2) });
    let (x_lo, x_hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(*x), b.max(*x))
    });
    for (panel, (title, read, log_y, _)) in panels.iter().zip(shown) {
        // A log panel plots log10 of the value on a linear axis and labels it back in ms.
        let y_of = |v: f64| if log_y { v.max(0.001).log10() } else { v };
        let series: Vec<Styled> = lines(r, &axis, |m, x| {
            let y = read(m);
            y.is_finite().then(|| (x, y_of(y)))
        })
        .into_iter()
        .map(|l| (l.mode, l.group, l.points))
        .collect();
        // Where each point was repeated: the band from its lowest to its highest repetition.
        let bands: Bands = lines(r, &axis, |m, x| {
            let values: Vec<f64> = m.repetitions.iter().map(read).filter(|v| v.is_finite()).collect();
            (values.len() > 1).then(|| {
                let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (x, y_of(lo), y_of(hi))
            })
        })
        .into_iter()
        .map(|l| (l.mode, l.points))
        .collect();
        let ys = || {
            series
                .iter()
                .flat_map(|(_, _, p)| p.iter().map(|p| p.1))
                .chain(bands.iter().flat_map(|(_, b)| b.iter().map(|b| b.2)))
        };
        let (y_lo, y_hi) = if log_y {
            (
                ys().fold(f64::INFINITY, f64::min).min(0.0) - 0.3,
                ys().fold(0.0, f64::max) + 0.3,
            )
        } else {
            (0.0, ys().fold(0.0, f64::max).max(1e-9) * 1.15)
        };
        let y_label = |v: &f64| match (log_y, *v == 0.0) {
            (true, _) => format_ms(10f64.powf(*v)),
            (false, true) => "0".to_string(),
            (false, false) => crate::report::html::number(*v),
        };
        let mut builder = ChartBuilder::on(panel);
        builder
            .caption(title, (FONT, TICK_SIZE + 2))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(58);
        // Log x when the values span more than a decade (100 ms → 30 s), linear otherwise.
        if log_x && x_hi / x_lo > 10.0 {
            let mut chart = builder.build_cartesian_2d((x_lo / 1.3..x_hi * 1.3).log_scale(), y_lo..y_hi)?;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_label_formatter(&y_label)
                // Only powers of ten: the log axis's other ticks crowd each other.
                .x_label_formatter(&|v| {
                    let l = v.log10();
                    if (l - l.round()).abs() < 0.01 {
                        format!("{v}")
                    } else {
                        String::new()
                    }
                })
                .label_style((FONT, TICK_SIZE - 2))
                .axis_desc_style((FONT, LABEL_SIZE - 3))
                .light_line_style(BLACK.mix(0.05))
                .draw()?;
            draw_bands(&mut chart, &bands)?;
            draw_styled_lines(root, &mut chart, &series, every_point)?;
        } else {
            let pad = ((x_hi - x_lo) * 0.05).max(0.5);
            let mut chart = builder.build_cartesian_2d(x_lo - pad..x_hi + pad, y_lo..y_hi)?;
            // The swept values in plain numbers; the points' index in whole numbers alone.
            let by_index = axis.path.is_none();
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .x_labels(6)
                .x_label_formatter(&|v| match (by_index, (v - v.round()).abs() < 1e-9) {
                    (true, true) => format!("{}", v.round()),
                    (true, false) => String::new(),
                    (false, _) if *v == 0.0 => "0".into(),
                    (false, _) => crate::report::html::number(*v),
                })
                .y_label_formatter(&y_label)
                .label_style((FONT, TICK_SIZE - 2))
                .axis_desc_style((FONT, LABEL_SIZE - 3))
                .light_line_style(BLACK.mix(0.05))
                .draw()?;
            draw_bands(&mut chart, &bands)?;
            draw_styled_lines(root, &mut chart, &series, every_point)?;
        }
    }
    Ok(())
}

/// Shades, per line, the band between its lowest and highest value at each point
/// (`(x, low, high)`: its repetitions', or an interval's), under it in its mode's colour.
pub(super) fn draw_bands<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    bands: &Bands,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (mode, band) in bands.iter().filter(|(_, b)| b.len() > 1) {
        let outline: Vec<(f64, f64)> = band
            .iter()
            .map(|(x, lo, _)| (*x, *lo))
            .chain(band.iter().rev().map(|(x, _, hi)| (*x, *hi)))
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(
            outline,
            super::color(*mode).mix(0.18).filled(),
        )))?;
    }
    Ok(())
}

/// The points no other point beats on both axes (lower is better on each), by rising cost.
pub(crate) fn pareto(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut front: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|&(c, l)| {
            !points
                .iter()
                .any(|&(c2, l2)| c2 <= c && l2 <= l && (c2 < c || l2 < l))
        })
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    front.dedup();
    front
}

/// Latency against server cost for every mode at every point, with the Pareto frontier.
pub(super) fn draw_pareto<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Results,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let titled = root.titled(
        &crate::report::titled(r, "Latency against server CPU, every mode at every point"),
        (FONT, TITLE_SIZE),
    )?;
    let plot = with_legend(&titled, &modes(r))?;
    let dots: Vec<(Mode, (f64, f64))> = r
        .points
        .iter()
        .flat_map(|p| p.modes.iter().filter(|m| m.latency.count > 0))
        .map(|m| {
            (
                m.mode,
                (
                    m.server.cpu_seconds_per_1k_deliveries * 1000.0,
                    m.latency.p50_ms.max(0.001),
                ),
            )
        })
        .filter(|(_, (c, l))| c.is_finite() && l.is_finite())
        .collect();
    let (c_hi, l_lo, l_hi) = dots
        .iter()
        .fold((0.0f64, f64::INFINITY, 0.0f64), |(c, lo, hi), (_, (x, y))| {
            (c.max(*x), lo.min(*y), hi.max(*y))
        });
    let (l_lo, l_hi) = if l_lo.is_finite() {
        (l_lo / 1.5, l_hi * 1.5)
    } else {
        (0.01, 1000.0)
    };
    let mut chart = ChartBuilder::on(&plot)
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..(c_hi * 1.15).max(1e-6), (l_lo..l_hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("server CPU per 1,000 delivered events (ms)")
        .y_desc("median latency (log scale)")
        .y_label_formatter(&|v| format_ms(*v))
        .label_style((FONT, TICK_SIZE))
        .axis_desc_style((FONT, LABEL_SIZE))
        .light_line_style(BLACK.mix(0.05))
        .draw()?;
    let front = pareto(&dots.iter().map(|(_, p)| *p).collect::<Vec<_>>());
    chart.draw_series(LineSeries::new(
        front.iter().copied(),
        BLACK.mix(0.5).stroke_width(2),
    ))?;
    for (mode, p) in &dots {
        draw_marker(root, *mode, chart.backend_coord(p))?;
    }
    if let Some(last) = front.last() {
        chart.draw_series(std::iter::once(Text::new(
            "Pareto frontier",
            (last.0, last.1 * 1.25),
            (FONT, TICK_SIZE).into_font().color(&BLACK.mix(0.6)),
        )))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::pareto;

    #[test]
    fn the_frontier_keeps_only_undominated_points() {
        let pts = [(1.0, 100.0), (2.0, 10.0), (3.0, 50.0), (4.0, 1.0), (5.0, 1.0)];
        assert_eq!(pareto(&pts), vec![(1.0, 100.0), (2.0, 10.0), (4.0, 1.0)]);
    }
}
