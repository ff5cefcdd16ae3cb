//! The run over time, from the once-a-second samples: deliveries per second, server CPU, open
//! connections and, where the machine was read, the CPU other processes took, with the band
//! above which a second counts as noisy shaded; one line per mode, time counted from each
//! mode's generator start.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{with_legend, FONT, LABEL_SIZE, TICK_SIZE, TITLE_SIZE};
use crate::results::{MachineSample, Results, Sample};

type Rate = fn(&Sample, &Sample) -> f64;

const PANELS: [(&str, Rate); 4] = [
    ("deliveries/s", |a, b| {
        (b.delivered - a.delivered) as f64 / (b.t_s - a.t_s)
    }),
    ("server CPU %", |a, b| {
        (b.server_cpu_seconds - a.server_cpu_seconds) / (b.t_s - a.t_s) * 100.0
    }),
    ("connections", |_, b| b.open_connections as f64),
    ("others' CPU %", |_, b| b.machine.others_share() * 100.0),
];

/// The last panel's: where the machine was read at all.
fn machine_read(r: &Results) -> bool {
    r.modes
        .iter()
        .flat_map(|m| &m.timeseries)
        .any(|s| s.machine.interval_s > 0.0)
}

pub(super) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Results) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let titled = root.titled(
        "Over time, once a second (server CPU: % of one core; others': % of the machine)",
        (FONT, TITLE_SIZE),
    )?;
    let modes: Vec<_> = r.modes.iter().map(|m| m.mode).collect();
    let plot = with_legend(&titled, &modes)?;
    let shown = if machine_read(r) {
        PANELS.len()
    } else {
        PANELS.len() - 1
    };
    let panels = plot.split_evenly((shown, 1));
    let last = shown - 1;
    let t_max = r
        .modes
        .iter()
        .flat_map(|m| m.timeseries.last())
        .map(|s| s.t_s)
        .fold(1.0, f64::max);
    for (i, (panel, (title, rate))) in panels.iter().zip(PANELS).enumerate() {
        let series = super::per_sample(r, rate);
        let max = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        let noisy = MachineSample::NOISY_OTHERS * 100.0;
        // The machine panel always reaches above the noisy line, so the band shows.
        let floor = if i == 3 { noisy * 1.25 } else { 1.0 };
        let top = (max * 1.15).max(floor);
        let mut chart = ChartBuilder::on(panel)
            .margin(6)
            .x_label_area_size(if i == last { 36 } else { 14 })
            .y_label_area_size(72)
            .build_cartesian_2d(0f64..t_max, 0f64..top)?;
        let mut mesh = chart.configure_mesh();
        mesh.y_desc(title)
            .label_style((FONT, TICK_SIZE - 2))
            .axis_desc_style((FONT, LABEL_SIZE - 3))
            .y_labels(4);
        if i == last {
            mesh.x_desc("seconds since the generator started");
        } else {
            mesh.x_label_formatter(&|_| String::new());
        }
        mesh.light_line_style(BLACK.mix(0.05)).draw()?;
        if i == 3 {
            // Seconds inside the band are named in the run's warnings as noisy.
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, noisy), (t_max, top)],
                RGBColor(213, 94, 0).mix(0.12).filled(),
            )))?;
        }
        super::draw_lines(root, &mut chart, &series, super::every_point)?;
    }
    Ok(())
}
