//! The comparison table printed at the end of a run: one row per mode.

use std::fmt::Write as _;

use crate::results::Results;

/// Renders the table as plain text.
pub fn render(results: &Results) -> String {
    let header = [
        "mode",
        "p50",
        "p99",
        "delivered",
        "lost",
        "dup",
        "req/event",
        "empty",
        "bytes/event",
        "CPU s/1k",
        "peak conns",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for m in &results.modes {
        let d = &m.deliveries;
        let s = &m.server;
        rows.push(vec![
            m.mode.to_string(),
            ms(m.latency.p50_ms),
            ms(m.latency.p99_ms),
            format!("{}/{}", d.delivered, d.expected),
            d.lost.to_string(),
            d.duplicates.to_string(),
            format!("{:.2}", s.requests_per_delivery),
            format!("{:.1}%", s.empty_share * 100.0),
            format!("{:.0}", s.bytes_per_delivery),
            format!("{:.4}", s.cpu_seconds_per_1k_deliveries),
            s.peak_connections.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| {
                if c == 0 {
                    format!("{cell:<w$}", w = widths[c])
                } else {
                    format!("{cell:>w$}", w = widths[c])
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

/// A latency in the unit that reads best.
pub fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}
