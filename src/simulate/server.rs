//! The server in the model: a number of cores serving each operation's CPU cost (from a
//! calibration) first come, first served, so that an answer waits for a free core and, past
//! the cores' capacity, the queue grows: saturation and its knee. The work that does not wait
//! on a request (a second of the process running, the clients it holds, each event
//! published) takes its share of the cores all the time, and stretches every other job by
//! `cores / (cores − that share)`.
//!
//! A job that finds its core idle also pays the share of a wake-up ([`Op::Wake`]) that the
//! core had fallen asleep by then ([`crate::calibration::asleep`]): a core idle falls asleep
//! at a moment the calibration's `falls_asleep_ns` after it went idle on average, so a job
//! after a long idle pays nearly a whole wake-up and one after a moment's little. Under load
//! jobs find their cores busy or just freed and pay little or none, which is why an operation
//! costs less per unit at high load than at low. (A threshold instead, a whole wake-up past
//! an idle of some length and none before, fitted the reference runs less well, 13.6% rms of
//! their CPU against 13.4%, and the validation pages' CPU per 1k came out within 0.150 of the
//! measured in rms of the log ratio against 0.137, each page on its own day's calibration
//! fitted either way.) An event's jobs at one instant (a fan-out's
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
//! A reply wakes the worker that waits for it: a long poll's next request after its answer,
//! a webhook receiver's answer to an attempt. When no other job reaches the server between
//! the write and its reply, the worker parks meanwhile and the reply pays a request's
//! wake-up, however short the round trip; a reply later than the calibration's runs ever
//! waited counts as though it came at the longest of their waits, however long the round
//! trip ([`Server::replied`]). Without it the calibration's sparse point (1,000
//! long pollers and webhook endpoints, each on a topic of its own, 20 events a second) fit
//! at 0.71 and 0.81 of their measured CPU where its streams, which wait for no reply, fit at
//! 0.99 and 1.03; with it, 0.82 and 0.93 (the EPYC's runs of 2026-12-06T1841Z).
//!
//! A reply from afar, one that comes back later after its write than a core idle takes to fall
//! asleep on average (over
//! a real network's round trip), is another matter when the calibration prices it (its runs
//! over a round trip, [`ROUND_TRIP_SCENARIO`](crate::calibration::ROUND_TRIP_SCENARIO)): each
//! reaches the server at its own time and, if it finds a core idle then, wakes it at a price
//! of its own ([`Op::ReplyWake`]), whatever other jobs came between. Over a round trip with
//! jitter each of a fan-out's replies comes back alone, to a worker that has parked meanwhile:
//! `payments-outage`'s webhook sender (ten receivers an event) switched 1.31 times an attempt
//! with its receivers 40 ms away against 0.79 on loopback, and cost 35% more a delivery
//! (53.4 against 39.6 ms per 1,000, `scenarios/probes/payments-webhook-{none,latency}.toml`,
//! 2026-12-07 07:14), where the rule for a reply on loopback, about one wake-up a fan-out,
//! gave it 1% less on the calibration of three hours before. Charged so, on the shipped
//! calibration, 27% more (54.8 against 43.1).
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
    /// wake-up (about 82 µs on that day's calibration), far less than a write and an event's
    /// (about 190). The calibration's windows hold no heartbeat, so it cannot price one
    /// apart; priced as a request's, the probe's heartbeats come out at 0.69 to 0.73 of what
    /// it measured, on that day's calibration.
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
    /// How long a core idle takes to fall asleep on average, ns.
    falls_asleep_ns: u64,
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
    /// The share of [`Op::Crowded`]'s cost a request or a push pays among those clients
    /// ([`crate::calibration::crowding`]): a job's count of it is its requests and pushes, charged and
    /// counted at this share.
    crowding: f64,
    /// When the last job served is done.
    last_done: u64,
    /// A reply to the last job: when it reaches the server, and when that job was done;
    /// kept until the next job shows whether it came before the reply ([`Server::replied`]).
    awaiting: Option<(u64, u64)>,
    /// The longest wait for a reply the calibration's runs had, ns: a reply awaited longer
    /// is charged as though it had come then, unless the calibration prices a reply from
    /// afar.
    reply_within_ns: u64,
    /// Whether the calibration prices a reply from afar ([`Op::ReplyWake`]).
    prices_afar: bool,
    /// The replies from afar on their way, by when they reach the server.
    afar: BinaryHeap<Reverse<u64>>,
    /// The replies from afar within the measured window that the calibration had no price
    /// for, charged as the loopback runs' longest wait.
    pub unpriced_from_afar: u64,
    /// The cores' time each second since the schedule started took (jobs and wake-ups, by
    /// the second each starts in), ns.
    busy_ns: Vec<f64>,
    /// The longest a job within the measured window waited for a free core, ns, and when it
    /// reached the server.
    pub longest_wait: (u64, u64),
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
            falls_asleep_ns: calibration.falls_asleep_ns,
            window: warmup..warmup + s.duration.as_nanos() as u64,
            counts: Counts::default(),
            last: 0,
            roused: None,
            clients: s.clients.count,
            crowding: crate::calibration::crowding(f64::from(s.clients.count), calibration.crowded_at),
            last_done: 0,
            awaiting: None,
            reply_within_ns: calibration.longest_round_trip_ns.unwrap_or(u64::MAX),
            prices_afar: calibration.prices_replies_from_afar,
            afar: BinaryHeap::new(),
            unpriced_from_afar: 0,
            busy_ns: Vec::new(),
            longest_wait: (0, 0),
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
            falls_asleep_ns: 0,
            window: 0..0,
            counts: Counts::default(),
            last: 0,
            roused: None,
            clients: 0,
            crowding: 0.0,
            last_done: 0,
            awaiting: None,
            reply_within_ns: u64::MAX,
            prices_afar: false,
            afar: BinaryHeap::new(),
            unpriced_from_afar: 0,
            busy_ns: Vec::new(),
            longest_wait: (0, 0),
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
        // The replies before this job, in the order they come: the last job's, if no other
        // came first, and those from afar.
        loop {
            let near = self.awaiting.map(|(reply, _)| reply).filter(|&r| r <= at);
            let far = self.afar.peek().map(|r| r.0).filter(|&r| r <= at);
            let from_afar = match (near, far) {
                (None, None) => break,
                (Some(n), Some(f)) => f < n,
                (near, _) => near.is_none(),
            };
            if from_afar {
                let reply = self.afar.pop().expect("a reply from afar").0;
                self.wake_for_reply(reply, 0, Op::ReplyWake);
            } else {
                let (reply, written) = self.awaiting.take().expect("a reply awaited");
                self.wake_for_reply(reply, written, Op::RequestWake);
            }
        }
        self.awaiting = None;
        self.last = at;
        let done = self.serve_job(at, woken, ops);
        self.last_done = done;
        done
    }

    /// The answer to the job that reached the server at `write_at` (a long poll's answer, a
    /// webhook attempt) brings its reply back at `at` (the client's next request, the
    /// receiver's answer). If no other job reaches the server first, the worker that wrote
    /// has nothing to do meanwhile and parks, and the reply wakes it: a request's wake-up
    /// ([`Op::RequestWake`]), however short the wait, charged when the next job shows that
    /// none came between. (A reply still awaited when the run ends is past its window.)
    ///
    /// A reply from afar (later than a core idle takes to fall asleep on average after the
    /// write was done, at
    /// `written`) comes at its own time, and wakes a core it finds idle then, if the
    /// calibration prices one ([`Op::ReplyWake`]). If it does not, a reply later than the
    /// calibration's runs ever waited (a round trip of tens of milliseconds, where theirs were
    /// on loopback) is charged as though it had come at the longest of theirs. Whether the
    /// worker parks and what waking it costs were fitted over those runs' round trips; beyond
    /// them the model would charge fewer wake-ups the longer the way (other jobs come
    /// between), where the sender measured no cheaper: `payments-outage`'s webhook sender cost
    /// 48.5 and 43.0 ms of CPU per 1,000 deliveries with its receivers on loopback, 49.4 and
    /// 57.0 with them 40 ms away (`scenarios/probes/payments-webhook-{none,latency}.toml`, two
    /// runs each, 2026-12-07 at 00:55 and at 03:33 on one machine), its voluntary context
    /// switches 1.31 and 1.30 an attempt against 0.78.
    pub fn replied(&mut self, write_at: u64, written: u64, at: u64) {
        if at.saturating_sub(written) > self.falls_asleep_ns {
            if self.prices_afar {
                self.afar.push(Reverse(at));
                return;
            }
            self.unpriced_from_afar += u64::from(self.window.contains(&at));
        }
        self.await_reply(write_at, at);
    }

    /// Awaits the reply at `at` to the job that reached the server at `write_at`, if it was
    /// the last served, as [`Server::replied`] charges one on loopback.
    fn await_reply(&mut self, write_at: u64, at: u64) {
        if self.last == write_at {
            let at = at.min(self.last_done.saturating_add(self.reply_within_ns));
            self.awaiting = Some((at, self.last_done));
        }
    }

    /// The reply to the job that reached the server at `write_at` will come no sooner than
    /// `earliest` (a long poll's answer read then, its client to ask again only after its way
    /// back): if that is already later than the calibration's runs waited, the reply is
    /// charged now as though it came at the longest of theirs ([`Server::replied`]), since
    /// other jobs may reach the server before it is known when it does; unless it comes from
    /// afar and the calibration prices that, when [`Server::replied`] is told of it as it
    /// comes.
    pub fn replies_no_sooner_than(&mut self, write_at: u64, earliest: u64) {
        let far = self.prices_afar && earliest.saturating_sub(self.last_done) > self.falls_asleep_ns;
        if !far && earliest >= self.last_done.saturating_add(self.reply_within_ns) {
            self.await_reply(write_at, earliest);
        }
    }

    /// Charges `wake` for a reply at `reply` on a core idle when it comes: one on loopback to
    /// the job done at `written`, the last the server served, or one from afar (`written` 0).
    fn wake_for_reply(&mut self, reply: u64, written: u64, wake: Op) {
        let stretch = self.stretch;
        let wake_ns = self.cost_ns[wake as usize];
        let mut core = self.free.peek_mut().expect("at least one core");
        if reply < written || core.0 > reply {
            return;
        }
        let took = (wake_ns * stretch).round() as u64;
        core.0 = reply + took;
        drop(core);
        self.took(reply, took);
        if self.window.contains(&reply) {
            self.counts.0[wake as usize] += 1.0;
        }
    }

    /// Serves a job (see [`Server::serve`]) once the reply awaited before it is settled.
    fn serve_job(&mut self, at: u64, woken: Woken, ops: &[(Op, f64)]) -> u64 {
        let mut work = 0.0;
        let counted = self.window.contains(&at);
        for &(op, n) in ops {
            let n = if op == Op::Crowded { n * self.crowding } else { n };
            work += n * (self.cost_ns[op as usize] + self.client_ns[op as usize]);
            if counted {
                self.counts.0[op as usize] += n;
            }
        }
        if work <= 0.0 {
            return at;
        }
        let idle = at.saturating_sub(self.free.peek().expect("at least one core").0);
        let asleep = crate::calibration::asleep(idle, self.falls_asleep_ns);
        if asleep > 0.0 && woken == Woken::ByEvent {
            if let Some((_, awake)) = self.roused.filter(|&(instant, _)| instant == at) {
                return self.serve_roused(at, awake, work, counted);
            }
        }
        let stretch = self.stretch;
        let mut core = self.free.peek_mut().expect("at least one core");
        if asleep > 0.0 {
            // The core was idle and may have gone to sleep: the server pays to wake for this
            // job as likely as it had.
            let wake = match woken {
                Woken::ByRequest | Woken::ByTimer => Op::RequestWake,
                Woken::ByEvent => Op::Wake,
            };
            let wake_ns = self.cost_ns[wake as usize] * asleep;
            work += wake_ns;
            if counted {
                self.counts.0[wake as usize] += asleep;
            }
            if woken == Woken::ByEvent {
                self.roused = Some((at, at + (wake_ns * stretch).round() as u64));
            }
        }
        let start = at.max(core.0);
        let done = start + (work * stretch).round() as u64;
        core.0 = done;
        drop(core);
        self.took(start, done - start);
        if counted && start - at > self.longest_wait.0 {
            self.longest_wait = (start - at, at);
        }
        done
    }

    /// A core's time from `start` for `ns`, counted in the second it starts in.
    fn took(&mut self, start: u64, ns: u64) {
        let second = (start / 1_000_000_000) as usize;
        if self.busy_ns.len() <= second {
            self.busy_ns.resize(second + 1, 0.0);
        }
        self.busy_ns[second] += ns as f64;
    }

    /// The whole seconds since the schedule started, within the measured window, in which
    /// the jobs took at least `share` of the cores' time (with the background's part), as
    /// spans of consecutive seconds: where the server could not keep up, though the window
    /// as a whole may have needed fewer cores than it had.
    pub fn busy_spans(&self, share: f64) -> Vec<std::ops::Range<u64>> {
        let capacity = self.free.len() as f64 * 1e9;
        let first = self.window.start.div_ceil(1_000_000_000);
        let last = self.window.end / 1_000_000_000;
        super::waits::spans(
            (first..last).filter(|&second| {
                self.busy_ns.get(second as usize).copied().unwrap_or(0.0) >= share * capacity
            }),
        )
    }

    /// Serves `work` ns of a job of the event that woke a core at `at`, awake at `awake`,
    /// when another core is idle: the woken core wakes another only once it is awake itself,
    /// and that one takes its own wake-up (the share of one that it had fallen asleep by
    /// then) before it starts. The job goes to the core at work that can start it first if
    /// it can start no later than that, else to the idle core, which pays the wake-up. So a
    /// few followers' writes follow one another on the core that woke, at one wake-up between
    /// them, and a long fan-out wakes a second core.
    fn serve_roused(&mut self, at: u64, awake: u64, work: f64, counted: bool) -> u64 {
        let mut cores = std::mem::take(&mut self.free).into_vec();
        let (busy, free) = cores
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.0))
            .filter(|&(_, free)| free >= at)
            .min_by_key(|&(_, free)| free)
            .expect("the core woken at this instant is at work");
        let (idle, idle_since) = cores
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.0))
            .min_by_key(|&(_, free)| free)
            .expect("at least one core");
        let asleep = crate::calibration::asleep(awake.saturating_sub(idle_since), self.falls_asleep_ns);
        let wake_ns = self.cost_ns[Op::Wake as usize] * asleep;
        let helper_starts = awake + (wake_ns * self.stretch).round() as u64;
        let (i, done) = if free <= helper_starts {
            let start = free.max(at);
            let done = start + (work * self.stretch).round() as u64;
            self.took(start, done - start);
            (busy, done)
        } else {
            if counted {
                self.counts.0[Op::Wake as usize] += asleep;
            }
            let took = ((work + wake_ns) * self.stretch).round() as u64;
            self.took(awake, took);
            (idle, awake + took)
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
#[path = "server_tests.rs"]
mod tests;
