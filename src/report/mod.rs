//! Turning results into something a person reads: the terminal table, charts (SVG and PNG),
//! theory beside measurement, verdicts in plain words, and the HTML and Markdown reports that
//! hold them all.

pub mod capacity;
pub mod ceiling;
pub mod charts;
pub mod claims;
pub mod compare;
pub mod figures;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod html;
pub mod instrument;
pub mod lines;
pub mod markdown;
pub mod offered;
pub mod outcomes;
pub mod table;
pub mod theory;
pub mod thresholds;
pub mod validation;
pub mod verdict;
pub mod wire;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::results::{Figure, ModeResult, Results};
use html::number;

/// Writes the charts, `report.html` and `report.md` for `results` into `dir`; returns the
/// HTML report's path.
pub fn write_all(results: &Results, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let charts = charts::render_all(results, dir)?;
    let html_path = dir.join("report.html");
    std::fs::write(&html_path, html::render(results, &charts))
        .with_context(|| format!("writing {}", html_path.display()))?;
    let md_path = dir.join("report.md");
    std::fs::write(&md_path, markdown::render(results, &charts))
        .with_context(|| format!("writing {}", md_path.display()))?;
    Ok(html_path)
}

/// A table the reports show after the comparison, the same in HTML and Markdown: how the
/// instrument did, what went on the wire.
pub struct Section {
    /// Its anchor in the HTML report.
    pub id: &'static str,
    /// Its heading.
    pub title: &'static str,
    /// Column headers; the first column is the mode.
    pub header: &'static [&'static str],
    /// The rows, each with the mode it is about (its first cell names it).
    pub rows: Vec<(crate::event::Mode, Vec<String>)>,
    /// What the table shows, in a paragraph for under it.
    pub note: String,
}

/// The sections after the theory, in order (the instrument's and the wire's only for a
/// measurement).
pub fn sections(r: &Results) -> Vec<Section> {
    let mut out: Vec<Section> = figures::section(r).into_iter().collect();
    if r.simulated.is_none() {
        out.extend([instrument::section(r), wire::section(r)]);
    }
    out.extend(capacity::section(r));
    out
}

/// The sections after a sweep's table of every point.
pub fn sweep_sections(r: &Results) -> Vec<Section> {
    offered::section(r)
        .into_iter()
        .chain(ceiling::section(r))
        .collect()
}

/// Where the figures come from, in a word: "measured" or "simulated".
pub fn source(r: &Results) -> &'static str {
    if r.simulated.is_some() {
        "simulated"
    } else {
        "measured"
    }
}

/// A page's or chart's title, marked when the figures are simulated.
pub fn titled(r: &Results, title: &str) -> String {
    if r.simulated.is_some() {
        format!("{title} (simulated)")
    } else {
        title.to_string()
    }
}

/// For a simulated run, what the model is and what it leaves out, in a paragraph.
pub fn simulated_note(r: &Results) -> Option<String> {
    let sim = r.simulated.as_ref()?;
    let left_out: Vec<&str> = sim.not_modelled.iter().map(|f| f.name()).collect();
    let server = match &sim.server {
        Some(m) => {
            let charged = if sim
                .not_modelled
                .contains(&crate::results::Figure::PacketsPerEvent)
            {
                "memory and bytes"
            } else {
                "memory, bytes and TCP segments"
            };
            let elsewhere = if m.same_machine {
                String::new()
            } else {
                format!(
                    " (another machine than the one this model ran on, {}: the costs are that machine's)",
                    r.environment.hostname
                )
            };
            let beside = if m.clients_beside {
                "; the clients on the server's machine, as `run` has them: what each spends on an answer or \
                 an event (the calibration's fit of the driver's CPU), and each delivery's handoff to its reader \
                 (fitted on the calibration runs' latency), holds the server's cores too"
            } else {
                ""
            };
            let others: Vec<u64> = m
                .falls_asleep_alike_ns
                .iter()
                .copied()
                .filter(|&t| t != m.falls_asleep_ns)
                .collect();
            let threshold = crate::results::thresholds_in_words(&others, "or").map_or(String::new(), |others| {
                format!(
                    "; a job that found its core idle paid the share of a wake-up that the core had by then fallen \
                     asleep, a core idle falling asleep after {} ms on average, a time that calibration's runs fit no \
                     better than {others}, and on which the CPU of sparse requests and events rests",
                    m.falls_asleep_ns as f64 / 1e6
                )
            });
            let crowding = if m.crowded_at > 0 && m.crowded_ns > 0.0 {
                format!(
                    "; a request answered or a delivery pushed paid up to {} µs more for the clients the server \
                     held, in proportion to them up to {} and all of it past, as that calibration's runs cost \
                     more among more clients",
                    number(m.crowded_ns / 1e3),
                    number(m.crowded_at as f64)
                )
            } else {
                String::new()
            };
            format!(
                "a server of {} cores serving each operation at the CPU it cost when calibrated on {} at \
                 {}{elsewhere}, and charging {charged} at that calibration's rates{threshold}{crowding}{beside}",
                m.cores, m.calibrated_on, m.calibrated_at,
            )
        }
        None => "a server that spends no time of its own (only the webhook sender's concurrency holds \
                 deliveries back)"
            .into(),
    };
    let left_out = if left_out.is_empty() {
        String::new()
    } else {
        format!(" Not modelled, so left out: {}.", left_out.join(", "))
    };
    Some(format!(
        "These figures come from pushpull's discrete-event model of the scenario, not from a measurement: \
         the same seeded events and clients over a network with a {} ms round trip{}, and {server}.{left_out}{}",
        number(sim.round_trip_ms),
        network_extras(sim),
        calibration_error(r),
    ))
}

/// How far the calibration's costs leave each mode's CPU per 1,000 deliveries, as a sentence
/// after the model's description: each mode's error, or for a sweep the range of their shares
/// over its points (nothing where the run carries no such errors).
fn calibration_error(r: &Results) -> String {
    let share = |m: &ModeResult| {
        let e = m.server.cpu_calibration_error_ms_per_1k()?;
        Some((e, e / headline(Figure::CpuMsPer1k, m)))
    };
    let uncertain = if r.points.is_empty() {
        let each: Vec<String> = r
            .modes
            .iter()
            .filter_map(|m| {
                let (e, of) = share(m)?;
                Some(format!("{} ± {} ms ({:.0}%)", m.mode, number(e), 100.0 * of))
            })
            .collect();
        each.join(", ")
    } else {
        let shares: Vec<f64> = r
            .points
            .iter()
            .flat_map(|p| &p.modes)
            .filter_map(|m| Some(share(m)?.1))
            .collect();
        let (low, high) = shares
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
        if shares.is_empty() {
            String::new()
        } else {
            format!(
                "{:.1}% to {:.1}% of it, over the points and modes",
                100.0 * low,
                100.0 * high
            )
        }
    };
    if uncertain.is_empty() {
        return String::new();
    }
    format!(
        " The costs are the calibration's estimates, each with its standard error: one of them leaves CPU per \
         1,000 delivered events uncertain by {uncertain}; two modes' CPU is ranked only when they differ by more \
         than three standard errors of their difference under those costs (smaller than theirs together, for \
         what the modes share: the process's seconds, the clients held, the events published)."
    )
}

/// The model's jitter and bandwidth, where it had them, as words after its round trip.
fn network_extras(sim: &crate::results::Simulated) -> String {
    let mut out = String::new();
    if sim.jitter_ms > 0.0 {
        out += &format!(" (± {} ms)", number(sim.jitter_ms));
    }
    if let Some(mbps) = sim.bandwidth_mbps {
        out += &format!(", each message sent at {} Mbit/s", number(mbps));
    }
    out
}

/// Two figures within this share of each other are too close to rank: the one margin the
/// verdicts, the claims and the theory table all use.
pub const CLOSE_MARGIN: f64 = 0.2;

/// True when `a` is smaller than `b` by more than [`CLOSE_MARGIN`].
pub fn clearly_smaller(a: f64, b: f64) -> bool {
    a * (1.0 + CLOSE_MARGIN) < b
}

/// `f` of `m` as verdicts and claims weigh it: the median over its repetitions where there
/// were several, else its value (NaN where it was not measured, which ranks nowhere).
pub fn headline(f: Figure, m: &ModeResult) -> f64 {
    f.headline(m).unwrap_or(f64::NAN)
}

/// Whether `f` of `a` lies below `f` of `b` beyond noise. With repetitions on both sides:
/// when their bands (bootstrap intervals from 5 repetitions, else ranges) do not overlap.
/// With one run, which cannot measure the machine's noise: when it is smaller by more than
/// [`CLOSE_MARGIN`] and, where the counts give a sampling error
/// ([`Figure::sampling_error`]), by more than three of them.
///
/// A simulated CPU must also lie below by more than three standard errors of the difference
/// that the calibration's costs leave ([`crate::results::cpu_calibration_error_of_difference`]),
/// repeated or not: the model's repetitions draw other events, never other costs.
pub fn below(f: Figure, a: &ModeResult, b: &ModeResult) -> bool {
    let beyond_calibration = f != Figure::CpuMsPer1k
        || crate::results::cpu_calibration_error_of_difference(&a.server, &b.server)
            .is_none_or(|e| headline(f, b) - headline(f, a) > 3.0 * e);
    beyond_calibration && beyond_noise(f, a, b)
}

/// [`below`] but for the calibration's costs.
fn beyond_noise(f: Figure, a: &ModeResult, b: &ModeResult) -> bool {
    match (a.spread.get(&f), b.spread.get(&f)) {
        (Some(x), Some(y)) => crate::results::spread::clearly_below(x, y),
        _ => {
            let (x, y) = (headline(f, a), headline(f, b));
            let sampled = match (f.sampling_error(a), f.sampling_error(b)) {
                (Some(sa), Some(sb)) => y - x > 3.0 * sa.hypot(sb),
                _ => true,
            };
            clearly_smaller(x, y) && sampled
        }
    }
}

/// What "too close to rank" on `f` meant for `modes`, for a sentence, as [`below`] decided
/// it: `within noise (...)` where all were repeated, else the margin (and sampling error);
/// within three of the calibration's standard errors where those held back a pair that the
/// rest would have ranked (a simulated CPU).
pub fn too_close_words(f: Figure, modes: &[&ModeResult]) -> String {
    // Pairs the noise alone would have ranked, held back by the calibration's costs.
    let pairs = || modes.iter().flat_map(|a| modes.iter().map(move |b| (*a, *b)));
    let held_back = pairs().any(|(a, b)| beyond_noise(f, a, b) && !below(f, a, b));
    let within_noise =
        pairs().any(|(a, b)| headline(f, a) <= headline(f, b) && a.mode != b.mode && !beyond_noise(f, a, b));
    let costs = "within three of the calibration's standard errors";
    let noise = if modes.iter().all(|m| m.spread.contains_key(&f)) {
        "within noise (their spreads over the repetitions overlap)".to_string()
    } else if modes.iter().all(|m| f.sampling_error(m).is_some()) {
        format!("within {:.0}% or three sampling errors", CLOSE_MARGIN * 100.0)
    } else {
        format!("within {:.0}%", CLOSE_MARGIN * 100.0)
    };
    match (held_back, within_noise) {
        (true, true) => format!("{noise}, or {costs}"),
        (true, false) => costs.into(),
        _ => noise,
    }
}

/// A percentile of latency over every owed delivery (see
/// [`crate::results::ModeResult::owed_latency_ms`]): `> drain` when it falls among the
/// deliveries that never arrived.
pub fn format_owed(m: &crate::results::ModeResult, q: f64) -> String {
    m.owed_latency_ms(q)
        .map_or_else(|| "> drain".to_string(), format_ms)
}

/// After a list of percentiles: `, p99.9 X, max Y (n = N)` where the sample supports a p99.9,
/// else why they are left out.
pub fn tail(l: &crate::results::LatencySummary) -> String {
    if l.supports(0.999) {
        format!(
            ", p99.9 {}, max {} (n = {})",
            format_ms(l.p999_ms),
            format_ms(l.max_ms),
            l.count
        )
    } else {
        format!(
            "; p99.9 and max left out: {} deliveries, fewer than the {} a p99.9 needs",
            l.count,
            crate::results::LatencySummary::TAIL_SAMPLES
        )
    }
}

/// A latency in the unit that reads best: `850 µs`, `4.2 ms`, `250 ms`, `1.5 s`.
pub fn format_ms(v: f64) -> String {
    if v >= 1000.0 {
        let s = format!("{:.2}", v / 1000.0);
        format!("{} s", s.trim_end_matches('0').trim_end_matches('.'))
    } else if v >= 10.0 {
        format!("{v:.0} ms")
    } else if v >= 1.0 {
        format!("{v:.1} ms")
    } else {
        format!("{:.0} µs", v * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{format_ms, tail};

    #[test]
    fn the_tail_is_shown_only_where_the_sample_supports_it() {
        let h = crate::results::histogram::new_histogram();
        let mut l = crate::results::LatencySummary::from_histogram(&h);
        l.count = 999;
        assert!(l.supports(0.99) && !l.supports(0.999));
        assert_eq!(
            tail(&l),
            "; p99.9 and max left out: 999 deliveries, fewer than the 1000 a p99.9 needs"
        );
        l.count = 1000;
        l.p999_ms = 5.0;
        l.max_ms = 12.0;
        assert_eq!(tail(&l), ", p99.9 5.0 ms, max 12 ms (n = 1000)");
        l.count = 99;
        assert!(!l.supports(0.99) && l.supports(0.5));
    }

    #[test]
    fn latencies_read_in_their_best_unit() {
        assert_eq!(format_ms(0.85), "850 µs");
        assert_eq!(format_ms(4.24), "4.2 ms");
        assert_eq!(format_ms(250.0), "250 ms");
        assert_eq!(format_ms(1500.0), "1.5 s");
        assert_eq!(format_ms(2000.0), "2 s");
    }
}
