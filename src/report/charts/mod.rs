//! Charts: one file per chart, drawn once per backend (SVG for the HTML and Markdown reports,
//! PNG for everything else). Shared here: each mode's colour and marker, sizes, the embedded
//! font, and the loop that writes every chart of a run.
//!
//! Text is drawn with plotters' pure-Rust `ab_glyph` renderer from a font compiled into the
//! binary (DejaVu Sans), so a PNG looks the same on every machine and nothing needs fontconfig.

mod backlog;
mod cost;
mod faults;
mod latency_cdf;
mod offered;
mod percentiles;
mod sweep;
mod timeseries;

use std::path::Path;
use std::sync::Once;

use anyhow::Context as _;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::event::Mode;
use crate::results::Results;

/// Chart width and height in pixels.
pub const SIZE: (u32, u32) = (960, 540);
/// The font family every chart uses (registered from the embedded file).
pub const FONT: &str = "sans-serif";
/// Title, label and tick sizes.
pub const TITLE_SIZE: u32 = 24;
/// See [`TITLE_SIZE`].
pub const LABEL_SIZE: u32 = 17;
/// See [`TITLE_SIZE`].
pub const TICK_SIZE: u32 = 14;

static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font(FONT, style, FONT_BYTES).is_err() {
                panic!("the embedded font does not parse");
            }
        }
    });
}

/// Each mode's colour: the Okabe–Ito palette, distinguishable with the common colour-vision
/// deficiencies; markers and dashes tell the modes apart when printed in grey.
pub fn color(mode: Mode) -> RGBColor {
    match mode {
        Mode::Poll => RGBColor(230, 159, 0),
        Mode::ConditionalPoll => RGBColor(86, 180, 233),
        Mode::LongPoll => RGBColor(0, 158, 115),
        Mode::Sse => RGBColor(204, 121, 167),
        Mode::Websocket => RGBColor(0, 114, 178),
        Mode::Webhook => RGBColor(213, 94, 0),
    }
}

/// The same colour as a CSS hex string, for the HTML report.
pub fn css_color(mode: Mode) -> String {
    let RGBColor(r, g, b) = color(mode);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Each mode's marker shape, drawn at the data points of line charts.
#[derive(Clone, Copy)]
pub(crate) enum Marker {
    Circle,
    Square,
    Triangle,
    Cross,
    Diamond,
    Dot,
}

pub(crate) fn marker(mode: Mode) -> Marker {
    match mode {
        Mode::Poll => Marker::Circle,
        Mode::ConditionalPoll => Marker::Square,
        Mode::LongPoll => Marker::Triangle,
        Mode::Sse => Marker::Cross,
        Mode::Websocket => Marker::Diamond,
        Mode::Webhook => Marker::Dot,
    }
}

/// Draws `mode`'s marker at `at`.
pub(crate) fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    mode: Mode,
    at: (i32, i32),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let style = ShapeStyle {
        color: color(mode).to_rgba(),
        filled: true,
        stroke_width: 2,
    };
    let (x, y) = at;
    match marker(mode) {
        Marker::Circle => area.draw(&Circle::new(at, 5, style)),
        Marker::Square => area.draw(&Rectangle::new([(x - 4, y - 4), (x + 4, y + 4)], style)),
        Marker::Triangle => area.draw(&TriangleMarker::new(at, 6, style)),
        Marker::Cross => area.draw(&Cross::new(at, 5, style)),
        Marker::Diamond => area.draw(&Polygon::new(
            vec![(x, y - 6), (x + 6, y), (x, y + 6), (x - 6, y)],
            style,
        )),
        Marker::Dot => area.draw(&Circle::new(at, 3, style)),
    }
}

/// The charts of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// Latency CDF per mode on a log time axis.
    LatencyCdf,
    /// Latency at 50, 90, 99, 99.9, 99.99% and max, per mode.
    Percentiles,
    /// Small multiples of the server's cost per mode.
    Cost,
    /// Deliveries/s, server CPU and open connections over time, per mode.
    Timeseries,
    /// Deliveries/s, retries/s and latency over time, with the fault windows shaded.
    Faults,
    /// For a sweep: each metric against the swept parameter, per mode.
    SweepCurves,
    /// For a sweep: latency against server CPU at every point, with the Pareto frontier.
    Pareto,
    /// The webhook sender's CPU per attempt against its backlog, when it had one.
    Backlog,
    /// For a sweep of the event rate: sustained rate, p99 and CPU per delivery against the
    /// offered rate, the knee ringed.
    Offered,
}

impl Chart {
    /// The charts of a run without faults or a sweep, in report order.
    pub const PLAIN: [Chart; 4] = [
        Chart::LatencyCdf,
        Chart::Percentiles,
        Chart::Cost,
        Chart::Timeseries,
    ];
    /// The charts of a simulated run: its latency and, where the model charged them, its
    /// costs (the model samples no server time series, only deliveries and retries each
    /// second when there are faults to draw them against).
    pub const SIMULATED: [Chart; 3] = [Chart::LatencyCdf, Chart::Percentiles, Chart::Cost];
    /// The charts of a run with faults.
    pub const WITH_FAULTS: [Chart; 5] = [
        Chart::LatencyCdf,
        Chart::Percentiles,
        Chart::Cost,
        Chart::Timeseries,
        Chart::Faults,
    ];
    /// The charts of a sweep.
    pub const SWEEP: [Chart; 2] = [Chart::SweepCurves, Chart::Pareto];

    /// The charts for these results: a sweep's, or a run's (with the fault timeline when the
    /// scenario has faults), a rate sweep's throughput against the offered rate, and the
    /// webhook sender's cost against its backlog when it had one.
    pub fn for_results(r: &Results) -> Vec<Chart> {
        let mut charts = Self::standard(r).to_vec();
        let sampled = r.modes.iter().any(|m| !m.timeseries.is_empty());
        if r.simulated.is_some() && r.points.is_empty() && !r.scenario.faults.is_empty() && sampled {
            charts.push(Chart::Faults);
        }
        if offered::applies(r) {
            charts.push(Chart::Offered);
        }
        if backlog::applies(r) {
            charts.push(Chart::Backlog);
        }
        charts
    }

    fn standard(r: &Results) -> &'static [Chart] {
        // A model without server costs has no CPU to put a Pareto chart or cost panels on.
        let costed = r.has(crate::results::Figure::CpuMsPer1k);
        if !r.points.is_empty() && !costed {
            &Chart::SWEEP[..1]
        } else if !r.points.is_empty() {
            &Chart::SWEEP
        } else if r.simulated.is_some() && !costed {
            &Chart::SIMULATED[..2]
        } else if r.simulated.is_some() {
            &Chart::SIMULATED
        } else if r.scenario.faults.is_empty() {
            &Chart::PLAIN
        } else {
            &Chart::WITH_FAULTS
        }
    }

    /// File stem: `<name>.svg` and `<name>.png`.
    pub fn name(self) -> &'static str {
        match self {
            Chart::LatencyCdf => "latency-cdf",
            Chart::Percentiles => "latency-percentiles",
            Chart::Cost => "cost",
            Chart::Timeseries => "timeseries",
            Chart::Faults => "faults-timeline",
            Chart::SweepCurves => "sweep-curves",
            Chart::Pareto => "sweep-pareto",
            Chart::Backlog => "webhook-backlog",
            Chart::Offered => "sweep-offered",
        }
    }

    /// What the chart shows, in words.
    pub fn title(self) -> &'static str {
        match self {
            Chart::LatencyCdf => "Delivery latency: share of deliveries within a time",
            Chart::Percentiles => "Delivery latency by percentile",
            Chart::Cost => "What each mode costs the server",
            Chart::Timeseries => "Over time",
            Chart::Faults => "Through the faults: deliveries, retries and latency, fault windows shaded",
            Chart::SweepCurves => "Each metric against the swept parameter",
            Chart::Pareto => "Latency against server CPU, with the Pareto frontier",
            Chart::Backlog => "Webhook sender: server CPU per attempt against the backlog",
            Chart::Offered => "Offered against delivered: rate sustained, p99 and CPU per delivery",
        }
    }

    /// Draws the chart on any backend.
    pub fn draw<DB: DrawingBackend>(self, root: &DrawingArea<DB, Shift>, r: &Results) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        match self {
            Chart::LatencyCdf => latency_cdf::draw(root, r),
            Chart::Percentiles => percentiles::draw(root, r),
            Chart::Cost => cost::draw(root, r),
            Chart::Timeseries => timeseries::draw(root, r),
            Chart::Faults => faults::draw(root, r),
            Chart::SweepCurves => sweep::draw_curves(root, r),
            Chart::Pareto => sweep::draw_pareto(root, r),
            Chart::Backlog => backlog::draw(root, r),
            Chart::Offered => offered::draw(root, r),
        }
    }
}

/// One chart as the reports embed it.
pub struct Rendered {
    /// Which chart.
    pub chart: Chart,
    /// The SVG text.
    pub svg: String,
}

/// Draws every chart of `results` into `dir` as SVG and PNG and returns them for embedding.
pub fn render_all(results: &Results, dir: &Path) -> anyhow::Result<Vec<Rendered>> {
    register_font();
    let mut out = Vec::new();
    for chart in Chart::for_results(results) {
        let name = chart.name();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            chart
                .draw(&root, results)
                .with_context(|| format!("drawing {name}.svg"))?;
            root.present()?;
        }
        std::fs::write(dir.join(format!("{name}.svg")), &svg)
            .with_context(|| format!("writing {name}.svg"))?;
        let png = dir.join(format!("{name}.png"));
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        chart
            .draw(&root, results)
            .with_context(|| format!("drawing {name}.png"))?;
        root.present()
            .with_context(|| format!("writing {}", png.display()))?;
        out.push(Rendered { chart, svg });
    }
    Ok(out)
}

/// Each mode's line of `rate` between consecutive samples, at the later sample's time: one
/// line per source (a repetition, or a run of a merge), each on its own clock.
pub(crate) fn per_sample(
    r: &Results,
    rate: fn(&crate::results::Sample, &crate::results::Sample) -> f64,
) -> Vec<(Mode, Vec<(f64, f64)>)> {
    let mut out = Vec::new();
    for m in &r.modes {
        for samples in crate::results::Sample::by_source(&m.timeseries) {
            let points = samples
                .windows(2)
                .filter(|w| w[1].t_s > w[0].t_s)
                .map(|w| (w[1].t_s, rate(w[0], w[1])))
                .collect();
            out.push((m.mode, points));
        }
    }
    out
}

/// The modes of a run that delivered at least one event, with their results.
pub(crate) fn measured(r: &Results) -> impl Iterator<Item = &crate::results::ModeResult> {
    r.modes.iter().filter(|m| m.latency.count > 0)
}

/// A log axis's range around `values` (ms), with room at both ends; a default when empty.
pub(crate) fn log_bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo.is_finite() && hi > 0.0 {
        (lo.max(0.001) / 1.5, hi * 1.5)
    } else {
        (0.01, 1000.0)
    }
}

/// Chooses which of a line's points get a marker.
pub(crate) type PickMarkers = fn(&[(f64, f64)]) -> Vec<(f64, f64)>;

/// Draws each mode's line in its colour, with its marker at the points `marked` picks (every
/// point, or a few, so lines can be told apart in grey).
pub(crate) fn draw_lines<'a, DB, X, Y>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    series: &[(Mode, Vec<(f64, f64)>)],
    marked: PickMarkers,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (mode, points) in series {
        draw_line(root, chart, *mode, 0, points, marked)?;
    }
    Ok(())
}

/// A mode's line through one group of a sweep's points (see [`crate::report::lines`]).
pub(crate) type Styled = (Mode, usize, Vec<(f64, f64)>);

/// As [`draw_lines`], each line dashed after its group: the first group's solid, the others'
/// in [`dashes`].
pub(crate) fn draw_styled_lines<'a, DB, X, Y>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    series: &[Styled],
    marked: PickMarkers,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (mode, group, points) in series {
        draw_line(root, chart, *mode, *group, points, marked)?;
    }
    Ok(())
}

/// A group's dash and gap in pixels; the first group's line is solid.
fn dashes(group: usize) -> Option<(i32, i32)> {
    const PATTERNS: [(i32, i32); 3] = [(9, 5), (2, 4), (16, 4)];
    (group > 0).then(|| PATTERNS[(group - 1) % PATTERNS.len()])
}

fn draw_line<'a, DB, X, Y>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    mode: Mode,
    group: usize,
    points: &[(f64, f64)],
    marked: PickMarkers,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let style = color(mode).stroke_width(2);
    match dashes(group) {
        None => {
            chart.draw_series(LineSeries::new(points.iter().copied(), style))?;
        }
        Some((dash, gap)) => {
            chart.draw_series(DashedLineSeries::new(points.iter().copied(), dash, gap, style))?;
        }
    }
    for p in marked(points) {
        draw_marker(root, mode, chart.backend_coord(&p))?;
    }
    Ok(())
}

/// For [`draw_lines`]: a marker at every point.
pub(crate) fn every_point(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points.to_vec()
}

/// Width of the legend column at the right of line charts.
pub const LEGEND_WIDTH: u32 = 170;

/// Splits `area` into a plotting area and, at its right, a legend column listing `modes` with
/// their colour, line and marker: the legend never covers data.
pub(crate) fn with_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    modes: &[Mode],
) -> anyhow::Result<DrawingArea<DB, Shift>>
where
    DB::ErrorType: 'static,
{
    legend(area, modes, &[])
}

/// As [`with_legend`], and under the modes, when a sweep's points make more than one line per
/// mode, each group's dash beside its label (the other swept values).
pub(crate) fn with_grouped_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    modes: &[Mode],
    axis: &crate::report::lines::Axis,
) -> anyhow::Result<DrawingArea<DB, Shift>>
where
    DB::ErrorType: 'static,
{
    let groups = if axis.grouped() {
        axis.short_labels()
    } else {
        Vec::new()
    };
    legend(area, modes, &groups)
}

fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    modes: &[Mode],
    groups: &[String],
) -> anyhow::Result<DrawingArea<DB, Shift>>
where
    DB::ErrorType: 'static,
{
    let (width, _) = area.dim_in_pixel();
    let (plot, side) = area.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
    for (i, &mode) in modes.iter().enumerate() {
        let y = 40 + i as i32 * 28;
        side.draw(&PathElement::new(
            vec![(6, y), (42, y)],
            color(mode).stroke_width(3),
        ))?;
        draw_marker(&side, mode, (24, y))?;
        side.draw(&Text::new(
            mode.name(),
            (50, y - 8),
            (FONT, TICK_SIZE).into_font(),
        ))?;
    }
    let below = 40 + modes.len() as i32 * 28 + 12;
    for (g, label) in groups.iter().enumerate() {
        let y = below + g as i32 * 24;
        let style = BLACK.mix(0.7).stroke_width(2);
        match dashes(g) {
            None => side.draw(&PathElement::new(vec![(6, y), (42, y)], style))?,
            Some((dash, gap)) => {
                let mut x = 6;
                while x < 42 {
                    side.draw(&PathElement::new(vec![(x, y), ((x + dash).min(42), y)], style))?;
                    x += dash + gap;
                }
            }
        }
        side.draw(&Text::new(
            label.as_str(),
            (50, y - 8),
            (FONT, TICK_SIZE - 1).into_font(),
        ))?;
    }
    Ok(plot)
}
