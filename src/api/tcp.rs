//! What TCP itself counted on the server's connections over the measured window: segments
//! (packets) each way, payload bytes, and the IP and TCP headers those segments carried. The
//! HTTP bytes in [`crate::results::ServerCost`] are what the application read and wrote; these are what
//! the kernel sent, ACKs and handshakes included.

use serde::{Deserialize, Serialize};

/// Whether the window's TCP counters could be read, and what they were.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcpReading {
    /// Results written before the server read TCP counters.
    #[default]
    NotRead,
    /// Read at both ends of the window.
    Measured(TcpTraffic),
    /// The kernel would not tell (no sock_diag, an older `tcp_info`): the reason it gave.
    Unavailable(String),
    /// Not measured but modelled (`simulate`): the segments both ways its calibration gives
    /// for the window's requests, deliveries and connections opened.
    Modelled {
        /// Segments both ways.
        segments: u64,
    },
}

/// TCP's counters over the window, summed over the server's counted connections (clients'
/// connections it accepted and the webhook dispatcher's outgoing ones; not the control API's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TcpTraffic {
    /// Connections whose counters were read at the window's end.
    pub connections: u64,
    /// Of those, connections opened during the window (their whole life is in it).
    pub opened: u64,
    /// Connections that closed during the window: what they carried after its start (or, for
    /// one both opened and closed in it, at all) is missing from the sums below. Pooled
    /// repetitions add these up, and keep the most `connections` and `opened` of any one.
    pub uncounted: u64,
    /// Segments the server received (`tcpi_segs_in`), pure ACKs included.
    pub segments_in: u64,
    /// Segments the server sent (`tcpi_segs_out`), retransmissions included.
    pub segments_out: u64,
    /// Of the segments sent, retransmissions (`tcpi_total_retrans`).
    pub retransmitted: u64,
    /// Payload bytes received (`tcpi_bytes_received`).
    pub payload_bytes_in: u64,
    /// Payload bytes sent (`tcpi_bytes_sent`, retransmissions included).
    pub payload_bytes_out: u64,
    /// IP and TCP header bytes of all those segments, each connection's segments times its own
    /// header size (20 bytes of IPv4 or 40 of IPv6, 20 of TCP, 12 more when the timestamps
    /// option was negotiated). Link-layer framing is not included.
    pub header_bytes: u64,
    /// The longest time, in microseconds, from a window boundary to the end of the read of the
    /// counters it stands for: how far the TCP window may extend past the other figures'.
    pub read_lag_us: u64,
}

impl TcpTraffic {
    /// Segments both ways.
    pub fn segments(&self) -> u64 {
        self.segments_in + self.segments_out
    }

    /// IP packet bytes both ways: payload plus headers.
    pub fn ip_bytes(&self) -> u64 {
        self.payload_bytes_in + self.payload_bytes_out + self.header_bytes
    }

    /// The sum of two windows (modes merged from several drivers).
    pub fn add(&self, o: &TcpTraffic) -> TcpTraffic {
        TcpTraffic {
            connections: self.connections + o.connections,
            opened: self.opened + o.opened,
            uncounted: self.uncounted + o.uncounted,
            segments_in: self.segments_in + o.segments_in,
            segments_out: self.segments_out + o.segments_out,
            retransmitted: self.retransmitted + o.retransmitted,
            payload_bytes_in: self.payload_bytes_in + o.payload_bytes_in,
            payload_bytes_out: self.payload_bytes_out + o.payload_bytes_out,
            header_bytes: self.header_bytes + o.header_bytes,
            read_lag_us: self.read_lag_us.max(o.read_lag_us),
        }
    }
}

impl TcpReading {
    /// The counters, where they were read.
    pub fn measured(&self) -> Option<&TcpTraffic> {
        match self {
            TcpReading::Measured(t) => Some(t),
            _ => None,
        }
    }

    /// Segments both ways, measured or modelled.
    pub fn segments(&self) -> Option<u64> {
        match self {
            TcpReading::Measured(t) => Some(t.segments()),
            TcpReading::Modelled { segments } => Some(*segments),
            _ => None,
        }
    }

    /// Why there are no counters, in words for a report.
    pub fn missing_reason(&self) -> Option<&str> {
        match self {
            TcpReading::NotRead => Some("these results predate TCP counters"),
            TcpReading::Measured(_) => None,
            TcpReading::Unavailable(why) => Some(why),
            TcpReading::Modelled { .. } => Some("modelled: only the segments, from the calibration"),
        }
    }

    /// Two readings of the same mode (merged results): summed where both were measured,
    /// otherwise the first one's reason.
    pub fn merge(&self, o: &TcpReading) -> TcpReading {
        match (self, o) {
            (TcpReading::Measured(a), TcpReading::Measured(b)) => TcpReading::Measured(a.add(b)),
            (TcpReading::Modelled { segments: a }, TcpReading::Modelled { segments: b }) => {
                TcpReading::Modelled { segments: a + b }
            }
            (TcpReading::Measured(_), missing) => missing.clone(),
            (missing, _) => missing.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(segments: u64) -> TcpTraffic {
        TcpTraffic {
            connections: 2,
            segments_in: segments,
            segments_out: segments,
            payload_bytes_in: 100,
            payload_bytes_out: 200,
            header_bytes: segments * 2 * 52,
            read_lag_us: segments,
            ..TcpTraffic::default()
        }
    }

    #[test]
    fn sums_and_ip_bytes() {
        let t = traffic(3).add(&traffic(5));
        assert_eq!(t.segments(), 16);
        assert_eq!(t.connections, 4);
        assert_eq!(t.ip_bytes(), 600 + 16 * 52);
        assert_eq!(t.read_lag_us, 5, "the longest lag, not a sum");
    }

    #[test]
    fn merge_keeps_a_missing_reading_missing() {
        let m = TcpReading::Measured(traffic(1));
        let gone = TcpReading::Unavailable("no sock_diag".into());
        assert_eq!(m.merge(&gone), gone);
        assert_eq!(gone.merge(&m), gone);
        assert_eq!(m.merge(&m).measured().map(TcpTraffic::segments), Some(4));
        assert_eq!(TcpReading::NotRead.merge(&m), TcpReading::NotRead);
    }

    #[test]
    fn reads_back_what_it_writes() {
        for r in [
            TcpReading::NotRead,
            TcpReading::Measured(traffic(7)),
            TcpReading::Unavailable("why".into()),
        ] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<TcpReading>(&json).unwrap(), r);
        }
    }
}
