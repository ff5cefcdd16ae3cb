//! The webhook sender's cost against its backlog: for each sampling interval, the server's CPU
//! per attempt made in it, at the backlog (deliveries waiting for a worker) its end found.
//! A sender whose cost per delivery grows with the backlog falls further behind the more it
//! is behind; a flat cloud is one that does not.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{FONT, LABEL_SIZE, LEGEND_WIDTH, TICK_SIZE, TITLE_SIZE};
use crate::event::Mode;
use crate::results::{ModeResult, Results, Sample};

/// Intervals with fewer attempts than this are left out: their CPU, read in clock ticks, is
/// too coarse to divide.
pub const MIN_ATTEMPTS: u64 = 1000;

/// Colours for the series, one per result (a sweep's points): Okabe–Ito, as the modes'.
const COLORS: [RGBColor; 6] = [
    RGBColor(213, 94, 0),
    RGBColor(0, 114, 178),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

/// `(backlog, µs of server CPU per attempt)` for each interval of `m`'s samples with enough
/// attempts, each repetition on its own.
pub fn points(m: &ModeResult) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for samples in Sample::by_source(&m.timeseries) {
        out.extend(samples.windows(2).filter_map(|w| {
            let attempts = w[1].webhook_attempts.checked_sub(w[0].webhook_attempts)?;
            let cpu = w[1].server_cpu_seconds - w[0].server_cpu_seconds;
            (attempts >= MIN_ATTEMPTS).then(|| (w[1].webhook_queued as f64, cpu / attempts as f64 * 1e6))
        }));
    }
    out
}

/// Each webhook result with a label: the run's, or each sweep point's.
fn series(r: &Results) -> Vec<(String, &ModeResult)> {
    if r.points.is_empty() {
        r.modes
            .iter()
            .filter(|m| m.mode == Mode::Webhook)
            .map(|m| ("webhook".to_string(), m))
            .collect()
    } else {
        r.points
            .iter()
            .filter_map(|p| Some((p.label.clone(), p.modes.iter().find(|m| m.mode == Mode::Webhook)?)))
            .collect()
    }
}

/// Whether the run had a webhook backlog to draw.
pub fn applies(r: &Results) -> bool {
    series(r)
        .iter()
        .any(|(_, m)| m.timeseries.iter().any(|s| s.webhook_queued > 0) && !points(m).is_empty())
}

pub(super) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Results) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let titled = root.titled(
        "Webhook sender: server CPU per attempt against the backlog, one dot a second",
        (FONT, TITLE_SIZE),
    )?;
    let (width, _) = titled.dim_in_pixel();
    let (plot, side) = titled.split_horizontally(width.saturating_sub(LEGEND_WIDTH * 2));
    let all: Vec<(String, Vec<(f64, f64)>)> = series(r).into_iter().map(|(l, m)| (l, points(m))).collect();
    let x_max = all
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.0))
        .fold(1.0, f64::max)
        * 1.05;
    let y_max = all
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(&plot)
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("backlog: deliveries waiting for a worker at the second's end")
        .y_desc("server CPU µs per attempt")
        .x_label_formatter(&|x| {
            if *x == 0.0 {
                "0".into()
            } else {
                crate::report::html::number(*x)
            }
        })
        .label_style((FONT, TICK_SIZE))
        .axis_desc_style((FONT, LABEL_SIZE))
        .light_line_style(BLACK.mix(0.05))
        .draw()?;
    for (i, (label, points)) in all.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))?;
        let y = 40 + i as i32 * 28;
        side.draw(&Circle::new((16, y), 5, color.filled()))?;
        side.draw(&Text::new(
            label.clone(),
            (30, y - 8),
            (FONT, TICK_SIZE).into_font(),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(source: u32, cpu: f64, attempts: u64, queued: u64) -> Sample {
        Sample {
            source,
            t_s: attempts as f64,
            server_cpu_seconds: cpu,
            webhook_attempts: attempts,
            webhook_queued: queued,
            ..Sample::default()
        }
    }

    #[test]
    fn cpu_is_divided_by_the_attempts_of_the_same_interval() {
        let mut m = crate::results::one_run_fixture().modes.remove(0);
        m.timeseries = vec![
            at(0, 0.0, 0, 0),
            // 20,000 attempts for 0.4 s: 20 µs each, with 5,000 waiting.
            at(0, 0.4, 20_000, 5_000),
            // 500 attempts: too few to divide, left out.
            at(0, 0.41, 20_500, 0),
            // A second repetition starts its counters again.
            at(1, 0.0, 0, 0),
            at(1, 0.3, 10_000, 9),
        ];
        let p = points(&m);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].0, 5000.0);
        assert!((p[0].1 - 20.0).abs() < 1e-9);
        assert!((p[1].1 - 30.0).abs() < 1e-9);
    }
}
