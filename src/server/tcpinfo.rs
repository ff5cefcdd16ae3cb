//! TCP's own counters for the server's connections, read from the kernel at the window's two
//! ends: segments in and out, payload bytes, retransmissions and the header size each
//! connection negotiated, as `tcp_info` holds them.
//!
//! They are read through sock_diag over netlink (the interface `ss -ti` uses) rather than a
//! `getsockopt(TCP_INFO)` per socket, so one dump answers for many connections at once and no
//! connection's task has to be reached. A dump asks for the sockets of one port (the kernel
//! compares each socket's own and its peer's port with the request's): the server's listening
//! port for the connections it accepted, a receiver's for those its webhook sender dialed. So
//! the other end of a loopback connection, the driver's, is not written out and read back
//! only to be dropped (it was half of what a dump of every socket cost: 21 ms of CPU for
//! 5,000 clients). Each dump walks the kernel's whole table, so where several ports would
//! each need one and the connections are few, one dump of every socket is asked for instead.
//! Of what the dumps list the server keeps the sockets in its [`Registry`]
//! of counted connections (the ones [`super::sockets::CountingStream`] wraps), which leaves
//! out the control API and anything else on those ports.
//!
//! A [`Watcher`] thread does the reading, so the generator only sends it the boundary's time;
//! how long after the boundary each read finished is kept as the figure's `read_lag_us`.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;

use netlink_packet_sock_diag::inet::nlas::TcpInfo;
use netlink_packet_sock_diag::inet::SocketId;

use super::sock_diag::{asks, diag_socket, dump};
use crate::clock;
use crate::results::{TcpReading, TcpTraffic};

/// A connection by its two ends: (the server's address, the peer's).
pub type ConnId = (SocketAddr, SocketAddr);

/// The connections the server counts, open now.
#[derive(Debug, Default)]
pub struct Registry {
    open: Mutex<HashSet<ConnId>>,
}

impl Registry {
    /// A counted connection opened.
    pub fn opened(&self, id: ConnId) {
        self.open.lock().expect("registry lock").insert(id);
    }

    /// A counted connection closed.
    pub fn closed(&self, id: &ConnId) {
        self.open.lock().expect("registry lock").remove(id);
    }

    fn ids(&self) -> HashSet<ConnId> {
        self.open.lock().expect("registry lock").clone()
    }
}

/// One connection's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counters {
    /// The kernel's id for the socket, so a reused address pair is not taken for the same
    /// connection.
    cookie: u64,
    segs_in: u64,
    segs_out: u64,
    retrans: u64,
    bytes_in: u64,
    bytes_out: u64,
    /// IP + TCP header bytes of each of its segments.
    header: u64,
}

/// TCP_INFO's `tcpi_options` bit for the timestamps option.
const TCPI_OPT_TIMESTAMPS: u8 = 1;

impl Counters {
    fn of(id: &SocketId, info: &TcpInfo) -> Counters {
        let ip = if id.source_address.is_ipv4() { 20 } else { 40 };
        let options = if info.options & TCPI_OPT_TIMESTAMPS != 0 {
            12
        } else {
            0
        };
        Counters {
            cookie: u64::from_ne_bytes(id.cookie),
            segs_in: u64::from(info.segs_in),
            segs_out: u64::from(info.segs_out),
            retrans: u64::from(info.total_retrans),
            bytes_in: info.bytes_received,
            bytes_out: info.bytes_sent,
            header: ip + 20 + options,
        }
    }
}

/// Every counted connection's counters, read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Census {
    sockets: HashMap<ConnId, Counters>,
    /// CLOCK_MONOTONIC ns when the read finished.
    ended_ns: u64,
}

/// Reads the counters of every connection in `registry`.
pub fn census(registry: &Registry) -> io::Result<Census> {
    let keep = registry.ids();
    let mut sockets = HashMap::with_capacity(keep.len());
    let asks = asks(&keep);
    if !asks.is_empty() {
        let nl = diag_socket()?;
        for (family, ports) in asks {
            dump(&nl, family, ports, |id, info| {
                let conn = (
                    SocketAddr::new(id.source_address, id.source_port),
                    SocketAddr::new(id.destination_address, id.destination_port),
                );
                if keep.contains(&conn) {
                    sockets.insert(conn, Counters::of(id, info));
                }
            })?;
        }
    }
    Ok(Census {
        sockets,
        ended_ns: clock::now_ns(),
    })
}

/// What was sent and received between two censuses. `opened` is how many counted connections
/// the server opened in between (its own count), so connections that opened and closed
/// unseen are known to be missing.
pub fn traffic(start: &Census, end: &Census, opened: u64) -> TcpTraffic {
    let mut t = TcpTraffic {
        connections: end.sockets.len() as u64,
        ..TcpTraffic::default()
    };
    for (id, e) in &end.sockets {
        let before = start.sockets.get(id).filter(|s| s.cookie == e.cookie);
        let s = before.copied().unwrap_or(Counters {
            segs_in: 0,
            segs_out: 0,
            retrans: 0,
            bytes_in: 0,
            bytes_out: 0,
            ..*e
        });
        if before.is_none() {
            t.opened += 1;
        }
        let (segs_in, segs_out) = (
            e.segs_in.saturating_sub(s.segs_in),
            e.segs_out.saturating_sub(s.segs_out),
        );
        t.segments_in += segs_in;
        t.segments_out += segs_out;
        t.retransmitted += e.retrans.saturating_sub(s.retrans);
        t.payload_bytes_in += e.bytes_in.saturating_sub(s.bytes_in);
        t.payload_bytes_out += e.bytes_out.saturating_sub(s.bytes_out);
        t.header_bytes += (segs_in + segs_out) * e.header;
    }
    let closed = start
        .sockets
        .iter()
        .filter(|(id, s)| end.sockets.get(*id).is_none_or(|e| e.cookie != s.cookie))
        .count() as u64;
    t.uncounted = closed + opened.saturating_sub(t.opened);
    t
}

/// Reads the counters on a thread of its own whenever the generator marks a boundary.
pub struct Watcher {
    marks: mpsc::Sender<u64>,
    reads: JoinHandle<Vec<(u64, io::Result<Census>)>>,
}

impl Watcher {
    /// Starts the thread; it reads the connections in `stats.connections`.
    pub fn spawn(stats: std::sync::Arc<super::stats::Stats>) -> io::Result<Watcher> {
        let (marks, boundaries) = mpsc::channel::<u64>();
        let reads = std::thread::Builder::new()
            .name("tcp-census".into())
            .spawn(move || {
                boundaries
                    .iter()
                    .map(|at_ns| {
                        // The read's CPU is the instrument's: counted, so that the server's
                        // cost leaves it out (the read at the window's start falls inside it).
                        let cpu_ns = crate::procstat::thread_cpu_ns();
                        let read = census(&stats.connections);
                        let spent = crate::procstat::thread_cpu_ns().saturating_sub(cpu_ns);
                        stats
                            .counters
                            .census_ns
                            .fetch_add(spent, std::sync::atomic::Ordering::Relaxed);
                        (at_ns, read)
                    })
                    .collect()
            })?;
        Ok(Watcher { marks, reads })
    }

    /// A boundary was crossed at `at_ns` (CLOCK_MONOTONIC): read now.
    pub fn mark(&self, at_ns: u64) {
        let _ = self.marks.send(at_ns);
    }

    /// The traffic between the first two boundaries marked; `opened` as in [`traffic`].
    pub fn finish(self, opened: u64) -> TcpReading {
        drop(self.marks);
        let reads = match self.reads.join() {
            Ok(reads) => reads,
            Err(_) => return TcpReading::Unavailable("the thread reading TCP counters panicked".into()),
        };
        let mut censuses = Vec::with_capacity(2);
        let mut lag_ns = 0;
        for (at_ns, read) in reads.into_iter().take(2) {
            match read {
                Ok(c) => {
                    lag_ns = lag_ns.max(c.ended_ns.saturating_sub(at_ns));
                    censuses.push(c);
                }
                Err(e) => return TcpReading::Unavailable(format!("TCP counters could not be read: {e}")),
            }
        }
        match censuses.as_slice() {
            [start, end] => TcpReading::Measured(TcpTraffic {
                read_lag_us: lag_ns / 1_000,
                ..traffic(start, end, opened)
            }),
            _ => TcpReading::Unavailable("the window's boundaries were not both reached".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(port: u16) -> ConnId {
        (
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            SocketAddr::from(([127, 0, 0, 1], port)),
        )
    }

    fn counters(cookie: u64, segs: u64, bytes: u64) -> Counters {
        Counters {
            cookie,
            segs_in: segs,
            segs_out: segs,
            retrans: 0,
            bytes_in: bytes,
            bytes_out: bytes,
            header: 52,
        }
    }

    fn census_of(entries: &[(ConnId, Counters)]) -> Census {
        Census {
            sockets: entries.iter().copied().collect(),
            ended_ns: 0,
        }
    }

    #[test]
    fn deltas_of_kept_connections_whole_lives_of_new_ones() {
        let start = census_of(&[(conn(1), counters(1, 10, 1000)), (conn(2), counters(2, 5, 500))]);
        let end = census_of(&[
            (conn(1), counters(1, 14, 1400)),
            // Same address pair, another socket: the first closed, this one is new.
            (conn(2), counters(9, 3, 30)),
            (conn(3), counters(3, 7, 70)),
        ]);
        let t = traffic(&start, &end, 3);
        assert_eq!(t.connections, 3);
        assert_eq!(t.opened, 2);
        assert_eq!((t.segments_in, t.segments_out), (4 + 3 + 7, 4 + 3 + 7));
        assert_eq!(t.payload_bytes_in, 400 + 30 + 70);
        assert_eq!(t.header_bytes, 2 * 14 * 52);
        // The closed conn(2) and one connection opened but never seen.
        assert_eq!(t.uncounted, 2);
    }

    /// A real connection on loopback: what the kernel counted is what was sent.
    #[test]
    fn reads_a_real_connection() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, peer) = listener.accept().unwrap();
        let registry = Registry::default();
        let id = (server.local_addr().unwrap(), peer);
        registry.opened(id);
        // And one the server dialed, as its webhook sender does.
        let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dialed = std::net::TcpStream::connect(receiver.local_addr().unwrap()).unwrap();
        let dialed_id = (dialed.local_addr().unwrap(), dialed.peer_addr().unwrap());
        registry.opened(dialed_id);
        let start = census(&registry).expect("sock_diag answers on Linux");
        let mut kept: Vec<_> = start.sockets.keys().copied().collect();
        kept.sort_unstable();
        let mut registered = vec![id, dialed_id];
        registered.sort_unstable();
        assert_eq!(kept, registered, "the registered ends are kept, and only they");
        for _ in 0..10 {
            client.write_all(&[7; 100]).unwrap();
            let mut got = [0; 100];
            server.read_exact(&mut got).unwrap();
            server.write_all(b"ok").unwrap();
            let mut ok = [0; 2];
            client.read_exact(&mut ok).unwrap();
        }
        let end = census(&registry).unwrap();
        let t = traffic(&start, &end, 0);
        assert_eq!(t.payload_bytes_in, 1000);
        assert_eq!(t.payload_bytes_out, 20);
        // Ten requests in, each in one segment; ten answers out, which may carry the ACKs.
        assert!(t.segments_in >= 10, "{t:?}");
        assert!((10..=20).contains(&t.segments_out), "{t:?}");
        assert_eq!(t.uncounted, 0);
        registry.closed(&id);
        registry.closed(&dialed_id);
        assert!(census(&registry).unwrap().sockets.is_empty());
    }
}
