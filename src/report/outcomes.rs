//! "Where every delivery went": per mode, and per fault window, the deliveries owed and what
//! became of them (on time, late and how late, dead-lettered, lost), with the duplicates and
//! reorderings it took. The same rows in the HTML and Markdown reports.

use crate::report::format_ms;
use crate::results::{ModeResult, Outcomes, Results};

/// Column headers.
pub const HEADER: [&str; 12] = [
    "mode",
    "events scheduled",
    "owed",
    "on time",
    "late",
    "late p50",
    "late p99",
    "dead-lettered",
    "lost",
    "duplicates",
    "reordered",
    "retries / reconnects",
];

/// One row of the table, with the mode it belongs to.
pub struct Row<'a> {
    /// The mode.
    pub mode: &'a ModeResult,
    /// The cells, in [`HEADER`] order.
    pub cells: Vec<String>,
}

/// Whether the results carry the accounting (results written before it existed do not).
pub fn present(r: &Results) -> bool {
    r.modes.iter().any(|m| m.outcomes.expected > 0)
}

/// A row for the whole run of each mode, followed by one per fault window that applies to it.
pub fn rows(r: &Results) -> Vec<Row<'_>> {
    let mut out = Vec::new();
    for m in r.modes.iter().filter(|m| m.outcomes.expected > 0) {
        let again = if m.mode == crate::event::Mode::Webhook {
            m.server.webhook.retries
        } else {
            m.deliveries.reconnects
        };
        out.push(Row {
            mode: m,
            cells: cells(m, "the whole run", &m.outcomes, again.to_string()),
        });
        for w in &m.fault_windows {
            out.push(Row {
                mode: m,
                cells: cells(m, &format!("during {}", w.label), &w.outcomes, "—".into()),
            });
        }
    }
    out
}

fn cells(m: &ModeResult, when: &str, o: &Outcomes, again: String) -> Vec<String> {
    let late_ms = |v: f64| if o.late > 0 { format_ms(v) } else { "—".into() };
    vec![
        m.mode.to_string(),
        when.to_string(),
        o.expected.to_string(),
        o.on_time.to_string(),
        o.late.to_string(),
        late_ms(o.late_p50_ms),
        late_ms(o.late_p99_ms),
        o.dead_lettered.to_string(),
        o.lost.to_string(),
        o.duplicates.to_string(),
        o.out_of_order.to_string(),
        again,
    ]
}

/// What "late" meant for each mode, in words.
pub fn late_thresholds(r: &Results) -> String {
    let parts: Vec<String> = r
        .modes
        .iter()
        .filter(|m| m.outcomes.expected > 0)
        .map(|m| format!("{} {}", m.mode, format_ms(m.late_after_ms)))
        .collect();
    let handed: Vec<String> = r
        .modes
        .iter()
        .filter(|m| m.deliveries.handed_by_server > 0)
        .map(|m| format!("{} {}", m.mode, m.deliveries.handed_by_server))
        .collect();
    let mut out = format!(
        "A delivery is late when it took longer than its mode's healthy worst case ({}). Windows count the events \
         scheduled in them, for every client, hit or not.",
        parts.join(", ")
    );
    // A model's count of what its server handed is its count of arrivals: nothing to check.
    if !handed.is_empty() && r.simulated.is_none() {
        out.push_str(&format!(
            " The clients' arrivals were checked, client by client, against what the server counted handing them \
             on its side of the wire (webhooks: 2xx answers): {}.",
            handed.join(", ")
        ));
    }
    out
}
