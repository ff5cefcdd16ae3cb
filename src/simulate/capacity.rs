//! How big a server each mode needs: with `[server] p99_target`, the fewest cores whose
//! model keeps p99 within the target with nothing lost (every event delivered or, by the
//! sender's own policy, dead-lettered) and the cores busy at most 95% of the time, found by running the model
//! at doubling core counts until one does, then halving the gap to the one below. More cores
//! never make the model's answers later (each job starts at the earliest free core), so the
//! search may bisect. Then the same search from there with every cost one standard error of
//! the mode's CPU cheaper, and dearer: the cores needed within the calibration's own error.

use super::{mode_result, Model};
use crate::event::Mode;
use crate::results::{Capacity, CoresWithinError};
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
    let mut search = Search {
        s,
        mode,
        target_ms,
        probed,
        probes: 0,
    };
    let (cores, at) = search.fewest(model, None);
    // The mode's CPU one standard error cheaper and dearer, every cost scaled alike (the
    // error is the norm of its loadings on the calibration's costs).
    let within_error = cores.filter(|_| at.error > 0.0).map(|found| {
        let priced = |factor: f64| {
            let mut m = model.clone();
            for cost in &mut m.calibration.cpu {
                cost.cpu_ns *= factor;
            }
            m
        };
        CoresWithinError {
            cpu_error: at.error,
            cheaper: search.fewest(&priced((1.0 - at.error).max(0.0)), Some(found)).0,
            dearer: search.fewest(&priced(1.0 + at.error), Some(found)).0,
        }
    });
    Capacity {
        mode,
        p99_target_ms: target_ms,
        cores,
        most_cores: MAX_CORES as u32,
        p99_ms: at.p99,
        memory_bytes: at.memory,
        probes: search.probes,
        lost: if cores.is_none() { at.lost } else { 0 },
        within_error,
    }
}

/// One mode's search, over the models it runs.
struct Search<'a> {
    s: &'a Scenario,
    mode: Mode,
    target_ms: f64,
    probed: &'a (dyn Fn(u32, f64) + Sync),
    /// Models run so far.
    probes: u32,
}

impl Search<'_> {
    /// Whether `model` on `cores` cores keeps the target, and what it gave.
    fn run(&mut self, model: &Model, cores: u32) -> (bool, Probe) {
        let mut at = self.s.clone();
        at.server.cores = Some(cores);
        let m = mode_result(&at, self.mode, model, &super::quietly);
        self.probes += 1;
        let p99 = m.latency.p99_ms;
        (self.probed)(cores, p99);
        // A server busy all the time keeps no target for long: its cores must have room.
        let busy = m.server.cpu_seconds / at.duration.as_secs_f64() / f64::from(cores);
        // Nothing lost: a dead letter is the sender's own policy (a gone endpoint, retries run
        // out), not the server falling short.
        let ok = p99 <= self.target_ms && m.outcomes.lost == 0 && busy <= BUSIEST;
        let loadings = &m.server.cpu_calibration_loadings;
        let error = loadings.iter().map(|l| l * l).sum::<f64>().sqrt() / m.server.cpu_seconds;
        (
            ok,
            Probe {
                p99,
                // The memory its connections held (the webhook sender's pools depend on the cores).
                memory: m.server.memory_per_client_bytes * f64::from(self.s.clients.count),
                lost: m.outcomes.lost,
                error: if error.is_finite() { error } else { 0.0 },
            },
        )
    }

    /// The fewest cores on which `model` keeps the target, and what it gave there (or, when
    /// not even the most cores do, there), searched from `near` (a count found on like
    /// costs) outwards by doubling steps, or without one from a single core upwards; then
    /// bisected.
    fn fewest(&mut self, model: &Model, near: Option<u32>) -> (Option<u32>, Probe) {
        let most = MAX_CORES as u32;
        // Fewest that do: above `low` (fails, or none tried), at most `high` (does).
        let (mut low, mut high, mut at_high);
        match near {
            None => {
                // Not even the most cores: what is left is the mode's own (an interval, a round trip).
                let (ok, at_most) = self.run(model, most);
                if !ok {
                    return (None, at_most);
                }
                (low, high, at_high) = (0, most, at_most);
                let mut cores = 1;
                while cores < most {
                    let (ok, probe) = self.run(model, cores);
                    if ok {
                        (high, at_high) = (cores, probe);
                        break;
                    }
                    low = cores;
                    cores *= 2;
                }
            }
            Some(near) => {
                let (ok, mut probe) = self.run(model, near);
                let mut step = 1;
                if ok {
                    (low, high, at_high) = (0, near, probe);
                    while high > step {
                        let (ok, probe) = self.run(model, high - step);
                        if !ok {
                            low = high - step;
                            break;
                        }
                        (high, at_high) = (high - step, probe);
                        step *= 2;
                    }
                } else {
                    low = near;
                    loop {
                        if low >= most {
                            return (None, probe);
                        }
                        let cores = (low + step).min(most);
                        let (ok, at) = self.run(model, cores);
                        if ok {
                            (high, at_high) = (cores, at);
                            break;
                        }
                        (low, probe) = (cores, at);
                        step *= 2;
                    }
                }
            }
        }
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            let (ok, probe) = self.run(model, mid);
            if ok {
                (high, at_high) = (mid, probe);
            } else {
                low = mid;
            }
        }
        (Some(high), at_high)
    }
}

/// What the model gave at one core count: its p99 (ms), the memory its connections held, the
/// deliveries it lost and its CPU's standard error from the calibration's costs, relative.
#[derive(Clone, Copy)]
struct Probe {
    p99: f64,
    memory: f64,
    lost: u64,
    error: f64,
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
    fn the_cores_within_the_costs_error_are_searched_at_costs_one_error_apart() {
        // A write known to ± 2 µs (20%), nothing else uncertain: the mode's CPU is known to
        // 20%. At 8 µs a write, 4 cores give ceil(990 / 4) × 8 µs = 1.98 ms and 3 give
        // 2.64; at 12 µs, 5 give 198 × 12 µs = 2.38 ms and 6 give 165 × 12 µs = 1.98: for a
        // 2.2 ms target, 4 to 6 cores about the 5 of the costs themselves, by hand.
        let (s, mut model) = fan_out();
        let c = &mut model.calibration;
        let n = c.cpu.len();
        c.cpu_covariance = vec![vec![0.0; n]; n];
        let sse = c.cpu.iter().position(|cost| cost.op == Op::SseEvent).unwrap();
        c.cpu_covariance[sse][sse] = 2e3 * 2e3;
        let tried = std::sync::Mutex::new(Vec::new());
        let found = search(
            &s,
            Mode::Sse,
            &model,
            Duration::from_micros(2200),
            &|cores, p99| tried.lock().unwrap().push((cores, p99)),
        );
        assert_eq!(found.cores, Some(5), "{found:?}");
        let within = found.within_error.expect("an error to search within");
        assert!((within.cpu_error - 0.2).abs() < 1e-9, "{within:?}");
        assert_eq!(
            (within.cheaper, within.dearer),
            (Some(4), Some(6)),
            "{within:?} after {:?}",
            tried.lock().unwrap()
        );
        assert_eq!(found.probes as usize, tried.lock().unwrap().len());
        // Without the costs' covariance there is no error to search within.
        model.calibration.cpu_covariance.clear();
        let bare = search(&s, Mode::Sse, &model, Duration::from_micros(2200), &|_, _| {});
        assert_eq!((bare.cores, bare.within_error), (Some(5), None), "{bare:?}");
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
