//! The comparison table, one row per mode: printed at the end of a run, and the same rows in
//! the HTML and Markdown reports. Its percentiles are over every owed delivery, the
//! undelivered counted as slowest (`> drain` when a percentile falls among them). Where each
//! mode ran several times, a figure reads `median ± half-range` over the repetitions.

use std::fmt::Write as _;

use super::figures;
use crate::results::{Figure, Results};

/// Column headers.
pub const HEADER: [&str; 15] = [
    "mode",
    "p50",
    "p99",
    "delivered",
    "late",
    "lost",
    "dup",
    "req/event",
    "empty",
    "bytes/event",
    "packets/event",
    "CPU ms/1k",
    "peak conns",
    "deliveries/s",
    "req/s",
];

/// The table's cells, one row per mode.
pub fn rows(results: &Results) -> Vec<Vec<String>> {
    results
        .modes
        .iter()
        .map(|m| {
            let d = &m.deliveries;
            let s = &m.server;
            // A figure the results do not have (a simulation's unmodelled costs) is a dash.
            let fig = |f: Figure| {
                if results.has(f) {
                    figures::cell(f, m)
                } else {
                    "—".to_string()
                }
            };
            vec![
                m.mode.to_string(),
                fig(Figure::LatencyP50),
                fig(Figure::LatencyP99),
                format!("{}/{}", d.delivered, d.expected),
                m.outcomes.late.to_string(),
                d.lost.to_string(),
                d.duplicates.to_string(),
                fig(Figure::RequestsPerEvent),
                fig(Figure::EmptyShare),
                fig(Figure::BytesPerEvent),
                if results.has(Figure::PacketsPerEvent) {
                    super::wire::packets_per_event(m)
                } else {
                    "—".to_string()
                },
                fig(Figure::CpuMsPer1k),
                s.peak_connections.to_string(),
                fig(Figure::DeliveriesPerSecond),
                fig(Figure::RequestsPerSecond),
            ]
        })
        .collect()
}

/// Renders the table as aligned plain text, followed by any warnings.
pub fn render(results: &Results) -> String {
    let mut all = vec![HEADER.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    all.extend(rows(results));
    let mut out = align(&all);
    for m in &results.modes {
        for w in &m.warnings {
            let _ = writeln!(out, "warning: {}: {w}", m.mode);
        }
    }
    out
}

/// Rows (the first the header) as plain text: the first column left-aligned, the others
/// right-aligned, a rule under the header.
pub fn align(all: &[Vec<String>]) -> String {
    let columns = all.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| all.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in all.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                let pad = widths[c] - cell.chars().count();
                if c == 0 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if i == 0 {
            let _ = writeln!(
                out,
                "{}",
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("  ")
            );
        }
    }
    out
}
