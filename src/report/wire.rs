//! What went on the wire, one row per mode: TCP's own counts of segments and bytes on the
//! server's connections over the measured window, beside the HTTP bytes the server counted.

use super::{figures, Section};
use crate::results::{Figure, ModeResult, Results, TcpTraffic};

/// Column headers.
pub const HEADER: [&str; 9] = [
    "mode",
    "connections",
    "packets/event",
    "segments in / out",
    "per connection per s",
    "HTTP bytes/event",
    "IP bytes/event",
    "retransmitted",
    "read after boundary",
];

/// The section for the report.
pub fn section(r: &Results) -> Section {
    let mut note = String::from(
        "Segments and payload bytes are the kernel's own counts (tcp_info, read through sock_diag) on the \
         connections the server counts: clients' connections it accepted and the webhook dispatcher's own; the \
         control API is left out. A packet is a TCP segment, pure ACKs and handshakes included. IP bytes are \
         the payload plus each segment's IP and TCP headers as its connection negotiated them (timestamps \
         included where on); link-layer framing is not. The counters are read once at each end of the \
         window, on a thread of their own, so they cover up to the read's delay more than the other figures.",
    );
    for m in &r.modes {
        if let Some(beats) = m.server.heartbeats.filter(|&n| n > 0) {
            note.push_str(&format!(
                " {}: {beats} heartbeats in the window ({:.1} a second), whose segments (each out and its ACK back; \
                 a WebSocket ping's pong too) are among those counted and no event accounts for.",
                m.mode,
                beats as f64 / m.measured_seconds.max(1e-9)
            ));
        }
        if let Some(why) = m.server.tcp.missing_reason() {
            note.push_str(&format!(" {}: not measured ({why}).", m.mode));
        } else if let Some(t) = m.server.tcp.measured().filter(|t| t.uncounted > 0) {
            note.push_str(&format!(
                " {}: {} connections closed during the window; what they carried after its start is not \
                 counted, so its figures are lower bounds (≥).",
                m.mode, t.uncounted
            ));
        }
    }
    Section {
        id: "wire",
        title: "On the wire",
        header: &HEADER,
        rows: r.modes.iter().map(|m| (m.mode, row(m))).collect(),
        note,
    }
}

/// TCP segments both ways per delivered event, `≥` when some connections went uncounted,
/// `—` when not measured.
pub fn packets_per_event(m: &ModeResult) -> String {
    match (m.server.tcp.measured(), m.server.tcp.segments()) {
        (Some(t), _) => format!("{}{}", lower_bound(t), figures::cell(Figure::PacketsPerEvent, m)),
        (None, Some(_)) => figures::cell(Figure::PacketsPerEvent, m),
        _ => "—".into(),
    }
}

fn lower_bound(t: &TcpTraffic) -> &'static str {
    if t.uncounted > 0 {
        "≥ "
    } else {
        ""
    }
}

fn row(m: &ModeResult) -> Vec<String> {
    let Some(t) = m.server.tcp.measured() else {
        let mut cells = vec!["—".to_string(); HEADER.len()];
        cells[0] = m.mode.to_string();
        cells[2] = packets_per_event(m);
        cells[5] = format!("{:.0}", m.server.bytes_per_delivery);
        return cells;
    };
    let bound = lower_bound(t);
    let delivered = m.window_deliveries().max(1) as f64;
    let per_conn_s = |segs: u64| {
        if t.connections == 0 || m.measured_seconds <= 0.0 {
            "—".to_string()
        } else {
            format!("{:.1}", segs as f64 / t.connections as f64 / m.measured_seconds)
        }
    };
    vec![
        m.mode.to_string(),
        connections(t),
        packets_per_event(m),
        format!("{bound}{} / {}", t.segments_in, t.segments_out),
        format!("{} / {}", per_conn_s(t.segments_in), per_conn_s(t.segments_out)),
        format!("{:.0}", m.server.bytes_per_delivery),
        format!("{bound}{:.0}", t.ip_bytes() as f64 / delivered),
        t.retransmitted.to_string(),
        format!("{:.1} ms", t.read_lag_us as f64 / 1000.0),
    ]
}

fn connections(t: &TcpTraffic) -> String {
    let mut s = t.connections.to_string();
    if t.opened > 0 {
        s.push_str(&format!(" ({} new)", t.opened));
    }
    if t.uncounted > 0 {
        s.push_str(&format!(" + {} closed", t.uncounted));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::TcpReading;

    fn quickstart() -> Results {
        crate::results::one_run_fixture()
    }

    #[test]
    fn packets_and_ip_bytes_per_event_from_the_counts() {
        let mut r = quickstart();
        let m = &mut r.modes[0];
        m.deliveries.delivered = 100;
        m.measured_seconds = 2.0;
        m.server.tcp = TcpReading::Measured(TcpTraffic {
            connections: 10,
            segments_in: 150,
            segments_out: 100,
            payload_bytes_in: 20_000,
            payload_bytes_out: 30_000,
            header_bytes: 250 * 52,
            ..TcpTraffic::default()
        });
        let row = row(m);
        assert_eq!(row[2], "2.50");
        assert_eq!(row[3], "150 / 100");
        assert_eq!(row[4], "7.5 / 5.0");
        assert_eq!(row[6], format!("{:.0}", (50_000.0 + 250.0 * 52.0) / 100.0));
    }

    #[test]
    fn lower_bounds_and_missing_readings_are_said() {
        let mut r = quickstart();
        r.modes[0].server.tcp = TcpReading::Measured(TcpTraffic {
            connections: 3,
            uncounted: 2,
            segments_in: 10,
            ..TcpTraffic::default()
        });
        r.modes[1].server.tcp = TcpReading::Unavailable("sock_diag refused".into());
        let s = section(&r);
        assert!(s.rows[0].1[2].starts_with("≥ "), "{:?}", s.rows[0]);
        assert_eq!(s.rows[0].1[1], "3 + 2 closed");
        assert_eq!(s.rows[1].1[2], "—");
        assert!(s.note.contains("not measured (sock_diag refused)"), "{}", s.note);
        assert!(
            s.note.contains("2 connections closed during the window"),
            "{}",
            s.note
        );
    }
}
