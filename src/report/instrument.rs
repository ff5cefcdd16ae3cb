//! How the instrument did, one row per mode: how late the generator emitted, latency from the
//! schedule beside latency from emission, the round trip the theory took as given, how late
//! fixed-schedule pollers sent, the driver's share of a core, and what the drain cost apart.

use super::Section;
use crate::report::format_ms;
use crate::results::{ModeResult, Results};

/// Column headers.
pub const HEADER: [&str; 9] = [
    "mode",
    "generator late p50 / p99 / max",
    "p50 from schedule",
    "p50 from emission",
    "round trip",
    "polls late p50 / p99",
    "driver CPU",
    "drain: requests",
    "drain: server CPU",
];

fn ns(v: u64) -> String {
    format_ms(v as f64 / 1e6)
}

/// The section for the report.
pub fn section(r: &Results) -> Section {
    Section {
        id: "instrument",
        title: "How the instrument did",
        header: &HEADER,
        rows: r.modes.iter().map(|m| (m.mode, row(m))).collect(),
        note: NOTE.to_string(),
    }
}

fn row(m: &ModeResult) -> Vec<String> {
    let g = &m.generator;
    let polls = &m.poll_sends;
    vec![
        m.mode.to_string(),
        if g.count == 0 {
            "—".into()
        } else {
            format!("{} / {} / {}", ns(g.p50_ns), ns(g.p99_ns), ns(g.max_ns))
        },
        format_ms(m.latency.p50_ms),
        format_ms(m.latency_from_emission.p50_ms),
        format_ms(m.theory.given.round_trip_ms),
        if polls.count == 0 {
            "—".into()
        } else {
            format!("{} / {}", ns(polls.p50_ns), ns(polls.p99_ns))
        },
        format!("{:.0}% of a core", m.client.cpu_share_of_core * 100.0),
        m.drain.requests.to_string(),
        format!("{:.1} ms", m.drain.server_cpu_seconds * 1000.0),
    ]
}

const NOTE: &str = "The generator emits each event on its own thread, sleeping and then spinning the last \
    stretch to the event's time; its lateness is part of every latency measured from the schedule. The round \
    trip is the median of small requests between the idle driver and server, measured before the mode ran: the \
    theory's figure for one delivery's path. Pollers on fixed slots record how late each poll left. The drain, \
    after the last event, is not part of any per-event cost; what it cost is shown here.";
