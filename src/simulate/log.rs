//! The server's event log in the model: every event's scheduled time per topic (the server
//! holds an event from then on), and how far each client has read each of its topics.

use super::Outcome;
use crate::scenario::{Scenario, Schedule};

/// Events per topic and each client's read positions.
pub(super) struct Log {
    /// Scheduled offsets (ns) of each topic's events, in order.
    times: Vec<Vec<u64>>,
    /// Index of each topic's first measured (after the warm-up) event.
    first_measured: Vec<usize>,
    /// Each client's topics, `per_client` apiece, in one flat array.
    topics: Vec<u32>,
    /// How many of each of those topics' events the client has been handed.
    read: Vec<usize>,
    /// The clients following each topic.
    followers: Vec<Vec<u32>>,
    /// Clients.
    pub clients: usize,
    /// Topics each client follows.
    pub per_client: usize,
    /// The end of the drain, ns: what arrives later is lost, as in `run`.
    horizon: u64,
    /// [`Log::hand_out`]'s scratch: read positions before a hand-out (kept to spare an
    /// allocation per poll).
    before: Vec<usize>,
}

impl Log {
    /// The log of `s`'s seeded schedule up to the end of its measured window.
    pub fn new(s: &Scenario) -> Log {
        let warmup = s.warmup.as_nanos() as u64;
        let end = warmup + s.duration.as_nanos() as u64;
        let mut times = vec![Vec::new(); s.events.topics as usize];
        for (at, topic) in Schedule::new(&s.events, s.seed).take_while(|(at, _)| *at < end) {
            times[topic as usize].push(at);
        }
        let first_measured = times.iter().map(|t| t.partition_point(|&x| x < warmup)).collect();
        let clients = s.clients.count as usize;
        let per_client = s.clients.topics_per_client as usize;
        let topics: Vec<u32> = (0..s.clients.count).flat_map(|c| s.client_topics(c)).collect();
        let mut followers = vec![Vec::new(); times.len()];
        for (i, &t) in topics.iter().enumerate() {
            followers[t as usize].push((i / per_client.max(1)) as u32);
        }
        Log {
            horizon: end + s.drain.as_nanos() as u64,
            followers,
            times,
            first_measured,
            read: vec![0; topics.len()],
            topics,
            clients,
            per_client,
            before: Vec::with_capacity(per_client),
        }
    }

    /// Events after the warm-up.
    pub fn measured_events(&self) -> u64 {
        self.times
            .iter()
            .zip(&self.first_measured)
            .map(|(t, f)| (t.len() - f) as u64)
            .sum()
    }

    /// Deliveries owed: each measured event to each client following its topic.
    pub fn expected(&self) -> u64 {
        self.topics
            .iter()
            .map(|&t| (self.times[t as usize].len() - self.first_measured[t as usize]) as u64)
            .sum()
    }

    /// Deliveries owed for the measured events scheduled in `[from, to)` ns.
    pub fn expected_between(&self, from: u64, to: u64) -> u64 {
        self.times
            .iter()
            .zip(&self.first_measured)
            .zip(&self.followers)
            .map(|((times, &first), followers)| {
                let measured = &times[first..];
                let n = measured.partition_point(|&x| x < to) - measured.partition_point(|&x| x < from);
                n as u64 * followers.len() as u64
            })
            .sum()
    }

    /// Every event in schedule order: when it was scheduled, its topic, and whether it is
    /// measured (after the warm-up).
    pub fn events(&self) -> Vec<(u64, u32, bool)> {
        let mut all: Vec<(u64, u32, bool)> = self
            .times
            .iter()
            .enumerate()
            .flat_map(|(t, times)| {
                let first = self.first_measured[t];
                times
                    .iter()
                    .enumerate()
                    .map(move |(i, &at)| (at, t as u32, i >= first))
            })
            .collect();
        all.sort_unstable();
        all
    }

    /// The clients following `topic`.
    pub fn followers(&self, topic: u32) -> &[u32] {
        &self.followers[topic as usize]
    }

    /// When the next event client `c` has not been handed was scheduled, if any.
    pub fn next_for(&self, c: usize) -> Option<u64> {
        let k = self.per_client;
        (c * k..c * k + k)
            .filter_map(|i| self.times[self.topics[i] as usize].get(self.read[i]).copied())
            .min()
    }

    /// Puts client `c`'s reading of each of its topics just before the first event scheduled
    /// at or after `t`: it has had everything before, nothing after (a stream's cursor).
    pub fn seek(&mut self, c: usize, t: u64) {
        let k = self.per_client;
        for i in c * k..c * k + k {
            self.read[i] = self.times[self.topics[i] as usize].partition_point(|&x| x < t);
        }
    }

    /// The most events of one topic the last [`Log::hand_out`] (to client `c`) handed.
    pub fn most_of_one_topic(&self, c: usize) -> usize {
        let k = self.per_client;
        self.before
            .iter()
            .zip(&self.read[c * k..c * k + k])
            .map(|(before, now)| now - before)
            .max()
            .unwrap_or(0)
    }

    /// Hands client `c` the events the server holds at `at_ns` (in topic order, at most
    /// `limit`); `arrives(taken)` says when the answer carrying `taken` of them arrives, and
    /// the measured ones are recorded as arriving then (unless that is after the drain: then
    /// they are lost, as in `run`). Returns how many it handed and whether
    /// more were held.
    pub fn hand_out(
        &mut self,
        c: usize,
        at_ns: u64,
        limit: usize,
        out: &mut Outcome,
        arrives: impl FnOnce(usize) -> u64,
    ) -> (usize, bool) {
        let k = self.per_client;
        let (mut taken, mut more) = (0, false);
        // Where each topic's reading stood before: the events handed are those after it.
        self.before.clear();
        for i in 0..k {
            let (t, cur) = (self.topics[c * k + i] as usize, self.read[c * k + i]);
            let times = &self.times[t];
            let held = cur + times[cur..].partition_point(|&x| x <= at_ns);
            let take = (held - cur).min(limit - taken);
            self.before.push(cur);
            self.read[c * k + i] = cur + take;
            taken += take;
            more |= held - cur > take;
            if taken >= limit {
                more |= i + 1 < k;
                break;
            }
        }
        let arrives_ns = arrives(taken);
        if arrives_ns > self.horizon {
            return (taken, more);
        }
        out.landed(arrives_ns, taken as u64);
        for (i, &cur) in self.before.iter().enumerate() {
            let (t, now) = (self.topics[c * k + i] as usize, self.read[c * k + i]);
            // Of the events handed out, those after the warm-up are measured.
            let measured_from = self.first_measured[t].clamp(cur, now);
            for &at in &self.times[t][measured_from..now] {
                out.arrived(at, arrives_ns);
            }
        }
        (taken, more)
    }
}
