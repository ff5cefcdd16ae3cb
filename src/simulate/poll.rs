//! Short and conditional pollers in the model: each client polls on its own [`Slots`] (the
//! real client's schedule, phase and jitter), sent when its sleep fires on the clients'
//! millisecond timer (`timer.rs`: the pollers due within a millisecond send together), the request reaches the server half a round
//! trip later, the server answers the events of the client's topics scheduled by then (in
//! topic order, at most `limit`, with a full page asked again at once), and the answer comes
//! back half a round trip after the server's cores have served it (an empty page, a 304 for
//! a conditional poller, or a page and each event in it: [`Server`]). A paused client asks
//! when its pause ends and reads an answer that lands in a pause when it ends; a `latency`
//! fault adds its delay to each way. A client's first request opens its connection, and so
//! does each that comes after the server closed the last for waiting too long (`idle.rs`),
//! each priced as a connection opened. A client the server turns away (it holds its most
//! connections, `admission.rs`) counts an error and asks again at its next slot, on a new
//! connection.

use rand_chacha::ChaCha8Rng;

use super::admission::{Admission, Admitted};
use super::faults::Faults;
use super::idle::Idle;
use super::log::Log;
use super::queue::Queue;
use super::server::{Server, Woken};
use super::timer::Timer;
use super::{Outcome, Progress, Wire, PROGRESS_EVERY};
use crate::calibration::Op;
use crate::event::Mode;
use crate::modes::client_rng;
use crate::modes::slots::Slots;
use crate::scenario::Scenario;

/// Simulates `s`'s pollers (`conditional` for `conditional_poll`) over `net`.
pub fn run(
    s: &Scenario,
    conditional: bool,
    wire: &mut Wire,
    server: &mut Server,
    progress: Progress,
) -> Outcome {
    let (p, mode) = if conditional {
        (&s.conditional_poll, Mode::ConditionalPoll)
    } else {
        (&s.poll, Mode::Poll)
    };
    let warmup = s.warmup.as_nanos() as u64;
    let end = warmup + s.duration.as_nanos() as u64;
    let horizon = end + s.drain.as_nanos() as u64;
    let limit = p.limit as usize;

    let mut log = Log::new(s);
    let n = log.clients;

    // Each client draws from its own stream, the real client's: kept as a position in it
    // (8 bytes) rather than a generator (hundreds) per client.
    let mut drawn = vec![0u64; n];
    let mut with_rng = |c: usize, f: &mut dyn FnMut(&mut ChaCha8Rng) -> u64| {
        let mut rng = client_rng(s.seed, c as u32);
        rng.set_word_pos(u128::from(drawn[c]));
        let out = f(&mut rng);
        drawn[c] = rng.get_word_pos() as u64;
        out
    };
    // Each sleep until a slot fires on the clients' timer; a full page is asked again at once.
    let timer = Timer::new(s.seed);
    let mut slots: Vec<Slots> = Vec::with_capacity(n);
    let mut queue = Queue::with_capacity(n);
    for c in 0..n {
        let first = with_rng(c, &mut |rng| {
            let mut slot = Slots::new(p, 0, rng);
            let first = slot.next(p.interval, 0, rng);
            slots.push(slot);
            first
        });
        queue.push(timer.fires(first), c as u32);
    }

    let empty_op = if conditional {
        Op::NotModified
    } else {
        Op::EmptyPoll
    };
    let mut out = Outcome::owed(s, &log);
    let mut faults = Faults::new(s, mode);
    let mut admission = Admission::new(s);
    let mut idle = Idle::new(n);
    while let Some((at, entry)) = queue.pop() {
        if at > horizon {
            break;
        }
        let c = (entry & !ARRIVES) as usize;
        if entry & ARRIVES == 0 {
            // A paused client asks when its pause ends.
            let resumed = faults.resume(entry, at);
            if resumed > at {
                queue.push(resumed, entry);
                continue;
            }
            // The client sends; its request reaches the server one way later.
            out.actions += 1;
            if out.actions.is_multiple_of(PROGRESS_EVERY) {
                progress(at);
            }
            queue.push(at + faults.delay(entry, at) + wire.request(), entry | ARRIVES);
            continue;
        }
        idle.close_by(at, &mut |closed| admission.idled(closed));
        // A client turned away before opens a new connection.
        out.reconnects += u64::from(admission.was_refused(c));
        if admission.admit(c, at) == Admitted::Refused {
            let back = server.serve(at, Woken::ByRequest, &[(Op::Connection, 1.0)]) + wire.answer(0);
            let answered = faults.read(c as u32, back);
            out.client_errors += 1;
            let slot = &mut slots[c];
            queue.push(
                timer.fires(with_rng(c, &mut |rng| slot.next(p.interval, answered, rng))),
                c as u32,
            );
            continue;
        }
        // The server's cores price the answer by what it carries: an empty page (or a 304), or
        // a page and each event in it; and the connection, if the request opened one.
        let opens = f64::from(u8::from(idle.opens(c, at)));
        let mut answered = 0;
        let (taken, more) = log.hand_out(c, at, limit, &mut out, |taken| {
            let done = if taken == 0 {
                server.serve(
                    at,
                    Woken::ByRequest,
                    &[(empty_op, 1.0), (Op::Crowded, 1.0), (Op::Connection, opens)],
                )
            } else {
                server.serve(
                    at,
                    Woken::ByRequest,
                    &[
                        (Op::Page, 1.0),
                        (Op::PagedEvent, taken as f64),
                        (Op::Crowded, 1.0),
                        (Op::Connection, opens),
                    ],
                )
            };
            idle.answered(c, done);
            // The answer's way back, read when a pause lets the client read it.
            let back = done + wire.answer(taken);
            answered = faults.read(c as u32, back);
            answered
        });
        if (warmup..end).contains(&at) {
            out.requests += 1;
            out.empty += u64::from(taken == 0);
        }
        let next = if more {
            answered
        } else {
            let slot = &mut slots[c];
            timer.fires(with_rng(c, &mut |rng| slot.next(p.interval, answered, rng)))
        };
        queue.push(next, c as u32);
    }
    out.peak_connections = idle.peak;
    admission.count(&mut out);
    out
}

/// Marks a queue entry as a request reaching the server rather than a client sending one.
const ARRIVES: u32 = 1 << 31;

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::modes::poll::predict;
    use crate::simulate::quietly;
    use crate::simulate::testing::{close, close_counts, given};
    use crate::simulate::Network;

    fn scenario(schedule: &str, extra: &str) -> Scenario {
        let text = format!(
            "name = \"sim\"\nseed = 3\nduration = \"600s\"\nwarmup = \"10s\"\ndrain = \"5s\"\nmodes = [\"poll\"]\n\
             [events]\nrate = 20\ntopics = 10\narrival = \"poisson\"\n[clients]\ncount = 200\n\
             [poll]\ninterval = \"1s\"\njitter = 0.1\nschedule = \"{schedule}\"\n{extra}"
        );
        Scenario::parse(Path::new("sim.toml"), &text).unwrap()
    }

    const NET: Network = Network::of(Duration::from_millis(40));

    #[test]
    fn pollers_agree_with_the_theory_on_either_schedule() {
        for schedule in ["fixed", "after_answer"] {
            let s = scenario(schedule, "");
            let o = run(
                &s,
                false,
                &mut Wire::plain(&NET),
                &mut Server::instant(),
                &quietly,
            );
            assert_eq!(o.delivered, o.expected, "{schedule}: a 5 s drain is enough");
            let theory = predict(&s, &s.poll, false, &given(&o, 200, 600.0, 40.0));
            let close = |what: &str, model, theory, within| {
                close(&format!("{schedule} {what}"), model, theory, within)
            };
            close_counts(schedule, &o, &theory);
            close(
                "requests/s",
                o.requests as f64 / 600.0,
                theory.requests_per_second,
                0.01,
            );
            close(
                "mean latency",
                o.latency.mean() / 1000.0,
                theory.latency_mean_ms,
                0.02,
            );
            close(
                "median latency",
                o.latency.value_at_quantile(0.5) as f64 / 1000.0,
                theory.latency_p50_ms,
                0.03,
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_run_and_another_seed_another() {
        let s = scenario("fixed", "");
        assert_eq!(
            run(&s, true, &mut Wire::plain(&NET), &mut Server::instant(), &quietly),
            run(&s, true, &mut Wire::plain(&NET), &mut Server::instant(), &quietly)
        );
        let mut other = s.clone();
        other.seed = 4;
        assert_ne!(
            run(&s, true, &mut Wire::plain(&NET), &mut Server::instant(), &quietly).latency,
            run(
                &other,
                true,
                &mut Wire::plain(&NET),
                &mut Server::instant(),
                &quietly
            )
            .latency
        );
    }

    #[test]
    fn pollers_due_within_a_millisecond_send_together_and_wake_the_server_once_a_core() {
        // 5,000 pollers a second on fixed slots at random phases: the sleeps due within one
        // millisecond tick fire together, N ~ Poisson(5) of them, and reach two cores at one
        // instant. The first wakes a core, the second the other, the rest find both awake
        // (each answer takes 10 µs, done long before the next tick's batch). Wakes per tick
        // P(N ≥ 1) + P(N ≥ 2) = (1 − e⁻⁵) + (1 − e⁻⁵ − 5e⁻⁵) = 1.9528, over 5 requests:
        // 39.1% of requests wake the server, by hand. Sent at their slots instead, nearly
        // every one would find the cores idle.
        let s = Scenario::parse(
            Path::new("t.toml"),
            "name = \"t\"\nseed = 2\nduration = \"20s\"\nwarmup = \"2s\"\ndrain = \"2s\"\nmodes = [\"poll\"]\n\
             [events]\nrate = 10\n[clients]\ncount = 5000\n[poll]\ninterval = \"1s\"\n",
        )
        .unwrap();
        let mut c = crate::calibration::Calibration::reference();
        // Every idle core woken (no threshold), as the count by hand has it.
        c.falls_asleep_ns = 0;
        for cost in &mut c.cpu {
            cost.cpu_ns = match cost.op {
                Op::EmptyPoll | Op::Page => 10e3,
                Op::RequestWake => 1e3,
                _ => 0.0,
            };
        }
        let mut server = Server::new(&s, &c, 2);
        run(&s, false, &mut Wire::plain(&NET), &mut server, &quietly);
        let requests = server.counts.get(Op::EmptyPoll) + server.counts.get(Op::Page);
        let woke = server.counts.get(Op::RequestWake) / requests;
        assert!((requests / 20.0 / 5000.0 - 1.0).abs() < 0.01, "{requests}");
        close("share of requests that wake the server", woke, 1.9528 / 5.0, 0.03);
    }

    #[test]
    fn the_deliveries_in_the_window_are_those_that_arrived_in_it_whatever_their_event() {
        // 2,000 pollers every 10 s on fixed slots (no jitter), a phase φ ~ U[0, 10 s) each, and
        // 2 events a second at 0, 0.5, 1 s, … on the one topic all follow; a 2 s warm-up, a
        // 10 s window. By hand: each client polls once in the window [2, 12) s. With φ ≥ 2 that
        // poll is its first and brings the ⌊2φ⌋ + 1 events since the start (12.5 on average
        // over φ in [2, 10)); with φ < 2 it comes at φ + 10 and brings the 20 of the 10 s
        // before. So 0.8 × 12.5 + 0.2 × 20 = 14 a client in the window, 28,000 in all (give
        // or take 270, the phases' draw: about 6 a client), where the window's own 20 events
        // each owe 2,000 deliveries (40,000) by the end of the drain.
        let s = Scenario::parse(
            Path::new("t.toml"),
            "name = \"t\"\nseed = 5\nduration = \"10s\"\nwarmup = \"2s\"\ndrain = \"11s\"\nmodes = [\"poll\"]\n\
             [events]\nrate = 2\ntopics = 1\narrival = \"constant\"\n[clients]\ncount = 2000\n\
             [poll]\ninterval = \"10s\"\njitter = 0\n",
        )
        .unwrap();
        let o = run(
            &s,
            false,
            &mut Wire::plain(&NET),
            &mut Server::instant(),
            &quietly,
        );
        assert_eq!(
            o.delivered, 40_000,
            "every window event to every client, by the drain's end"
        );
        close("arrived in the window", o.in_window as f64, 28_000.0, 0.03);
    }

    #[test]
    fn a_full_page_is_asked_again_at_once() {
        // Bursts of 20 events in one topic, one event a page: every event costs a request,
        // and all of them still arrive.
        let mut s = scenario("after_answer", "limit = 1\n");
        s.events.arrival = crate::scenario::Arrival::Bursty;
        s.events.burst_size = 20;
        s.events.burst_gap = Duration::from_secs(2);
        s.events.topics = 1;
        let o = run(
            &s,
            false,
            &mut Wire::plain(&NET),
            &mut Server::instant(),
            &quietly,
        );
        assert_eq!(o.delivered, o.expected);
        assert!(
            o.requests >= o.delivered * 590 / 600,
            "{} requests for {} events",
            o.requests,
            o.delivered
        );
        // Each burst's last event waited for 19 pages before it, a round trip each.
        assert!(o.latency.max() >= 19 * 40_000, "{}", o.latency.max());
    }
}
