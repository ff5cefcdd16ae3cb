//! The comparison table, one row per mode: printed at the end of a run, and the same rows in
//! the HTML and Markdown reports. Its percentiles are over every owed delivery, the
//! undelivered counted as slowest (`> drain` when a percentile falls among them).

use std::fmt::Write as _;

use crate::report::format_owed;
use crate::results::Results;

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
            vec![
                m.mode.to_string(),
                format_owed(m, 0.5),
                format_owed(m, 0.99),
                format!("{}/{}", d.delivered, d.expected),
                m.outcomes.late.to_string(),
                d.lost.to_string(),
                d.duplicates.to_string(),
                format!("{:.2}", s.requests_per_delivery),
                format!("{:.1}%", s.empty_share * 100.0),
                format!("{:.0}", s.bytes_per_delivery),
                super::wire::packets_per_event(m),
                format!("{:.2}", s.cpu_seconds_per_1k_deliveries * 1000.0),
                s.peak_connections.to_string(),
                format!("{:.0}", m.deliveries_per_second),
                format!("{:.0}", s.requests_per_second),
            ]
        })
        .collect()
}

/// Renders the table as aligned plain text, followed by any warnings.
pub fn render(results: &Results) -> String {
    let mut all = vec![HEADER.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    all.extend(rows(results));
    let widths: Vec<usize> = (0..HEADER.len())
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
    for m in &results.modes {
        for w in &m.warnings {
            let _ = writeln!(out, "warning: {}: {w}", m.mode);
        }
    }
    out
}
