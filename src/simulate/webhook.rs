//! Webhooks in the model: each event becomes one delivery per follower, ready when the event
//! is scheduled; `concurrency` workers take ready deliveries first come, first served (the
//! real dispatcher's one queue); an attempt holds its worker until its answer (or the
//! `timeout`), and reaches the receiver one way after it starts. A receiver answers 503 to
//! the first `receiver_fail_attempts` attempts of every message it handles; each failure is
//! retried after the schedule's next delay (times `time_scale`, ±20%, or longer when a
//! `Retry-After` asks), and a message whose retries run out is dead-lettered. With the
//! workers busy, deliveries queue: the dispatcher's own saturation. One endpoint has at most
//! `endpoint_concurrency` attempts under way; its next delivery waits, holding no worker,
//! until one of them ends.
//!
//! Faults, as the real receivers and dispatcher have them: `receiver_down` answers 503 (with
//! its `Retry-After`) or hangs up; `receiver_flaky` answers 503 by chance; `receiver_slow`
//! handles the delivery and answers late, so that past the timeout the dispatcher retries and
//! the receiver gets a duplicate; `receiver_gone` answers 410 and the endpoint is disabled:
//! every message it is owed, then and later, goes to the dead letters, as do those of an
//! endpoint that has failed without a success for `disable_after`; `latency` adds its delay
//! to each way. The attempts' connections are pooled per receiver host (`pools.rs`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::faults::{Faults, Receiver};
use super::log::Log;
use super::pools::Pools;
use super::queue::Queue;
use super::server::{Server, Woken};
use super::{Outcome, Progress, Wire, PROGRESS_EVERY};
use crate::calibration::Op;
use crate::event::Mode;
use crate::scenario::Scenario;

/// One message for one follower.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    /// When its event was scheduled, ns.
    at: u64,
    /// The follower.
    client: u32,
    measured: bool,
    /// Whether its receiver has recorded it (later arrivals are duplicates).
    received: bool,
    /// Attempts made so far.
    attempts: u32,
    /// Of those, the ones its receiver handled (rather than refused for a fault).
    handled: u32,
}

/// What became of one attempt.
enum Answer {
    Delivered,
    /// Failed; the receiver may have asked for a wait (`Retry-After`).
    Failed(Option<u64>),
    Gone,
}

/// Simulates `s`'s webhook dispatcher and receivers over `wire`.
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
    let (timeout, disable_after) = (w.timeout.as_nanos() as u64, w.disable_after().as_nanos() as u64);
    let log = Log::new(s);
    let mut out = Outcome::owed(s, &log);
    let mut faults = Faults::new(s, Mode::Webhook);
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    // Each endpoint: disabled, and since when it has failed without a success (0: it has not).
    let mut disabled = vec![false; log.clients];
    let mut failing_since = vec![0u64; log.clients];
    let bury = |d: &Delivery, now: u64, out: &mut Outcome| {
        out.sender.dead_letters += u64::from(now >= warmup);
        if d.measured && !d.received {
            out.dead_lettered(d.at);
        }
    };
    // Each endpoint's attempts under way, when each ends (kept only while it has some, and
    // only when its share can bind).
    let cap = w.endpoint_concurrency();
    let mut lanes: HashMap<u32, BinaryHeap<Reverse<u64>>> = HashMap::new();
    // When each worker is next free.
    let mut workers: BinaryHeap<Reverse<u64>> = (0..w.concurrency.max(1)).map(|_| Reverse(0)).collect();
    let mut retries: Queue<Delivery> = Queue::with_capacity(1024);
    let mut pools = Pools::new(w.receiver_hosts);
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
                let client = followers[next_follower];
                next_follower += 1;
                if next_follower == followers.len() {
                    (next_event, next_follower) = (next_event + 1, 0);
                }
                let d = Delivery {
                    at,
                    client,
                    measured,
                    received: false,
                    attempts: 0,
                    handled: 0,
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
        let start = ready.max(free);
        if (warmup..end).contains(&ready) {
            out.worker_waits.waited(ready, start - ready);
        }
        let c = d.client;
        if disabled[c as usize] {
            // A disabled endpoint's messages are buried unsent.
            workers.push(Reverse(start));
            bury(&d, start, &mut out);
            continue;
        }
        if cap < w.concurrency {
            if let Some(lane) = lanes.get_mut(&c) {
                while lane.peek().is_some_and(|&Reverse(end)| end <= start) {
                    lane.pop();
                }
                if let Some(&Reverse(first_end)) = lane.peek().filter(|_| lane.len() >= cap) {
                    // The endpoint has its share under way: the delivery waits for the first
                    // to end, and the worker takes another.
                    workers.push(Reverse(free));
                    retries.push(first_end, d);
                    continue;
                }
            }
        }
        // A worker takes the delivery and checks a connection out of its host's pool as soon
        // as its task runs, before its turn at a core to send (a burst's attempts hold their
        // connections at once); a core signs and sends it, opening the connection first if the
        // pool had none idle (the calibration's runs count the server's connections opened);
        // it reaches the receiver, which takes the fault's added way there (and back) and
        // answers.
        let (host, opens) = pools.check_out(c, start);
        let opens = f64::from(u8::from(opens));
        let retry = f64::from(u8::from(d.attempts > 0));
        let sent = server.serve(
            start,
            Woken::ByEvent,
            &[
                (Op::WebhookAttempt, 1.0),
                (Op::Crowded, 1.0),
                (Op::WebhookRetry, retry),
                (Op::Connection, opens),
            ],
        );
        let reaches = sent + wire.answer(1);
        let added = faults.delay(c, reaches);
        let taken = reaches + added;
        let receiver = faults.receiver(c, reaches);
        let hangs_up = matches!(receiver, Receiver::HangsUp);
        let (mut answer, late) = match receiver {
            Receiver::Handles { slow } => {
                d.handled += 1;
                if d.handled <= w.receiver_fail_attempts {
                    (Answer::Failed(None), 0)
                } else {
                    if !d.received && taken <= horizon {
                        out.landed(taken, 1);
                    }
                    if d.measured && taken <= horizon {
                        if d.received {
                            out.duplicate(d.at);
                        } else {
                            out.arrived(d.at, taken);
                        }
                    }
                    d.received |= taken <= horizon;
                    (Answer::Delivered, slow)
                }
            }
            Receiver::Unavailable(asked) => (Answer::Failed(asked), 0),
            Receiver::HangsUp => (Answer::Failed(None), 0),
            Receiver::Gone => (Answer::Gone, 0),
        };
        let mut answered = taken + late + added + wire.request();
        let timed_out = answered - sent > timeout;
        if timed_out {
            (answer, answered) = (Answer::Failed(None), sent + timeout);
        }
        server.replied(start, sent, answered);
        workers.push(Reverse(answered));
        pools.hold(host, answered, timed_out || hangs_up);
        if cap < w.concurrency {
            let lane = lanes.entry(c).or_default();
            lane.push(Reverse(answered));
            if lanes.len() > 4 * w.concurrency {
                // Forget the endpoints whose attempts have all ended.
                lanes.retain(|_, lane| lane.iter().any(|&Reverse(end)| end > start));
            }
        }
        if (warmup..end).contains(&start) {
            out.requests += 1;
            out.retries += u64::from(d.attempts > 0);
        }
        // The sender's own counters run from the warm-up's end to the drain's.
        let counted = u64::from(start >= warmup);
        let sender = &mut out.sender;
        sender.attempts += counted;
        sender.retries += counted * u64::from(d.attempts > 0);
        if let (Some(t), true) = (&mut out.timeline, d.attempts > 0) {
            t.retried(start);
        }
        sender.timeouts += counted * u64::from(timed_out);
        d.attempts += 1;
        let asked = match answer {
            Answer::Delivered => {
                sender.successes += counted;
                failing_since[c as usize] = 0;
                continue;
            }
            Answer::Gone => {
                // Counted once, though attempts in flight may each be answered 410.
                sender.disabled_endpoints += counted * u64::from(!disabled[c as usize]);
                disabled[c as usize] = true;
                None
            }
            Answer::Failed(asked) => asked,
        };
        sender.failures += counted;
        // A failure: an endpoint failing for too long is disabled; the message waits for
        // its next attempt, or is given up on. (Attempts are taken up in the order they
        // start, so one may fail before an earlier one.)
        let since = &mut failing_since[c as usize];
        if *since == 0 || answered < *since {
            *since = answered.max(1);
        }
        if answered - *since >= disable_after && !disabled[c as usize] {
            disabled[c as usize] = true;
            out.sender.disabled_endpoints += counted;
        }
        match delays.get(d.attempts as usize - 1) {
            Some(&delay) if !disabled[c as usize] => {
                let jittered = (delay as f64 * rng.gen_range(0.8..=1.2)) as u64;
                let asked = asked.unwrap_or(0);
                out.sender.retry_after_obeyed += counted * u64::from(asked > jittered);
                retries.push(answered + jittered.max(asked), d);
            }
            _ => bury(&d, answered, &mut out),
        }
    }
    out.peak_connections = pools.peak();
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
    fn the_sender_holds_a_connection_per_attempt_under_way_to_each_host() {
        // 8 endpoints on 4 hosts (client k on host k % 4), every event to all 8, an event a
        // second, evenly, each attempt a 10 ms round trip. With 256 workers an event's 8
        // attempts go at once, two to each host: 8 connections. With 2 workers two
        // consecutive endpoints are under way at once, never two of one host: one connection
        // per host, 4.
        let peak = |concurrency: u32| {
            let s = Scenario::parse(
                Path::new("w.toml"),
                &format!(
                    "name = \"w\"\nduration = \"60s\"\nmodes = [\"webhook\"]\n\
                     [events]\nrate = 1\ntopics = 1\narrival = \"constant\"\n[clients]\ncount = 8\n\
                     [webhook]\nconcurrency = {concurrency}\nreceiver_hosts = 4\n"
                ),
            )
            .unwrap();
            let wire = &mut Wire::plain(&Network::of(Duration::from_millis(10)));
            run(&s, wire, &mut Server::instant(), &quietly).peak_connections
        };
        assert_eq!(peak(256), 8);
        assert_eq!(peak(2), 4);
    }

    #[test]
    fn a_bursts_attempts_hold_their_connections_while_they_wait_for_a_core() {
        // As above with 256 workers, but one core that takes 20 ms to sign and send each
        // attempt, longer than its 10 ms round trip: the 8 attempts are sent 20 ms apart and
        // never under way on the wire together, yet each worker checked its connection out
        // when it took the delivery, so all 8 are open at once (4, one per host, if a
        // connection were held only from its send).
        let s = Scenario::parse(
            Path::new("w.toml"),
            "name = \"w\"\nduration = \"60s\"\nmodes = [\"webhook\"]\n\
             [events]\nrate = 1\ntopics = 1\narrival = \"constant\"\n[clients]\ncount = 8\n\
             [webhook]\nconcurrency = 256\nreceiver_hosts = 4\n",
        )
        .unwrap();
        let mut c = crate::calibration::Calibration::reference();
        for cost in &mut c.cpu {
            cost.cpu_ns = if cost.op == Op::WebhookAttempt { 20e6 } else { 0.0 };
        }
        let wire = &mut Wire::plain(&Network::of(Duration::from_millis(10)));
        let o = run(&s, wire, &mut Server::new(&s, &c, 1), &quietly);
        assert_eq!(o.peak_connections, 8);
    }

    #[test]
    fn the_server_is_charged_for_each_connection_its_sender_opens() {
        // 8 endpoints on 4 hosts, an event a second to all of them, a 10 ms round trip. Healthy,
        // the first event's 8 attempts open 8 connections (2 a host) and every later attempt
        // takes one of them back from its pool: at most 8 opened, of some 480 attempts. With
        // every receiver slower than the 1 s timeout, each attempt is given up and its
        // connection with it, so each opens one of its own: as many opened as attempts.
        let s = |faults: &str| {
            Scenario::parse(
                Path::new("w.toml"),
                &format!(
                    "name = \"w\"\nduration = \"60s\"\nwarmup = \"1s\"\nmodes = [\"webhook\"]\n\
                     [events]\nrate = 1\ntopics = 1\narrival = \"constant\"\n[clients]\ncount = 8\n\
                     [webhook]\nconcurrency = 256\nreceiver_hosts = 4\ntimeout = \"1s\"\n{faults}"
                ),
            )
            .unwrap()
        };
        let opened = |s: &Scenario| {
            let mut server = Server::new(s, &crate::calibration::Calibration::reference(), 2);
            let wire = &mut Wire::plain(&Network::of(Duration::from_millis(10)));
            run(s, wire, &mut server, &quietly);
            (
                server.counts.get(Op::Connection),
                server.counts.get(Op::WebhookAttempt),
            )
        };
        let (healthy, attempts) = opened(&s(""));
        assert!(attempts >= 400.0, "{attempts}");
        assert!(healthy <= 8.0, "{healthy} of {attempts}");
        let (slow, attempts) = opened(&s(
            "[[faults]]\nkind = \"receiver_slow\"\nat = \"0s\"\nfor = \"100s\"\nshare = 1.0\ndelay = \"2s\"\n",
        ));
        assert!(attempts >= 100.0, "{attempts}");
        assert_eq!(slow, attempts);
    }

    #[test]
    fn an_events_attempts_share_the_wake_up_of_the_core_that_woke_for_the_first() {
        // Four endpoints follow the one topic, an event every 100 ms, evenly: each event's
        // four attempts reach two cores asleep at one instant. An attempt costs 10 µs, a
        // wake-up 100 µs: the first attempt wakes a core, awake 100 µs later; the other three
        // follow it there (done 120, 130 and 140 µs after the event), before a second core,
        // woken only then, could start (at 200 µs). By hand, one wake-up an event: a quarter
        // of the attempts. Were each attempt to wake a core of its own, half.
        let s = Scenario::parse(
            Path::new("w.toml"),
            "name = \"w\"\nduration = \"20s\"\nwarmup = \"1s\"\ndrain = \"1s\"\nmodes = [\"webhook\"]\n\
             [events]\nrate = 10\ntopics = 1\narrival = \"constant\"\n[clients]\ncount = 4\n\
             [webhook]\nconcurrency = 16\n",
        )
        .unwrap();
        let mut c = crate::calibration::Calibration::reference();
        c.falls_asleep_ns = 2_000_000;
        for cost in &mut c.cpu {
            cost.cpu_ns = match cost.op {
                Op::WebhookAttempt => 10e3,
                Op::Wake => 100e3,
                _ => 0.0,
            };
        }
        let mut server = Server::new(&s, &c, 2);
        let wire = &mut Wire::plain(&Network::of(Duration::from_micros(200)));
        run(&s, wire, &mut server, &quietly);
        let attempts = server.counts.get(Op::WebhookAttempt);
        assert!((attempts / 800.0 - 1.0).abs() < 0.01, "{attempts}");
        assert_eq!(server.counts.get(Op::Wake), attempts / 4.0);
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
