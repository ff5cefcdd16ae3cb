//! How the instrument did, one row per mode: how late the generator emitted, latency from the
//! schedule beside latency from emission, the round trip the theory took as given, how late
//! fixed-schedule pollers sent, the driver's share of a core, what the drain cost apart, and,
//! where they were measured, how often the server's threads woke and were preempted.

use super::Section;
use crate::report::format_ms;
use crate::results::{ModeResult, Results};

/// Column headers; the last, the server's context switches, only for results that measured
/// them.
pub const HEADER: [&str; 10] = [
    "mode",
    "generator late p50 / p99 / max",
    "p50 from schedule",
    "p50 from emission",
    "round trip",
    "polls late p50 / p99",
    "driver CPU",
    "drain: requests",
    "drain: server CPU",
    "server threads woke / preempted a second",
];

fn ns(v: u64) -> String {
    format_ms(v as f64 / 1e6)
}

/// The section for the report.
pub fn section(r: &Results) -> Section {
    let switches = r.modes.iter().any(|m| m.server.voluntary_switches.is_some());
    Section {
        id: "instrument",
        title: "How the instrument did",
        header: if switches {
            &HEADER
        } else {
            &HEADER[..HEADER.len() - 1]
        },
        rows: r
            .modes
            .iter()
            .map(|m| {
                let mut cells = row(m);
                if switches {
                    cells.push(woke_and_preempted(m));
                }
                (m.mode, cells)
            })
            .collect(),
        note: if switches {
            format!("{NOTE} {SWITCHES}")
        } else {
            NOTE.to_string()
        },
    }
}

/// The server's voluntary and involuntary context switches a second of the window.
fn woke_and_preempted(m: &ModeResult) -> String {
    match (m.server.voluntary_switches, m.server.involuntary_switches) {
        (Some(woke), Some(preempted)) if m.measured_seconds > 0.0 => format!(
            "{:.0} / {:.0}",
            woke as f64 / m.measured_seconds,
            preempted as f64 / m.measured_seconds
        ),
        _ => "—".into(),
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

const SWITCHES: &str = "The server's threads woke when one ran out of work, blocked and was woken again (its \
    voluntary context switches over the window, all threads together: what idle moments cost it in wake-ups), \
    and were preempted when the scheduler gave a core they could still use to another process, such as the \
    driver beside the server (involuntary ones): how much the instrument and the machine's other work cut \
    into the server's time.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_switches_show_a_second_of_the_window_where_they_were_measured() {
        // Results from before the switches were counted have no such column.
        let mut r = crate::results::one_run_fixture();
        assert!(r.modes.iter().all(|m| m.server.voluntary_switches.is_none()));
        assert_eq!(section(&r).header.len(), HEADER.len() - 1);
        // 3,000 woke and 600 preempted over 3 s, by hand: 1000 / 200 a second.
        for m in &mut r.modes {
            m.measured_seconds = 3.0;
            m.server.voluntary_switches = Some(3000);
            m.server.involuntary_switches = Some(600);
        }
        let s = section(&r);
        assert_eq!(s.header, HEADER);
        assert!(
            s.rows
                .iter()
                .all(|(_, cells)| cells.last().unwrap() == "1000 / 200"),
            "{:?}",
            s.rows
        );
        assert!(s.note.contains("preempted"), "{}", s.note);
    }
}
