//! Turning results into something a person reads: the terminal table, charts (SVG and PNG),
//! theory beside measurement, verdicts in plain words, and the HTML and Markdown reports that
//! hold them all.

pub mod charts;
pub mod claims;
pub mod html;
pub mod instrument;
pub mod markdown;
pub mod outcomes;
pub mod table;
pub mod theory;
pub mod verdict;
pub mod wire;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::results::Results;

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
    /// One row per mode, in the results' order.
    pub rows: Vec<Vec<String>>,
    /// What the table shows, in a paragraph for under it.
    pub note: String,
}

/// The sections after the theory, in order.
pub fn sections(r: &Results) -> Vec<Section> {
    vec![instrument::section(r), wire::section(r)]
}

/// Two figures within this share of each other are too close to rank: the one margin the
/// verdicts, the claims and the theory table all use.
pub const CLOSE_MARGIN: f64 = 0.2;

/// True when `a` is smaller than `b` by more than [`CLOSE_MARGIN`].
pub fn clearly_smaller(a: f64, b: f64) -> bool {
    a * (1.0 + CLOSE_MARGIN) < b
}

/// A percentile of latency over every owed delivery (see
/// [`crate::results::ModeResult::owed_latency_ms`]): `> drain` when it falls among the
/// deliveries that never arrived.
pub fn format_owed(m: &crate::results::ModeResult, q: f64) -> String {
    m.owed_latency_ms(q)
        .map_or_else(|| "> drain".to_string(), format_ms)
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
    use super::format_ms;

    #[test]
    fn latencies_read_in_their_best_unit() {
        assert_eq!(format_ms(0.85), "850 µs");
        assert_eq!(format_ms(4.24), "4.2 ms");
        assert_eq!(format_ms(250.0), "250 ms");
        assert_eq!(format_ms(1500.0), "1.5 s");
        assert_eq!(format_ms(2000.0), "2 s");
    }
}
