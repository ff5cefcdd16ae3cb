//! The server in the model: a number of cores serving each operation's CPU cost (from a
//! calibration) first come, first served, so that an answer waits for a free core and, past
//! the cores' capacity, the queue grows: saturation and its knee. The work that does not wait
//! on a request (a second of the process running, the clients it holds, each event
//! published) takes its share of the cores all the time, and stretches every other job by
//! `cores / (cores − that share)`.
//!
//! A job that finds its core idle for longer than the calibration's `wake_after_idle_ns`
//! also pays a wake-up ([`Op::Wake`]): the server had gone to sleep and woke for it. Under
//! load jobs find their cores busy or just freed and pay none, which is why an operation
//! costs less per unit at high load than at low. An event's jobs at one instant (a fan-out's
//! writes, the long polls it answers, the webhook attempts its workers take up) share the
//! wake-up of the core that woke for the first: it wakes another only once awake itself, and
//! that one takes its own wake-up before it can help, so a few followers are served in turn
//! on one core at one wake-up, and only a long fan-out wakes a second. Measured on an idle
//! server, each of 5 SSE followers of an event 10 times a second cost the CPU of a write, not
//! of a wake-up, and so did each of 2 and 4 webhook endpoints of an event 80 times a second.
//! Each of 20 SSE followers cost a write too, and 8 webhook endpoints less than the model's
//! second core charges (27.5 ms a second against 33.1), where the model wakes one: the
//! calibration runs of 20 and 100 followers at busier rates pay for it.
//!
//! Jobs must be handed over in the order they reach the server (each mode's model queues a
//! request's arrival as an action of its own for that reason); the operations of jobs inside
//! the measured window are counted, for the run's CPU.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::calibration::{Calibration, Counts, Op};
use crate::event::Mode;
use crate::scenario::Scenario;

/// What started a job, for the wake-up it pays when it finds its core idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// A request reached the server ([`Op::RequestWake`]).
    ByRequest,
    /// An event or a timer started the server's own work ([`Op::Wake`]); an event's jobs at
    /// one instant share a wake-up (its webhook attempts among them: the dispatcher's workers
    /// take them up in turn on the core the event woke).
    ByEvent,
    /// A connection's own timer fired in a parked worker's poll, as a request's readiness
    /// does ([`Op::RequestWake`]): a quiet stream's heartbeat. 3,000 quiet streams whose
    /// heartbeats come spread, each finding the server idle (`scenarios/probes/quiet-streams.toml`,
    /// 120 a second), cost it 110 to 115 µs a heartbeat: more than a write and a request's
    /// wake-up (about 75 µs on that day's calibration), far less than a write and an event's
    /// (about 200). The calibration's windows hold no heartbeat, so it cannot price one
    /// apart; priced as a request's, the probe's heartbeats come out at 0.53 to 0.67 of what
    /// it measured.
    ByTimer,
}

/// The model's server.
#[derive(Debug, Clone)]
pub struct Server {
    /// When each core is next free, ns.
    free: BinaryHeap<Reverse<u64>>,
    /// CPU per operation, ns, in the order of [`Op::ALL`].
    cost_ns: [f64; Op::ALL.len()],
    /// The clients' CPU that each operation brings on the same cores, ns, in the order of
    /// [`Op::ALL`]: zero unless the clients share the server's machine
    /// ([`Server::with_clients_beside`]). It holds the core but is not the server's CPU.
    client_ns: [f64; Op::ALL.len()],
    /// What the background's share of the cores makes of a job's time.
    stretch: f64,
    /// The background's share: cores kept busy whatever the requests.
    pub background_cores: f64,
    /// How long a core must have been idle for a job to pay a wake-up, ns.
    wake_after_idle_ns: u64,
    /// The measured window, ns.
    window: std::ops::Range<u64>,
    /// Operations served within the measured window.
    pub counts: Counts,
    /// The last arrival served, to check the order.
    last: u64,
    /// The instant of the last wake-up an event's job paid, and when the core it woke was
    /// awake: the same event's other jobs at that instant find that core awake.
    roused: Option<(u64, u64)>,
    /// The clients the scenario holds, for the handoff to each delivery's reader.
    clients: u32,
}

impl Server {
    /// `cores` cores at `calibration`'s costs, for `s`'s clients and events.
    pub fn new(s: &Scenario, calibration: &Calibration, cores: u32) -> Server {
        let mut cost_ns = [0.0; Op::ALL.len()];
        for (i, &op) in Op::ALL.iter().enumerate() {
            cost_ns[i] = calibration.cpu_ns(op);
        }
        let background_ns_per_s = cost_ns[Op::Second as usize]
            + f64::from(s.clients.count) * cost_ns[Op::ClientSecond as usize]
            + s.mean_event_rate() * cost_ns[Op::Event as usize];
        let background_cores = background_ns_per_s / 1e9;
        let cores = cores.max(1);
        let warmup = s.warmup.as_nanos() as u64;
        Server {
            free: (0..cores).map(|_| Reverse(0)).collect(),
            cost_ns,
            client_ns: [0.0; Op::ALL.len()],
            stretch: stretch(f64::from(cores), background_cores),
            background_cores,
            wake_after_idle_ns: calibration.wake_after_idle_ns,
            window: warmup..warmup + s.duration.as_nanos() as u64,
            counts: Counts::default(),
            last: 0,
            roused: None,
            clients: s.clients.count,
        }
    }

    /// A server that answers at once and costs nothing: for checking the clients' models
    /// against theory that has no server in it.
    pub fn instant() -> Server {
        Server {
            free: [Reverse(0)].into(),
            cost_ns: [0.0; Op::ALL.len()],
            client_ns: [0.0; Op::ALL.len()],
            stretch: 1.0,
            background_cores: 0.0,
            wake_after_idle_ns: 0,
            window: 0..0,
            counts: Counts::default(),
            last: 0,
            roused: None,
            clients: 0,
        }
    }

    /// The same server with `mode`'s clients on its machine, as `run` has them: each
    /// operation's job also holds its core for what the client spends on it (reading the
    /// answer or the event, recording it) and, for a delivery, for the handoff to its reader
    /// (the calibration's [`crate::calibration::Handoff`] for each client held); and the
    /// clients' own running takes its share of the cores beside the server's background.
    /// Nothing changes without a fit of the clients (`calibration.clients`, in files since it
    /// was fitted).
    pub fn with_clients_beside(mut self, calibration: &Calibration, mode: Mode) -> Server {
        let Some(c) = calibration.clients.iter().find(|c| c.mode == mode) else {
            return self;
        };
        let handoff = calibration.clients_handoff.ns_per_client * f64::from(self.clients);
        for (i, &op) in Op::ALL.iter().enumerate() {
            self.client_ns[i] = match op {
                Op::EmptyPoll | Op::NotModified | Op::Page | Op::LongPoll => c.request_ns + handoff,
                Op::Connection => c.request_ns,
                Op::PagedEvent => c.event_ns,
                Op::SseEvent | Op::WebsocketEvent => c.event_ns + handoff,
                Op::WebhookAttempt => c.request_ns + c.event_ns + handoff,
                _ => 0.0,
            };
        }
        self.stretch = stretch(self.free.len() as f64, self.background_cores + c.second_ns / 1e9);
        self
    }

    /// Serves a job of `ops` (operation, how many) that reaches the server at `at` ns,
    /// `woken` by a request or by the server's own work; returns when it is done.
    pub fn serve(&mut self, at: u64, woken: Woken, ops: &[(Op, f64)]) -> u64 {
        debug_assert!(
            at >= self.last,
            "jobs reach the server in order: {at} after {}",
            self.last
        );
        self.last = at;
        let mut work = 0.0;
        let counted = self.window.contains(&at);
        for &(op, n) in ops {
            work += n * (self.cost_ns[op as usize] + self.client_ns[op as usize]);
            if counted {
                self.counts.0[op as usize] += n;
            }
        }
        if work <= 0.0 {
            return at;
        }
        let asleep = self.free.peek().expect("at least one core").0 + self.wake_after_idle_ns < at;
        if asleep && woken == Woken::ByEvent {
            if let Some((_, awake)) = self.roused.filter(|&(instant, _)| instant == at) {
                return self.serve_roused(at, awake, work, counted);
            }
        }
        let stretch = self.stretch;
        let mut core = self.free.peek_mut().expect("at least one core");
        if asleep {
            // The core was idle long enough to have gone to sleep: the server wakes for
            // this job.
            let wake = match woken {
                Woken::ByRequest | Woken::ByTimer => Op::RequestWake,
                Woken::ByEvent => Op::Wake,
            };
            let wake_ns = self.cost_ns[wake as usize];
            work += wake_ns;
            if counted {
                self.counts.0[wake as usize] += 1.0;
            }
            if woken == Woken::ByEvent {
                self.roused = Some((at, at + (wake_ns * stretch).round() as u64));
            }
        }
        let start = at.max(core.0);
        let done = start + (work * stretch).round() as u64;
        core.0 = done;
        done
    }

    /// Serves `work` ns of a job of the event that woke a core at `at`, awake at `awake`,
    /// when every other core is asleep: the woken core wakes another only once it is awake
    /// itself, and that one takes its own wake-up before it starts. The job goes to the
    /// awake core that can start it first if it can start no later than that, else to the
    /// sleeping core, which pays the wake-up. So a few followers' writes follow one another
    /// on the core that woke, at one wake-up between them, and a long fan-out wakes a
    /// second core.
    fn serve_roused(&mut self, at: u64, awake: u64, work: f64, counted: bool) -> u64 {
        let wake_ns = self.cost_ns[Op::Wake as usize];
        let helper_starts = awake + (wake_ns * self.stretch).round() as u64;
        let threshold = self.wake_after_idle_ns;
        let mut cores = std::mem::take(&mut self.free).into_vec();
        let (i, free) = cores
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.0))
            .filter(|&(_, free)| free + threshold >= at)
            .min_by_key(|&(_, free)| free)
            .expect("the core woken at this instant is awake");
        let (i, done) = if free <= helper_starts {
            (i, free.max(at) + (work * self.stretch).round() as u64)
        } else {
            if counted {
                self.counts.0[Op::Wake as usize] += 1.0;
            }
            let (sleeping, _) = cores
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.0)
                .expect("at least one core");
            (sleeping, awake + ((work + wake_ns) * self.stretch).round() as u64)
        };
        cores[i] = Reverse(done);
        self.free = cores.into();
        done
    }
}

/// What a background of `background` cores makes of a job's time on `cores` cores. A
/// background past the cores leaves them a sliver: jobs then take very long, which is what
/// such a server does.
fn stretch(cores: f64, background: f64) -> f64 {
    cores / (cores - background).max(cores * 1e-3)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Exp};

    use super::*;

    fn server(cores: u32, cost_ns: f64) -> Server {
        let mut s = Server::instant();
        s.free = (0..cores).map(|_| Reverse(0)).collect();
        s.cost_ns[Op::EmptyPoll as usize] = cost_ns;
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
        srv.window = 0..u64::MAX;
        assert_eq!(srv.serve(1, Woken::ByRequest, &[(Op::EmptyPoll, 1.0)]), 1_500_001);
        assert_eq!(
            srv.serve(1_000_000, Woken::ByRequest, &[(Op::EmptyPoll, 1.0)]),
            2_500_001
        );
        assert_eq!(
            srv.serve(10_000_000, Woken::ByRequest, &[(Op::EmptyPoll, 1.0)]),
            11_500_000
        );
        assert_eq!(srv.counts.get(Op::RequestWake), 2.0);
        assert_eq!(srv.counts.get(Op::Wake), 0.0);
        assert_eq!(srv.counts.get(Op::EmptyPoll), 3.0);
    }

    #[test]
    fn a_core_idle_for_less_than_the_threshold_is_still_awake() {
        // One core, 1 ms jobs, wake-ups of 0.5 ms after an idle of more than 2 ms, by hand:
        // the first job (at 10 ms, after 10 ms idle) wakes and ends at 11.5 ms; one at 13 ms
        // (1.5 ms idle) does not, ends at 14 ms; one at 16.5 ms (2.5 ms idle) does.
        let mut srv = server(1, 1e6);
        srv.cost_ns[Op::Wake as usize] = 0.5e6;
        srv.wake_after_idle_ns = 2_000_000;
        srv.window = 0..u64::MAX;
        let job = |srv: &mut Server, at: u64| srv.serve(at, Woken::ByEvent, &[(Op::EmptyPoll, 1.0)]);
        assert_eq!(job(&mut srv, 10_000_000), 11_500_000);
        assert_eq!(job(&mut srv, 13_000_000), 14_000_000);
        assert_eq!(job(&mut srv, 16_500_000), 18_000_000);
        assert_eq!(srv.counts.get(Op::Wake), 2.0);
    }

    #[test]
    fn an_events_jobs_share_its_wake_up_until_a_long_fan_out_wakes_a_second_core() {
        // Two cores asleep (a wake-up after 1 ms idle, 100 µs), jobs of 10 µs, by hand. Three
        // jobs of one event at 10 ms: the first wakes a core, awake at 10.1 ms and done at
        // 10.11; a second core could start only after its own wake-up, at 10.2, so the other
        // two follow on the first: 10.12 and 10.13, one wake-up in all.
        let mut srv = server(2, 10e3);
        srv.cost_ns[Op::Wake as usize] = 100e3;
        srv.wake_after_idle_ns = 1_000_000;
        srv.window = 0..u64::MAX;
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
        assert_eq!(srv.counts.get(Op::RequestWake), 1.0);
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
}
