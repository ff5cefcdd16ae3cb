//! SSE and WebSocket streams in the model: every client holds one stream, opened before the
//! schedule starts, and the server writes each event to each follower as it is scheduled;
//! it arrives one way later. No request is made while the stream lasts.

use super::log::Log;
use super::{Network, Outcome, Progress, PROGRESS_EVERY};
use crate::scenario::Scenario;

/// Simulates `s`'s stream clients over `net`.
pub fn run(s: &Scenario, net: Network, progress: Progress) -> Outcome {
    let log = Log::new(s);
    let mut out = Outcome::owed(log.measured_events(), log.expected());
    let one_way_us = (net.one_way_ns() / 1000).max(1);
    for (at, topic, measured) in log.events() {
        out.actions += 1;
        if out.actions.is_multiple_of(PROGRESS_EVERY) {
            progress(at);
        }
        let followers = log.followers(topic).len() as u64;
        if measured && followers > 0 {
            out.delivered += followers;
            out.latency.saturating_record_n(one_way_us, followers);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;

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
            Network {
                round_trip: Duration::from_millis(6),
            },
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
