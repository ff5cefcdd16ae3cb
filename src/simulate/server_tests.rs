//! The model's server against queueing theory and its wake-ups by hand.

use rand::SeedableRng;
use rand_distr::{Distribution, Exp};

use super::*;

/// `cores` cores serving an empty poll at `cost_ns`, every job counted.
fn server(cores: u32, cost_ns: f64) -> Server {
    let mut s = Server::instant();
    s.free = (0..cores).map(|_| Reverse(0)).collect();
    s.cost_ns[Op::EmptyPoll as usize] = cost_ns;
    s.window = 0..u64::MAX;
    s
}

#[test]
fn one_core_queues_as_an_m_d_1_queue_and_two_as_m_d_2() {
    // Poisson arrivals at rate λ, each job 1 ms of one core. One core at ρ = 0.8: the
    // Pollaczek–Khinchine mean wait is ρD / 2(1 − ρ) = 2 ms. Two cores at the same
    // arrivals (ρ = 0.4 each) wait far less: below the M/M/2 wait, 0.19 ms
    // (Erlang C: P(wait) = 2ρ²/(1 + ρ) = 0.229, × D/(2(1 − ρ)) = 0.19 ms), since
    // deterministic service waits less than exponential.
    let mean_wait = |cores: u32| {
        let mut srv = server(cores, 1e6);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let gap = Exp::new(800.0).unwrap();
        let (mut at, mut waited, n) = (0.0, 0.0, 200_000);
        for _ in 0..n {
            at += gap.sample(&mut rng);
            let t = (at * 1e9) as u64;
            let done = srv.serve(t, Woken::ByRequest, &[(Op::EmptyPoll, 1.0)]);
            waited += (done - t) as f64 - 1e6;
        }
        waited / f64::from(n) / 1e6
    };
    let one = mean_wait(1);
    assert!((one / 2.0 - 1.0).abs() < 0.05, "M/D/1 mean wait {one} ms");
    let two = mean_wait(2);
    assert!(two > 0.05 && two < 0.19, "M/D/2 mean wait {two} ms");
}

#[test]
fn a_job_that_finds_its_core_idle_pays_a_wake_up_and_one_that_queues_does_not() {
    // One core, 1 ms jobs, a wake-up of 0.5 ms, by hand: a job at 1 ns finds the core
    // idle (1.5 ms); one at 1 ms finds it busy until 1.5 ms and queues (1 ms); one at
    // 10 ms finds it idle again (1.5 ms).
    let mut srv = server(1, 1e6);
    srv.cost_ns[Op::RequestWake as usize] = 0.5e6;
    assert_eq!(srv.serve(1, Woken::ByRequest, &[(Op::EmptyPoll, 1.0)]), 1_500_001);
    assert_eq!(
        srv.serve(1_000_000, Woken::ByRequest, &[(Op::EmptyPoll, 1.0)]),
        2_500_001
    );
    assert_eq!(
        srv.serve(10_000_000, Woken::ByRequest, &[(Op::EmptyPoll, 1.0)]),
        11_500_000
    );
    assert_wakes(&srv, Op::RequestWake, 2.0);
    assert_eq!(srv.counts.get(Op::Wake), 0.0);
    assert_eq!(srv.counts.get(Op::EmptyPoll), 3.0);
}

#[test]
fn a_job_pays_the_share_of_a_wake_up_that_its_idle_core_had_fallen_asleep_by() {
    // A core idle falls asleep 2 ms after it went idle on average, at an exponential time:
    // by a seeded Monte-Carlo of that time, the share asleep after an idle of 1 ms is
    // 1 − e^(−1/2) = 0.393, after 4 ms 1 − e^(−2) = 0.865.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let onset = Exp::new(1.0 / 2.0).unwrap();
    let draws: Vec<f64> = (0..200_000).map(|_| onset.sample(&mut rng)).collect();
    for (idle_ms, by_hand) in [(1.0, 0.393), (4.0, 0.865), (0.1, 0.0488), (20.0, 1.0)] {
        let monte_carlo = draws.iter().filter(|&&t| t < idle_ms).count() as f64 / draws.len() as f64;
        let modelled = crate::calibration::asleep((idle_ms * 1e6) as u64, 2_000_000);
        assert!(
            (monte_carlo - modelled).abs() < 0.005,
            "{idle_ms} ms: {monte_carlo} {modelled}"
        );
        assert!(
            (by_hand - modelled).abs() < 0.001,
            "{idle_ms} ms: {by_hand} {modelled}"
        );
    }
    assert_eq!(
        crate::calibration::asleep(0, 2_000_000),
        0.0,
        "no idle, no wake-up"
    );
    assert_eq!(crate::calibration::asleep(1, 0), 1.0, "every idle core asleep");
    // One core, 1 ms jobs, a wake-up of 0.5 ms, by hand: the first job (at 40 ms, after
    // 40 ms idle) pays all but e^(−20) of a wake-up, ending at 41.5 ms; one at 41.7 ms
    // (0.2 ms idle) pays 0.5 ms × (1 − e^(−0.1)) = 47.6 µs, ending at 42.7476 ms; one at
    // 42.5 ms finds the core busy and pays none (43.7476 ms).
    let mut srv = server(1, 1e6);
    srv.cost_ns[Op::Wake as usize] = 0.5e6;
    srv.falls_asleep_ns = 2_000_000;
    let job = |srv: &mut Server, at: u64| srv.serve(at, Woken::ByEvent, &[(Op::EmptyPoll, 1.0)]);
    assert_eq!(job(&mut srv, 40_000_000), 41_500_000);
    assert_eq!(job(&mut srv, 41_700_000), 42_747_581);
    assert_eq!(job(&mut srv, 42_500_000), 43_747_581);
    let wakes = srv.counts.get(Op::Wake);
    assert!((wakes - (1.0 + 0.095_163)).abs() < 1e-6, "{wakes}");
}

#[test]
fn an_events_jobs_share_its_wake_up_until_a_long_fan_out_wakes_a_second_core() {
    // Two cores asleep (asleep 1 µs after going idle on average, so every idle of a
    // millisecond or more pays a whole wake-up of 100 µs), jobs of 10 µs, by hand. Three
    // jobs of one event at 10 ms: the first wakes a core, awake at 10.1 ms and done at
    // 10.11; a second core could start only after its own wake-up, at 10.2, so the other
    // two follow on the first: 10.12 and 10.13, one wake-up in all.
    let mut srv = server(2, 10e3);
    srv.cost_ns[Op::Wake as usize] = 100e3;
    srv.falls_asleep_ns = 1_000;
    let fan_out = |srv: &mut Server, at: u64, n: usize| -> Vec<u64> {
        (0..n)
            .map(|_| srv.serve(at, Woken::ByEvent, &[(Op::EmptyPoll, 1.0)]))
            .collect()
    };
    assert_eq!(
        fan_out(&mut srv, 10_000_000, 3),
        [10_110_000, 10_120_000, 10_130_000]
    );
    assert_eq!(srv.counts.get(Op::Wake), 1.0);
    // Twenty at 20 ms: the first core takes jobs 1 to 11 (the 11th starts at 20.2 ms,
    // when the second could); the 12th goes to the second core, which wakes (done at
    // 20.21); the other eight share both cores, two at a time: the last done at 20.25.
    let done = fan_out(&mut srv, 20_000_000, 20);
    assert_eq!(done[10], 20_210_000);
    assert_eq!(done[11], 20_210_000);
    assert_eq!(done.iter().max(), Some(&20_250_000));
    assert_eq!(srv.counts.get(Op::Wake), 3.0);
    // A request at the same instant as an event's wake-up is not the event's: it pays
    // its own.
    srv.cost_ns[Op::RequestWake as usize] = 50e3;
    fan_out(&mut srv, 30_000_000, 1);
    srv.serve(30_000_000, Woken::ByRequest, &[(Op::EmptyPoll, 1.0)]);
    assert_wakes(&srv, Op::RequestWake, 1.0);
}

#[test]
fn clients_beside_the_server_hold_its_cores_for_their_part_and_their_handoff_and_cost_it_nothing() {
    // One core; an event written to SSE costs the server 1 ms and its reader 0.5 ms, by
    // hand: two writes at 0 end at 1.5 and 3 ms with the readers beside (1 and 2 ms
    // without), and the server's counts are the two writes alone.
    let s = Scenario::parse(
        std::path::Path::new("b.toml"),
        "name = \"b\"\nduration = \"10s\"\nwarmup = \"0s\"\n[events]\nrate = 1\n[clients]\ncount = 2\n",
    )
    .unwrap();
    let mut c = Calibration::reference();
    for cost in &mut c.cpu {
        cost.cpu_ns = if cost.op == Op::SseEvent { 1e6 } else { 0.0 };
    }
    c.clients = vec![crate::calibration::ClientCpu {
        mode: Mode::Sse,
        second_ns: 0.0,
        request_ns: 0.0,
        event_ns: 0.5e6,
    }];
    c.clients_handoff = crate::calibration::Handoff::default();
    let write = |srv: &mut Server| srv.serve(0, Woken::ByEvent, &[(Op::SseEvent, 1.0)]);
    let mut alone = Server::new(&s, &c, 1);
    assert_eq!((write(&mut alone), write(&mut alone)), (1_000_000, 2_000_000));
    let mut beside = Server::new(&s, &c, 1).with_clients_beside(&c, Mode::Sse);
    assert_eq!((write(&mut beside), write(&mut beside)), (1_500_000, 3_000_000));
    assert_eq!(beside.counts.get(Op::SseEvent), 2.0);
    // A handoff of 0.25 ms for each of the 2 clients held: each write holds its core
    // 0.5 ms more, 2 and 4 ms; the server's counts are still its own.
    c.clients_handoff.ns_per_client = 0.25e6;
    let mut handed = Server::new(&s, &c, 1).with_clients_beside(&c, Mode::Sse);
    assert_eq!((write(&mut handed), write(&mut handed)), (2_000_000, 4_000_000));
    assert_eq!(handed.counts.get(Op::SseEvent), 2.0);
    c.clients_handoff.ns_per_client = 0.0;
    // A driver busy half of every second leaves half the core: each job takes twice as long.
    c.clients[0].second_ns = 0.5e9;
    let mut busy = Server::new(&s, &c, 1).with_clients_beside(&c, Mode::Sse);
    assert_eq!(write(&mut busy), 3_000_000);
}

#[test]
fn the_background_stretches_every_job_and_operations_in_the_window_are_counted() {
    let s = Scenario::parse(
        std::path::Path::new("b.toml"),
        "name = \"b\"\nduration = \"10s\"\nwarmup = \"1s\"\n[events]\nrate = 100\n[clients]\ncount = 1000\n",
    )
    .unwrap();
    let mut c = Calibration::reference();
    for cost in &mut c.cpu {
        cost.cpu_ns = match cost.op {
            Op::Second => 100e6,
            Op::ClientSecond => 400e3,
            Op::Event => 1e6,
            Op::EmptyPoll => 1e6,
            _ => 0.0,
        };
    }
    // 0.1 + 1000 × 0.0004 + 100 × 0.001 = 0.6 of a core in the background, of 2 cores:
    // every job takes 2 / 1.4 of its own time.
    let mut srv = Server::new(&s, &c, 2);
    assert!((srv.background_cores - 0.6).abs() < 1e-9);
    assert_eq!(srv.serve(0, Woken::ByRequest, &[(Op::EmptyPoll, 1.0)]), 1_428_571);
    assert_eq!(
        srv.serve(2_000_000_000, Woken::ByRequest, &[(Op::EmptyPoll, 3.0)]),
        2_004_285_714
    );
    assert_eq!(
        srv.counts.get(Op::EmptyPoll),
        3.0,
        "only the job inside the window counts"
    );
}

/// One core, 1 ms jobs, a request's wake-up of 0.5 ms, a core that as good as never falls
/// asleep (after some 600 years on average: a job after an idle of milliseconds pays
/// 10⁻¹³ of a wake-up), and replies awaited up to `reply_within_ns` as the calibration's
/// runs awaited them.
fn awaiting_replies(reply_within_ns: u64) -> Server {
    let mut srv = server(1, 1e6);
    srv.cost_ns[Op::RequestWake as usize] = 0.5e6;
    srv.falls_asleep_ns = u64::MAX;
    srv.reply_within_ns = reply_within_ns;
    srv
}

/// That `srv` counted `n` of `wake`, give or take the shares of one that idles of a
/// moment pay.
fn assert_wakes(srv: &Server, wake: Op, n: f64) {
    let counted = srv.counts.get(wake);
    assert!((counted - n).abs() < 1e-9, "{counted} {wake:?}, not {n}");
}

/// A 1 ms job (an empty poll) reaching `srv` at `at`; when it is done.
fn job(srv: &mut Server, at: u64) -> u64 {
    srv.serve(at, Woken::ByRequest, &[(Op::EmptyPoll, 1.0)])
}

#[test]
fn a_reply_wakes_the_worker_that_wrote_when_no_other_job_comes_between() {
    // One core, 1 ms jobs, a request's wake-up of 0.5 ms, no core idle long enough to sleep.
    // By hand: a job at 0 is done at 1 ms; its reply at 1.2 ms, with no job between, wakes
    // the core until 1.7 ms, so a job at 1.5 ms waits for it and is done at 2.7 ms.
    let fresh = || awaiting_replies(u64::MAX);
    let mut srv = fresh();
    assert_eq!(job(&mut srv, 0), 1_000_000);
    srv.replied(0, 1_000_000, 1_200_000);
    assert_eq!(job(&mut srv, 1_500_000), 2_700_000);
    assert_wakes(&srv, Op::RequestWake, 1.0);
    // Another job before the reply (at 1.1 ms, done at 2.1): the worker is busy, the reply
    // wakes nothing.
    let mut srv = fresh();
    job(&mut srv, 0);
    srv.replied(0, 1_000_000, 1_200_000);
    assert_eq!(job(&mut srv, 1_100_000), 2_100_000);
    assert_eq!(job(&mut srv, 5_000_000), 6_000_000);
    assert_wakes(&srv, Op::RequestWake, 0.0);
    // A reply to a job other than the last served, or one that comes while the core is
    // still at work, wakes nothing either.
    let mut srv = fresh();
    job(&mut srv, 0);
    job(&mut srv, 100_000);
    srv.replied(0, 1_000_000, 2_500_000);
    srv.replied(100_000, 2_000_000, 1_500_000);
    assert_eq!(job(&mut srv, 5_000_000), 6_000_000);
    assert_wakes(&srv, Op::RequestWake, 0.0);
}

#[test]
fn a_reply_later_than_the_calibrations_runs_waited_is_charged_as_though_it_came_then() {
    // One core, 1 ms jobs, a request's wake-up of 0.5 ms, runs that waited at most 0.3 ms for
    // a reply. By hand: a job at 0 is done at 1 ms; its reply comes 40 ms later, charged as
    // though at 1.3 ms: with no job between, it holds the core until 1.8 ms, so a job at
    // 1.5 ms (long before the reply itself) waits for it and is done at 2.8 ms.
    let fresh = || awaiting_replies(300_000);
    let mut srv = fresh();
    job(&mut srv, 0);
    srv.replied(0, 1_000_000, 41_000_000);
    assert_eq!(job(&mut srv, 1_500_000), 2_800_000);
    assert_wakes(&srv, Op::RequestWake, 1.0);
    // A job within the 0.3 ms (at 1.2 ms) keeps the worker busy: the reply wakes nothing,
    // though it comes when the core has long been idle.
    let mut srv = fresh();
    job(&mut srv, 0);
    srv.replied(0, 1_000_000, 41_000_000);
    assert_eq!(job(&mut srv, 1_200_000), 2_200_000);
    assert_eq!(job(&mut srv, 50_000_000), 51_000_000);
    assert_wakes(&srv, Op::RequestWake, 0.0);
    // A reply within the runs' longest wait is charged when it comes, as before.
    let mut srv = fresh();
    job(&mut srv, 0);
    srv.replied(0, 1_000_000, 1_200_000);
    assert_eq!(job(&mut srv, 1_500_000), 2_700_000);
}

#[test]
fn replies_from_afar_each_wake_an_idle_core_at_their_own_time_when_the_calibration_prices_them() {
    // One core, 1 ms jobs, a request's wake-up of 0.5 ms, a core idle asleep after 0.2 ms on
    // average (after an idle of milliseconds, all but e^(−20) of a wake-up), a reply's from afar
    // of 0.2 ms. By hand: a fan-out of two jobs at 0 is done at 1 and 2 ms; its replies come
    // back 40 and 43 ms after, at 41 and 45 ms (told in the order the writes were); a job at
    // 10 ms finds the core idle 8 ms and pays a request's wake-up (done at 11.5 ms). Priced,
    // each reply finds the core idle and wakes it, until 41.2 and 45.2 ms; a job at 45.2 ms
    // then finds it awake and is done at 46.2 ms.
    let fresh = |priced: bool| {
        let mut srv = server(1, 1e6);
        srv.cost_ns[Op::RequestWake as usize] = 0.5e6;
        srv.cost_ns[Op::ReplyWake as usize] = 0.2e6;
        srv.falls_asleep_ns = 200_000;
        srv.prices_afar = priced;
        srv
    };
    let mut srv = fresh(true);
    assert_eq!(job(&mut srv, 0), 1_000_000);
    assert_eq!(job(&mut srv, 0), 2_000_000);
    srv.replied(0, 1_000_000, 41_000_000);
    srv.replied(0, 2_000_000, 45_000_000);
    assert_eq!(job(&mut srv, 10_000_000), 11_500_000);
    assert_eq!(job(&mut srv, 45_200_000), 46_200_000);
    assert_eq!(srv.counts.get(Op::ReplyWake), 2.0);
    assert_wakes(&srv, Op::RequestWake, 1.0);
    // Unpriced, the last write's reply is awaited as before and the job at 10 ms comes first:
    // no reply wakes the core, and the job at 45.2 ms finds it asleep (done at 46.7 ms).
    let mut srv = fresh(false);
    job(&mut srv, 0);
    job(&mut srv, 0);
    srv.replied(0, 1_000_000, 41_000_000);
    srv.replied(0, 2_000_000, 45_000_000);
    assert_eq!(job(&mut srv, 10_000_000), 11_500_000);
    assert_eq!(job(&mut srv, 45_200_000), 46_700_000);
    assert_eq!(srv.counts.get(Op::ReplyWake), 0.0);
    assert_wakes(&srv, Op::RequestWake, 2.0);
}

#[test]
fn the_seconds_a_burst_keeps_every_core_busy_are_found_with_its_longest_wait() {
    // One core, 1 ms jobs, a window from 1 s to 5 s. A job every 20 ms throughout (5% busy)
    // and, from 2 s to 2.5 s, one every 0.5 ms besides: by hand the burst's thousand jobs
    // hold the core through 2 s to about 3.02 s (its own second of work, and the sparse
    // jobs' among it and after it), so second 2 is busy throughout and second 3 for about
    // 5% beyond its own sparse jobs. The longest wait is the first sparse job after the
    // burst (at 2.5 s): behind the burst's thousand and the 25 sparse jobs from 2.0 to
    // 2.48 s, it starts at 3.025 s, 0.525 s after it came (the burst's last, at 2.4995 s,
    // waits a job less and came 0.5 ms later: 0.5245 s).
    let mut srv = server(1, 1e6);
    srv.window = 1_000_000_000..5_000_000_000;
    let mut arrivals: Vec<u64> = (0..300).map(|k| k * 20_000_000).collect();
    arrivals.extend((0..1000).map(|k| 2_000_000_000 + k * 500_000 + 1));
    arrivals.sort_unstable();
    for at in arrivals {
        srv.serve(at, Woken::ByRequest, &[(Op::EmptyPoll, 1.0)]);
    }
    assert_eq!(srv.busy_spans(0.95), vec![2..3]);
    assert_eq!(srv.busy_spans(0.01), vec![1..5]);
    let (wait, at) = srv.longest_wait;
    assert_eq!((wait, at), (525_000_000, 2_500_000_000));
}
