//! For a sweep of the event rate: what each mode (and each value of the other swept
//! parameters, a sender) sustained against what it was offered, where it first fell behind
//! (its knee), and whether it held its peak when offered well past it.

use super::html::number;
use super::lines::{lines, Axis, Line};
use super::{figures, Section};
use crate::event::Mode;
use crate::results::throughput::Throughput;
use crate::results::{Figure, Results};

/// The swept parameter that makes a rate sweep.
pub const RATE: &str = "events.rate";

/// Offered past its peak by this factor, a sender should still deliver [`HOLD`] of the peak.
pub const PAST: [f64; 2] = [1.5, 2.0];
/// See [`PAST`].
pub const HOLD: f64 = 0.9;

const HEADER: [&str; 8] = [
    "line",
    "offered/s",
    "sustained/s",
    "its 95% interval",
    "share of its peak",
    "p99",
    "CPU ms/1k",
    "kept up",
];

/// One line of a rate sweep, its points by rising offered rate.
pub struct RateLine<'a> {
    /// The mode and the other swept values' label.
    pub line: Line<'a, Throughput>,
    /// Its name in tables and legends: the mode, and the other swept values when there are.
    pub name: String,
    /// The highest sustained median of its points and the offered rate it came at.
    pub peak: Option<(f64, f64)>,
    /// The offered rate at which it first fell behind.
    pub knee: Option<f64>,
}

/// The lines of a rate sweep, or none when `r` does not sweep the event rate.
pub fn rate_lines(r: &Results) -> Vec<RateLine<'_>> {
    let axis = Axis::of(r);
    if axis.path.as_deref() != Some(RATE) || r.simulated.is_some() {
        return Vec::new();
    }
    let short = axis.short_labels();
    lines(r, &axis, |m, _| Some(Throughput::of(m)))
        .into_iter()
        .map(|mut line| {
            let mut order: Vec<usize> = (0..line.points.len()).collect();
            order.sort_by(|&a, &b| line.points[a].offered.total_cmp(&line.points[b].offered));
            line.points = order.iter().map(|&i| line.points[i].clone()).collect();
            line.results = order.iter().map(|&i| line.results[i]).collect();
            let peak = line
                .points
                .iter()
                .filter_map(|t| Some((t.rate.as_ref()?.median, t.offered)))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let knee = line.points.iter().find(|t| t.behind).map(|t| t.offered);
            let name = if axis.grouped() {
                format!("{} ({})", line.mode.name(), short[line.group])
            } else {
                line.mode.name().to_string()
            };
            RateLine {
                line,
                name,
                peak,
                knee,
            }
        })
        .filter(|l| l.peak.is_some())
        .collect()
}

/// The section, when the run swept the event rate and its modes sustained a rate.
pub fn section(r: &Results) -> Option<Section> {
    let all = rate_lines(r);
    if all.is_empty() {
        return None;
    }
    let mut rows: Vec<(Mode, Vec<String>)> = Vec::new();
    for l in &all {
        let peak = l.peak.map_or(0.0, |p| p.0);
        for (t, (_, m)) in l.line.points.iter().zip(&l.line.results) {
            let (median, interval, share) = match &t.rate {
                Some(s) => (
                    number(s.median),
                    format!("{} – {}", number(s.interval.low), number(s.interval.high)),
                    format!("{:.2}", s.median / peak),
                ),
                None => ("—".into(), "—".into(), "—".into()),
            };
            rows.push((
                l.line.mode,
                vec![
                    l.name.clone(),
                    number(t.offered),
                    median,
                    interval,
                    share,
                    figures::cell(Figure::LatencyP99, m),
                    figures::cell(Figure::CpuMsPer1k, m),
                    if t.behind { "fell behind" } else { "yes" }.into(),
                ],
            ));
        }
    }
    let findings: Vec<String> = all.iter().map(finding).collect();
    Some(Section {
        id: "offered",
        title: "Offered against delivered",
        header: &HEADER,
        rows,
        note: format!(
            "Each line's points by rising offered rate (the deliveries the window's events owed, per second). \
             Sustained: the median of the per-second delivery rates from the first whole second with a delivery \
             to the last, with a 95% bootstrap interval of that median; its peak is the highest of a line's \
             medians, which a noisy point can lift. A line fell behind when the drain after the window got over a \
             tenth of its deliveries and over twice what one keeping up leaves it; its knee is the first offered \
             rate at which it did. Past the knee a sender should hold {:.0}% of its peak when offered {} times \
             that peak. {}",
            HOLD * 100.0,
            PAST.map(|f| format!("{f}")).join(" and "),
            findings.join(" ")
        ),
    })
}

/// What one line says, in sentences from its own numbers.
fn finding(l: &RateLine) -> String {
    let Some((peak, peak_at)) = l.peak else {
        return String::new();
    };
    let first = l.line.points.first().map_or(0.0, |t| t.offered);
    let last = l.line.points.last().map_or(0.0, |t| t.offered);
    let knee = match l.knee {
        None => format!(
            "kept up at every offered rate up to {}, so the sweep did not reach its knee",
            number(last)
        ),
        Some(k) if k <= first => format!("fell behind already at the lowest offered rate, {}", number(k)),
        Some(k) => {
            let before = l
                .line
                .points
                .iter()
                .rev()
                .find(|t| t.offered < k)
                .map_or(first, |t| t.offered);
            format!(
                "kept up to {} offered a second and fell behind from {}",
                number(before),
                number(k)
            )
        }
    };
    let mut out = format!(
        "{}: {knee}; it peaked at {} a second (offered {}).",
        capitalized(&l.name),
        number(peak),
        number(peak_at)
    );
    let past: Vec<(f64, &crate::results::throughput::Sustained)> = l
        .line
        .points
        .iter()
        .filter(|t| t.offered >= PAST[0] * peak)
        .filter_map(|t| Some((t.offered, t.rate.as_ref()?)))
        .collect();
    if past.is_empty() {
        out.push_str(&format!(
            " The sweep offered it at most {}, under {}× that peak: offer more to see whether it holds past its \
             knee.",
            number(last),
            PAST[0]
        ));
        return out;
    }
    let each: Vec<String> = past
        .iter()
        .map(|(offered, s)| {
            format!(
                "{} at {} offered ({:.1}× the peak; {:.2} of it)",
                number(s.median),
                number(*offered),
                offered / peak,
                s.median / peak
            )
        })
        .collect();
    let below: Vec<&(f64, &crate::results::throughput::Sustained)> =
        past.iter().filter(|(_, s)| s.median < HOLD * peak).collect();
    let beyond_noise = below
        .iter()
        .filter(|(_, s)| s.interval.high < HOLD * peak)
        .count();
    let hold = HOLD * 100.0;
    let verdict = if below.is_empty() {
        format!("it held at least {hold:.0}% of its peak at each")
    } else if beyond_noise == below.len() {
        format!(
            "it fell below {hold:.0}% of its peak at {} of them, beyond the noise of the median there",
            below.len()
        )
    } else if beyond_noise == 0 {
        format!(
            "its median fell below {hold:.0}% of its peak at {} of them, within the noise of the median there",
            below.len()
        )
    } else {
        format!(
            "its median fell below {hold:.0}% of its peak at {} of them, beyond the noise of the median at {}",
            below.len(),
            beyond_noise
        )
    };
    out.push_str(&format!(
        " Offered {}× its peak or more, it sustained {}: {verdict}.",
        PAST[0],
        each.join(", ")
    ));
    out
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::rate_sweep;

    #[test]
    fn the_knee_is_the_first_rate_fallen_behind_at_and_the_peak_is_judged_past_it() {
        let r = rate_sweep(&[
            // Peaks at 2,000 a second and falls to 1,500 at twice that: a collapse.
            (
                "dispatcher",
                [
                    (1000.0, 1000.0),
                    (2000.0, 2000.0),
                    (3000.0, 2000.0),
                    (4000.0, 1500.0),
                ],
            ),
            // Holds its 2,000 however much is offered.
            (
                "raw",
                [
                    (1000.0, 1000.0),
                    (2000.0, 2000.0),
                    (3000.0, 2000.0),
                    (4000.0, 2000.0),
                ],
            ),
        ]);
        let lines = rate_lines(&r);
        assert_eq!(lines.len(), 2);
        for l in &lines {
            assert_eq!(l.knee, Some(3000.0));
            assert_eq!(l.peak.map(|p| p.0), Some(2000.0));
        }
        let s = section(&r).unwrap();
        assert_eq!(s.rows.len(), 8);
        // The 4,000 offered to the dispatcher: 1,500 sustained, 0.75 of its peak.
        assert_eq!(s.rows[3].1[2], "1500");
        assert_eq!(s.rows[3].1[4], "0.75");
        assert_eq!(s.rows[3].1[7], "fell behind");
        assert_eq!(s.rows[1].1[7], "yes");
        assert!(s.note.contains(
            "Webhook (dispatcher): kept up to 2000 offered a second and fell behind from 3000; it peaked at 2000"
        ));
        assert!(s
            .note
            .contains("it fell below 90% of its peak at 1 of them, beyond the noise"));
        assert!(s.note.contains("it held at least 90% of its peak at each"));
    }

    #[test]
    fn a_sweep_that_never_falls_behind_has_no_knee_and_says_to_offer_more() {
        let r = rate_sweep(&[(
            "dispatcher",
            [
                (1000.0, 1000.0),
                (2000.0, 2000.0),
                (3000.0, 3000.0),
                (4000.0, 4000.0),
            ],
        )]);
        let l = &rate_lines(&r)[0];
        assert_eq!((l.knee, l.peak), (None, Some((4000.0, 4000.0))));
        let s = section(&r).unwrap();
        assert!(s.note.contains("did not reach its knee"));
        assert!(s.note.contains("offer more"));
    }

    #[test]
    fn a_sweep_of_another_parameter_has_no_section() {
        let mut r = rate_sweep(&[("dispatcher", [(1000.0, 1000.0); 4])]);
        for p in &mut r.points {
            p.values[0].path = "clients.count".into();
        }
        assert!(section(&r).is_none());
    }
}
