//! Long pollers in the model: each client asks again as soon as an answer arrives; the
//! server answers at once when it holds events the client has not had, else when the first
//! of them is scheduled, else empty when the wait ends (plus the server's jitter of up to
//! wait/16, as the real server adds). The schedule is known in advance, so a held request
//! needs no wake-up: its answer time is the earlier of its next event and its deadline, when
//! the server's cores take up the answer (a long poll, a timeout, each event in it). A server
//! holding its most (`[server] max_held_long_polls`) answers 503 at once, and the client asks
//! again after the `Retry-After` (1 s), as the real one does; so does a client the server
//! turns away because it holds its most connections (`admission.rs`), on a new connection. A paused
//! client asks when its pause ends and reads an answer that lands in a pause when it ends; a
//! `latency` fault adds its delay to each way.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::admission::{Admission, Admitted};
use super::faults::Faults;
use super::log::Log;
use super::queue::Queue;
use super::server::{Server, Woken};
use super::{Outcome, Progress, Wire, PROGRESS_EVERY};
use crate::calibration::Op;
use crate::event::Mode;
use crate::modes::http::BUSY_RETRY_AFTER;
use crate::modes::long_poll::pause_after_failure;
use crate::scenario::Scenario;

/// Simulates `s`'s long pollers over `net`.
pub fn run(s: &Scenario, wire: &mut Wire, server: &mut Server, progress: Progress) -> Outcome {
    let warmup = s.warmup.as_nanos() as u64;
    let end = warmup + s.duration.as_nanos() as u64;
    let horizon = end + s.drain.as_nanos() as u64;
    let (wait, limit) = (s.long_poll.wait.as_nanos() as u64, s.long_poll.limit as usize);
    let mut log = Log::new(s);
    let mut out = Outcome::owed(s, &log);
    let mut faults = Faults::new(s, Mode::LongPoll);
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let mut queue = Queue::with_capacity(log.clients);
    // Every client has a request out when the schedule starts.
    for c in 0..log.clients {
        queue.push(0, c as u32);
    }
    // The server's limit on held requests, counted from a request's send to its answer (a
    // leg early: the model meets a request when it is sent).
    let most_held = s
        .server
        .max_held_long_polls
        .unwrap_or(crate::scenario::DEFAULT_MAX_HELD_LONG_POLLS);
    let mut holding = 0u64;
    // When each client's last answer reached the server and was written.
    let mut answered_at = vec![(u64::MAX, 0); log.clients];
    let mut admission = Admission::new(s);
    let busy_pause = pause_after_failure(Some(BUSY_RETRY_AFTER)).as_nanos() as u64;
    while let Some((at, entry)) = queue.pop() {
        if at > horizon {
            break;
        }
        let c = (entry & !(ANSWERS | REFUSED | CLOSED)) as usize;
        if entry & (ANSWERS | REFUSED | CLOSED) == 0 {
            // A paused client asks when its pause ends.
            let resumed = faults.resume(entry, at);
            if resumed > at {
                queue.push(resumed, entry);
                continue;
            }
            // The client sends; the server will answer at the earlier of the client's next
            // event and its deadline, or at once with a 503 when it holds its most.
            out.actions += 1;
            if out.actions.is_multiple_of(PROGRESS_EVERY) {
                progress(at);
            }
            let at_server = at + faults.delay(entry, at) + wire.request();
            let (write_at, written) = answered_at[c];
            if write_at != u64::MAX {
                server.replied(write_at, written, at_server);
            }
            // A client turned away before opens a new connection.
            out.reconnects += u64::from(admission.was_refused(c));
            if admission.admit(c, at_server) == Admitted::Refused {
                queue.push(at_server, c as u32 | CLOSED);
                continue;
            }
            if holding >= most_held {
                queue.push(at_server, c as u32 | REFUSED);
                continue;
            }
            holding += 1;
            let deadline = at_server + wait + (wait as f64 * rng.gen_range(0.0..1.0 / 16.0)) as u64;
            let answer_at = match log.next_for(c) {
                Some(next) if next <= deadline => next.max(at_server),
                _ => deadline,
            };
            queue.push(answer_at, c as u32 | ANSWERS);
            continue;
        }
        if entry & (CLOSED | REFUSED) != 0 {
            // A 503 with Retry-After, which the real client waits before it asks again: a
            // connection turned away (before any route counts it as a request) or a hold
            // refused.
            let closed = entry & CLOSED != 0;
            let op = if closed { Op::Connection } else { Op::LongPoll };
            let back = server.serve(at, Woken::ByRequest, &[(op, 1.0)]) + wire.answer(0);
            out.client_errors += 1;
            if !closed && (warmup..end).contains(&at) {
                out.requests += 1;
            }
            queue.push(faults.read(c as u32, back) + busy_pause, c as u32);
            continue;
        }
        holding -= 1;
        let mut answered = 0;
        let (taken, _) = log.hand_out(c, at, limit, &mut out, |taken| {
            let timed_out = if taken == 0 { 1.0 } else { 0.0 };
            let done = server.serve(
                at,
                Woken::ByEvent,
                &[
                    (Op::LongPoll, 1.0),
                    (Op::LongPollTimeout, timed_out),
                    (Op::PagedEvent, taken as f64),
                    (Op::Crowded, 1.0 + taken as f64),
                ],
            );
            answered_at[c] = (at, done);
            // The answer's way back, read when a pause lets the client read it.
            let back = done + wire.answer(taken);
            answered = faults.read(c as u32, back);
            answered
        });
        server.replies_no_sooner_than(at, answered);
        // The server counts a request when it answers it.
        if (warmup..end).contains(&at) {
            out.requests += 1;
            out.empty += u64::from(taken == 0);
        }
        queue.push(answered, c as u32);
    }
    admission.count(&mut out);
    out
}

/// Marks a queue entry as the server answering a held request rather than a client sending.
const ANSWERS: u32 = 1 << 31;

/// Marks a queue entry as the server refusing a request: it holds its most already.
const REFUSED: u32 = 1 << 30;

/// Marks a queue entry as the server turning a connection away: it holds its most.
const CLOSED: u32 = 1 << 29;

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::modes::long_poll::predict;
    use crate::simulate::quietly;
    use crate::simulate::testing::{close_counts, given};
    use crate::simulate::Network;

    fn scenario(rate: f64) -> Scenario {
        let text = format!(
            "name = \"sim\"\nseed = 5\nduration = \"1200s\"\nwarmup = \"30s\"\ndrain = \"35s\"\nmodes = [\"long_poll\"]\n\
             [events]\nrate = {rate}\ntopics = 100\narrival = \"poisson\"\n[clients]\ncount = 500\n\
             [long_poll]\nwait = \"10s\"\n"
        );
        Scenario::parse(Path::new("sim.toml"), &text).unwrap()
    }

    const NET: Network = Network::of(Duration::from_millis(2));

    #[test]
    fn long_pollers_agree_with_the_theory_and_deliver_in_one_way() {
        // λ = 0.05 and 0.2 events/s per client: most cycles end by the wait, or by an event.
        for rate in [5.0, 20.0] {
            let s = scenario(rate);
            let o = run(&s, &mut Wire::plain(&NET), &mut Server::instant(), &quietly);
            assert_eq!(o.delivered, o.expected, "rate {rate}");
            let theory = predict(&s, &given(&o, 500, 1200.0, 2.0));
            close_counts(&format!("rate {rate}"), &o, &theory);
            // A held request answers an event one way later: 1 ms. Only the events that come
            // while no request is held (the round trip after each answer) wait longer.
            assert_eq!(o.latency.value_at_quantile(0.5), 1000, "rate {rate}");
            assert!(
                o.latency.value_at_quantile(0.99) <= 3000,
                "rate {rate}: {}",
                o.latency.value_at_quantile(0.99)
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let s = scenario(5.0);
        assert_eq!(
            run(&s, &mut Wire::plain(&NET), &mut Server::instant(), &quietly),
            run(&s, &mut Wire::plain(&NET), &mut Server::instant(), &quietly)
        );
    }

    #[test]
    fn an_answers_reply_over_a_long_round_trip_wakes_the_worker_as_the_calibrations_runs_did() {
        // 100 long pollers, each alone on a topic, 200 events a second (Poisson), a 40 ms
        // round trip; the calibration's runs waited at most 0.5 ms for a reply. An answer's
        // reply wakes the worker when no other job reaches the server within those 0.5 ms
        // after it: with a job an event, e^(−200/s × 0.5 ms) = 0.90 of the answers. Charged
        // only when no job comes before the reply itself, 40 ms later, e^(−8): none. (A
        // calibration without runs over a round trip: one with them prices each reply from
        // afar as it comes.)
        let mut s = scenario(200.0);
        s.clients.count = 100;
        let mut c = crate::calibration::Calibration::reference();
        c.prices_replies_from_afar = false;
        c.falls_asleep_ns = u64::MAX / 4;
        for cost in &mut c.cpu {
            cost.cpu_ns = 1e3;
        }
        let net = Network::of(Duration::from_millis(40));
        let mut woken = |within: Option<u64>| {
            c.longest_round_trip_ns = within;
            let mut server = Server::new(&s, &c, 2);
            run(&s, &mut Wire::plain(&net), &mut server, &quietly);
            server.counts.get(Op::RequestWake) / server.counts.get(Op::LongPoll)
        };
        let capped = woken(Some(500_000));
        assert!((0.85..0.95).contains(&capped), "{capped}");
        let uncapped = woken(None);
        assert!(uncapped < 0.01, "{uncapped}");
    }

    #[test]
    fn a_fan_outs_replies_from_afar_each_wake_the_server_when_the_calibration_prices_them() {
        // 10 long pollers on one topic, 5 events a second, one core; a long poll's answer
        // costs 101 µs (100 µs and 1 µs its event), everything else 1 µs, the idle threshold
        // 2 ms. An event's ten answers take the core from its instant t until t + 1.01 ms.
        // Over a 40 ms round trip with 10 ms of jitter the clients' next requests come back
        // spread over ±10 ms, each later than the threshold after its answer, so from afar:
        // priced, each wakes the core it finds idle, all but those landing on another event's
        // millisecond of answers (about 1 in 200 at 5 events a second). Unpriced, each is
        // counted once as a reply from afar without a price and none is charged so; over a
        // 50 µs round trip (each back within the threshold) none is from afar.
        let text = "name = \"fan\"\nseed = 5\nduration = \"600s\"\nwarmup = \"10s\"\ndrain = \"35s\"\n\
                    modes = [\"long_poll\"]\n[events]\nrate = 5\ntopics = 1\narrival = \"poisson\"\n\
                    [clients]\ncount = 10\n[long_poll]\nwait = \"30s\"\n";
        let s = Scenario::parse(Path::new("fan.toml"), text).unwrap();
        let mut c = crate::calibration::Calibration::reference();
        c.falls_asleep_ns = 2_000_000;
        for cost in &mut c.cpu {
            cost.cpu_ns = if cost.op == Op::LongPoll { 100e3 } else { 1e3 };
        }
        let far = Network {
            jitter: Duration::from_millis(10),
            ..Network::of(Duration::from_millis(40))
        };
        let mut woken = |priced: bool, net: Network| {
            c.prices_replies_from_afar = priced;
            let mut server = Server::new(&s, &c, 1);
            run(&s, &mut Wire::plain(&net), &mut server, &quietly);
            // Each share of the answers: replies charged from afar, and told from afar unpriced.
            let answers = server.counts.get(Op::LongPoll);
            (
                server.counts.get(Op::ReplyWake) / answers,
                server.unpriced_from_afar as f64 / answers,
            )
        };
        let (priced, unpriced) = woken(true, far);
        assert!(priced > 0.97 && unpriced == 0.0, "{priced} {unpriced}");
        let (none, unpriced) = woken(false, far);
        assert!(
            none == 0.0 && (0.98..1.02).contains(&unpriced),
            "{none} {unpriced}"
        );
        let (near, unpriced) = woken(true, Network::of(Duration::from_micros(50)));
        assert!(near == 0.0 && unpriced == 0.0, "{near} {unpriced}");
    }

    #[test]
    fn a_server_holding_its_most_refuses_the_rest_who_ask_again_after_its_retry_after() {
        // 10 clients, a server that holds 4 long polls, one event (at the schedule's start):
        // 4 hold their requests, are answered with it and hold again for the whole 20 s wait;
        // the other 6 are refused and ask again after the 1 s Retry-After plus the round trip
        // (2 ms): at 1 ms, 1.003 s, … 9.019 s, 10 each in the 10 s window, 11 to the drain's end.
        let text = "name = \"lim\"\nseed = 1\nduration = \"10s\"\nwarmup = \"0s\"\ndrain = \"1s\"\n\
                    modes = [\"long_poll\"]\n[events]\nrate = 0.000001\n[clients]\ncount = 10\n\
                    [long_poll]\nwait = \"20s\"\n[server]\nmax_held_long_polls = 4\n";
        let s = Scenario::parse(Path::new("lim.toml"), text).unwrap();
        let o = run(&s, &mut Wire::plain(&NET), &mut Server::instant(), &quietly);
        assert_eq!((o.events, o.delivered), (1, 4));
        assert_eq!(o.empty, 0, "no hold timed out within the window");
        assert_eq!((o.requests, o.client_errors), (4 + 60, 66));
        let mut unlimited = s.clone();
        unlimited.server.max_held_long_polls = None;
        let o = run(
            &unlimited,
            &mut Wire::plain(&NET),
            &mut Server::instant(),
            &quietly,
        );
        assert_eq!(
            o.requests, o.delivered,
            "every request held until its event, none refused"
        );
    }
}
