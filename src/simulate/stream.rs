//! SSE and WebSocket streams in the model: every client holds one stream, opened before the
//! schedule starts, and the server writes each event to each follower as it is scheduled,
//! each write a job for its cores; it arrives one way after its write. No request is made
//! while the stream lasts.

use super::log::Log;
use super::server::Server;
use super::{Outcome, Progress, Wire, PROGRESS_EVERY};
use crate::calibration::Op;
use crate::event::Mode;
use crate::scenario::Scenario;

/// Simulates `s`'s stream clients over `net`.
pub fn run(s: &Scenario, mode: Mode, wire: &mut Wire, server: &mut Server, progress: Progress) -> Outcome {
    let log = Log::new(s);
    let mut out = Outcome::owed(log.measured_events(), log.expected());
    // What arrives after the drain is lost, as in `run`.
    let horizon = (s.warmup + s.duration + s.drain).as_nanos() as u64;
    let write = if mode == Mode::Websocket {
        Op::WebsocketEvent
    } else {
        Op::SseEvent
    };
    for (at, topic, measured) in log.events() {
        out.actions += 1;
        if out.actions.is_multiple_of(PROGRESS_EVERY) {
            progress(at);
        }
        // Each follower's write is a job of its own; they share the cores.
        for _ in log.followers(topic) {
            let arrives = server.serve(at, &[(write, 1.0)]) + wire.answer(1);
            if measured && arrives <= horizon {
                out.delivered += 1;
                out.latency.saturating_record(((arrives - at) / 1000).max(1));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::simulate::Network;

    #[test]
    fn every_follower_gets_every_event_one_way_later() {
        let s = Scenario::parse(
            Path::new("s.toml"),
            "name = \"s\"\nduration = \"60s\"\nwarmup = \"5s\"\nmodes = [\"sse\"]\n\
             [events]\nrate = 50\ntopics = 7\n[clients]\ncount = 30\ntopics_per_client = 2\n",
        )
        .unwrap();
        let o = run(
            &s,
            Mode::Sse,
            &mut Wire::plain(&Network::of(Duration::from_millis(6))),
            &mut Server::instant(),
            &crate::simulate::quietly,
        );
        assert_eq!(o.delivered, o.expected);
        // 50 events/s for 60 s, each followed by 30 × 2 / 7 clients on average.
        let per_event = o.expected as f64 / (50.0 * 60.0);
        assert!((per_event - 60.0 / 7.0).abs() < 0.2, "{per_event}");
        let l = &o.latency;
        assert!(
            l.equivalent(l.min(), 3000) && l.equivalent(l.max(), 3000),
            "{} to {}",
            l.min(),
            l.max()
        );
        assert_eq!(o.requests, 0);
    }
}
