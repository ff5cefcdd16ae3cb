//! How big a server each mode needs: with `[server] p99_target`, the fewest cores whose
//! model keeps p99 within the target with nothing lost (every event delivered or, by the
//! sender's own policy, dead-lettered) and the cores busy at most 95% of the time, found by running the model
//! at doubling core counts until one does, then halving the gap to the one below. More cores
//! never make the model's answers later (each job starts at the earliest free core), so the
//! search may bisect.

use super::{mode_result, Model};
use crate::event::Mode;
use crate::results::Capacity;
use crate::scenario::Scenario;
use crate::scenario::MAX_CORES;

/// The busiest a server may be and still count as keeping its target: the share of its cores'
/// time the window's work takes (as the saturation warning has it).
pub const BUSIEST: f64 = 0.95;

/// The capacity `mode` of `s` needs on `model` for a p99 of `target`, telling `probed` each
/// core count tried and the p99 it gave.
pub fn search(
    s: &Scenario,
    mode: Mode,
    model: &Model,
    target: std::time::Duration,
    probed: &(dyn Fn(u32, f64) + Sync),
) -> Capacity {
    let target_ms = target.as_secs_f64() * 1000.0;
    let most = MAX_CORES as u32;
    let mut probes = 0;
    let mut run = |cores: u32| {
        let mut at = s.clone();
        at.server.cores = Some(cores);
        let m = mode_result(&at, mode, model, &super::quietly);
        probes += 1;
        let p99 = m.latency.p99_ms;
        probed(cores, p99);
        // A server busy all the time keeps no target for long: its cores must have room.
        let busy = m.server.cpu_seconds / at.duration.as_secs_f64() / f64::from(cores);
        // Nothing lost: a dead letter is the sender's own policy (a gone endpoint, retries run
        // out), not the server falling short.
        let ok = p99 <= target_ms && m.outcomes.lost == 0 && busy <= BUSIEST;
        // The memory its connections held (the webhook sender's pools depend on the cores).
        let memory = m.server.memory_per_client_bytes * f64::from(s.clients.count);
        let lost = m.outcomes.lost;
        (ok, Probe { p99, memory, lost })
    };
    let found = |cores: Option<u32>,
                 Probe {
                     p99: p99_ms,
                     memory: memory_bytes,
                     lost,
                 }: Probe,
                 probes: u32| Capacity {
        mode,
        p99_target_ms: target_ms,
        cores,
        most_cores: most,
        p99_ms,
        memory_bytes,
        probes,
        lost: if cores.is_none() { lost } else { 0 },
    };
    // Not even the most cores: what is left is the mode's own (an interval, a round trip).
    let (ok, at_most) = run(most);
    if !ok {
        return found(None, at_most, probes);
    }
    let (mut low, mut high, mut at_high) = (0u32, most, at_most);
    let mut cores = 1;
    while cores < most {
        let (ok, probe) = run(cores);
        if ok {
            (high, at_high) = (cores, probe);
            break;
        }
        low = cores;
        cores *= 2;
    }
    // Fewest that do: above `low` (fails, or none tried), at most `high` (does).
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        let (ok, probe) = run(mid);
        if ok {
            (high, at_high) = (mid, probe);
        } else {
            low = mid;
        }
    }
    found(Some(high), at_high, probes)
}

/// What the model gave at one core count: its p99 (ms), the memory its connections held and
/// the deliveries it lost.
#[derive(Clone, Copy)]
struct Probe {
    p99: f64,
    memory: f64,
    lost: u64,
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::calibration::{Calibration, Op};

    /// 1,000 SSE clients on one topic, an event a second, each write 10 µs of a core and
    /// nothing else costing anything, over no network.
    fn fan_out() -> (Scenario, Model) {
        let s = Scenario::parse(
            Path::new("f.toml"),
            "name = \"f\"\nduration = \"30s\"\nwarmup = \"0s\"\nmodes = [\"sse\"]\n[events]\nrate = 1\n\
             arrival = \"constant\"\n[clients]\ncount = 1000\n[network]\nround_trip = \"0s\"\n",
        )
        .unwrap();
        let mut c = Calibration::reference();
        for cost in &mut c.cpu {
            cost.cpu_ns = if cost.op == Op::SseEvent { 10e3 } else { 0.0 };
        }
        (s, Model::new(None, c))
    }

    #[test]
    fn the_fewest_cores_that_keep_the_target_are_found() {
        // Each event's 1,000 writes share c cores: follower i is written after
        // ceil((i + 1) / c) × 10 µs, so p99 ≈ 0.99 × 1000 / c × 10 µs = 9.9 / c ms. For a
        // 2.2 ms target: 4 cores give 2.48 ms, 5 give 1.98 ms: 5, by hand.
        let (s, model) = fan_out();
        let tried = std::sync::Mutex::new(Vec::new());
        let c = search(
            &s,
            Mode::Sse,
            &model,
            Duration::from_micros(2200),
            &|cores, p99| tried.lock().unwrap().push((cores, p99)),
        );
        assert_eq!(c.cores, Some(5), "{c:?} after {:?}", tried.lock().unwrap());
        assert!((c.p99_ms - 1.98).abs() < 0.02, "{c:?}");
        assert_eq!(c.probes as usize, tried.lock().unwrap().len());
        let memory = model.calibration.memory(Mode::Sse).unwrap();
        assert!(
            (c.memory_bytes
                - memory.held(&crate::calibration::Held {
                    connections: 1000,
                    ..Default::default()
                }))
            .abs()
                < 1e-6 * c.memory_bytes,
            "{} for 1,000 connections of {memory:?}",
            c.memory_bytes
        );
    }

    #[test]
    fn a_target_below_what_the_mode_itself_takes_is_out_of_reach() {
        // A 5 µs target: one write alone takes 10 µs, however many cores there are.
        let (s, model) = fan_out();
        let c = search(&s, Mode::Sse, &model, Duration::from_micros(5), &|_, _| {});
        assert_eq!((c.cores, c.probes, c.lost), (None, 1, 0), "{c:?}");
        assert!(c.p99_ms >= 0.01, "{c:?}");
    }

    #[test]
    fn clients_turned_away_are_a_loss_no_core_count_mends() {
        // 100 of the 1,000 followers are let in: the other 900 miss every one of the 30
        // events (one a second for 30 s), whatever the cores.
        let (mut s, model) = fan_out();
        s.server.max_connections = Some(100);
        let c = search(&s, Mode::Sse, &model, Duration::from_millis(100), &|_, _| {});
        assert_eq!((c.cores, c.probes), (None, 1), "{c:?}");
        assert_eq!(c.lost, 900 * 30, "{c:?}");
    }
}
