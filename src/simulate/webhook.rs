//! Webhooks in the model: each event becomes one delivery per follower, ready when the event
//! is scheduled; `concurrency` workers take ready deliveries first come, first served (the
//! real dispatcher's one queue); an attempt holds its worker for a round trip, and reaches
//! the receiver one way after it starts. A receiver answers 503 to the first
//! `receiver_fail_attempts` attempts of every message; each failure is retried after the
//! schedule's next delay (times `time_scale`, ±20%), and a message whose retries run out is
//! dead-lettered. With the workers busy, deliveries queue: the dispatcher's own saturation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::log::Log;
use super::queue::Queue;
use super::server::Server;
use super::{Outcome, Progress, Wire, PROGRESS_EVERY};
use crate::calibration::Op;
use crate::scenario::Scenario;

/// One message for one follower.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    /// When its event was scheduled, ns.
    at: u64,
    measured: bool,
    /// Attempts made so far.
    attempts: u32,
}

/// Simulates `s`'s webhook dispatcher and receivers over `net`.
pub fn run(s: &Scenario, wire: &mut Wire, server: &mut Server, progress: Progress) -> Outcome {
    let warmup = s.warmup.as_nanos() as u64;
    let end = warmup + s.duration.as_nanos() as u64;
    let horizon = end + s.drain.as_nanos() as u64;
    let w = &s.webhook;
    let delays: Vec<u64> = w
        .retry
        .delays(w.time_scale)
        .iter()
        .map(|d| d.as_nanos() as u64)
        .collect();
    let log = Log::new(s);
    let mut out = Outcome::owed(log.measured_events(), log.expected());
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    // When each worker is next free.
    let mut workers: BinaryHeap<Reverse<u64>> = (0..w.concurrency.max(1)).map(|_| Reverse(0)).collect();
    let mut retries: Queue<Delivery> = Queue::with_capacity(1024);
    let events = log.events();
    let (mut next_event, mut next_follower) = (0, 0);
    loop {
        // The next ready delivery: a retry that is due first, else the next event's next follower.
        let first = events.get(next_event).map(|e| e.0);
        let (ready, mut d) = match (first, retries.next_due()) {
            (Some(f), Some(r)) if r < f => retries.pop().expect("due"),
            (Some(_), _) => {
                let (at, topic, measured) = events[next_event];
                let followers = log.followers(topic);
                if followers.is_empty() {
                    next_event += 1;
                    continue;
                }
                next_follower += 1;
                if next_follower == followers.len() {
                    (next_event, next_follower) = (next_event + 1, 0);
                }
                let d = Delivery {
                    at,
                    measured,
                    attempts: 0,
                };
                (at, d)
            }
            (None, Some(_)) => retries.pop().expect("due"),
            (None, None) => break,
        };
        if ready > horizon {
            break;
        }
        out.actions += 1;
        if out.actions.is_multiple_of(PROGRESS_EVERY) {
            progress(ready);
        }
        let Reverse(free) = workers.pop().expect("at least one worker");
        // A worker takes the delivery, a core signs and sends it, the receiver answers.
        let start = ready.max(free);
        let sent = server.serve(start, &[(Op::WebhookAttempt, 1.0)]);
        // The attempt carries the event there; the receiver's answer comes back.
        let arrives = sent + wire.answer(1);
        let answered = arrives + wire.request();
        workers.push(Reverse(answered));
        if (warmup..end).contains(&start) {
            out.requests += 1;
            out.retries += u64::from(d.attempts > 0);
        }
        d.attempts += 1;
        if d.attempts <= w.receiver_fail_attempts {
            match delays.get(d.attempts as usize - 1) {
                Some(&delay) => retries.push(answered + (delay as f64 * rng.gen_range(0.8..=1.2)) as u64, d),
                None => out.dead_letters += u64::from(d.measured),
            }
        } else if d.measured && arrives <= horizon {
            out.delivered += 1;
            out.latency.saturating_record(((arrives - d.at) / 1000).max(1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::modes::webhook::predict;
    use crate::simulate::quietly;
    use crate::simulate::testing::given;
    use crate::simulate::Network;

    fn scenario(duration: &str, rate: f64, clients: u32, webhook: &str) -> Scenario {
        let text = format!(
            "name = \"w\"\nseed = 11\nduration = \"{duration}\"\nwarmup = \"10s\"\ndrain = \"30s\"\n\
             modes = [\"webhook\"]\n[events]\nrate = {rate}\ntopics = 1\narrival = \"poisson\"\n\
             [clients]\ncount = {clients}\n[webhook]\n{webhook}"
        );
        Scenario::parse(Path::new("w.toml"), &text).unwrap()
    }

    #[test]
    fn one_busy_worker_queues_as_an_m_d_1_queue() {
        // Poisson arrivals at 50/s, each attempt holding the only worker for a 10 ms round
        // trip: ρ = 0.5, and Pollaczek–Khinchine gives a mean wait of ρD / 2(1 − ρ) = 5 ms,
        // before the 5 ms way to the receiver.
        let s = scenario("2000s", 50.0, 1, "concurrency = 1\n");
        let o = run(
            &s,
            &mut Wire::plain(&Network::of(Duration::from_millis(10))),
            &mut Server::instant(),
            &quietly,
        );
        assert_eq!(o.delivered, o.expected);
        let mean_ms = o.latency.mean() / 1000.0;
        assert!((mean_ms / 10.0 - 1.0).abs() < 0.03, "mean latency {mean_ms} ms");
        // Past saturation the queue grows without end: at 200 events/s the worker still
        // delivers 100/s, warm-up events first, so by the end of the drain (10 + 60 + 30 s)
        // it has delivered 100 × 100 − 100 × 10 × 2 = 8,000 measured events.
        let over = run(
            &scenario("60s", 200.0, 1, "concurrency = 1\n"),
            &mut Wire::plain(&Network::of(Duration::from_millis(10))),
            &mut Server::instant(),
            &quietly,
        );
        assert!(
            (over.delivered as f64 / 8000.0 - 1.0).abs() < 0.02,
            "{} of {}",
            over.delivered,
            over.expected
        );
    }

    #[test]
    fn failed_attempts_are_retried_on_the_schedule_and_agree_with_the_theory() {
        let s = scenario(
            "300s",
            20.0,
            10,
            "receiver_fail_attempts = 2\nretry = [\"1s\", \"2s\", \"4s\"]\n",
        );
        let o = run(
            &s,
            &mut Wire::plain(&Network::of(Duration::from_millis(2))),
            &mut Server::instant(),
            &quietly,
        );
        assert_eq!(o.delivered, o.expected);
        let theory = predict(&s, &given(&o, 10, 300.0, 2.0));
        let per_delivery = o.requests as f64 / o.delivered as f64;
        assert!(
            (per_delivery / theory.requests_per_delivery - 1.0).abs() < 0.01,
            "{per_delivery}"
        );
        // Two of every three attempts are retries (but for the window's edges).
        let share = o.retries as f64 / o.requests as f64;
        assert!((share - 2.0 / 3.0).abs() < 0.001, "{share}");
        // 1 s and 2 s, each ±20%, plus two round trips and a way there: 3.005 s on average.
        let mean_ms = o.latency.mean() / 1000.0;
        assert!((mean_ms - 3005.0).abs() < 10.0, "{mean_ms}");
        assert!(o.latency.min() >= 2_404_000 && o.latency.max() <= 3_606_000);
    }

    #[test]
    fn a_message_whose_retries_run_out_is_dead_lettered() {
        let s = scenario(
            "60s",
            20.0,
            3,
            "receiver_fail_attempts = 4\nretry = [\"1s\", \"1s\", \"1s\"]\n",
        );
        let o = run(
            &s,
            &mut Wire::plain(&Network::of(Duration::from_millis(2))),
            &mut Server::instant(),
            &quietly,
        );
        assert_eq!((o.delivered, o.dead_letters), (0, o.expected));
    }
}
