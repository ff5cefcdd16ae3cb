//! Where every owed delivery ended up: on time, late, dead-lettered or lost, over the whole
//! run and for the events scheduled in each fault window.
//!
//! What arrived is counted by the clients as it arrives; what did not is counted here, from
//! each client's exact record of the seqs it saw. Both come from the same record, so their
//! sum meeting the number owed is bookkeeping, not a check. The check is [`check_handed`]:
//! what each client saw against what the server counted handing it, on the other side of the
//! wire; when they disagree, the run fails.

use std::collections::HashSet;

use anyhow::ensure;
use hdrhistogram::Histogram;

use crate::api::Emitted;
use crate::event::{Seq, TopicId};
use crate::modes::Mode;
use crate::recorder::{Arrivals, Latencies, Ledger, Timeline};
use crate::results::{FaultWindow, LatencyPoint, Outcomes};
use crate::scenario::{FaultPlan, Scenario, Schedule};

/// Checks what each client saw against what the server counted handing it, on its own side
/// of the wire: streams and polls can only deliver what was handed out (a client never sees
/// more), and a webhook receiver records every message before answering 2xx (the server never
/// counts more 2xx than it saw). When nothing in the run could break a delivery on the way (no
/// fault, no error or reconnection of that client, a drain that finished), the two must be
/// equal. Returns the server's total; a disagreement fails the run.
pub(super) fn check_handed(
    mode: Mode,
    ledgers: &[Ledger],
    handed: &[u64],
    strict: bool,
) -> anyhow::Result<u64> {
    ensure!(
        ledgers.len() == handed.len(),
        "the server counted {} clients, the driver ran {}",
        handed.len(),
        ledgers.len()
    );
    for (l, &server) in ledgers.iter().zip(handed) {
        let seen = l.counts.delivered + l.counts.duplicates;
        let (fewer, more) = if mode == Mode::Webhook {
            (server, seen)
        } else {
            (seen, server)
        };
        let undisturbed = strict && l.counts.errors == 0 && l.counts.reconnects == 0;
        ensure!(
            fewer <= more && (!undisturbed || fewer == more),
            "client {} saw {seen} arrivals of measured events, but the server counted {server} {}: two counts \
             of the same deliveries disagree, so this run's numbers cannot be trusted",
            l.client,
            if mode == Mode::Webhook { "2xx answers from it" } else { "handed to it" }
        );
    }
    Ok(handed.iter().sum())
}

/// What the accounting needs besides the ledgers.
pub(super) struct Owed<'a> {
    pub scenario: &'a Scenario,
    pub mode: Mode,
    pub emitted: &'a Emitted,
    pub timeline: &'a Timeline,
    /// Which clients each fault hit.
    pub plan: &'a FaultPlan,
    /// `(client, topic, seq)` of every dead letter the server holds.
    pub dead: &'a HashSet<(u32, TopicId, Seq)>,
}

/// What the accounting found.
pub(super) struct Accounted {
    /// The whole run.
    pub whole: Outcomes,
    /// Each fault window that applies to the mode.
    pub windows: Vec<FaultWindow>,
    /// Per topic: owed deliveries not made, `(dead-lettered, lost)`.
    pub missing_by_topic: Vec<(u64, u64)>,
}

/// The whole run's outcomes, each applicable fault window's, and what is missing per topic.
pub(super) fn account(
    ledgers: &[Ledger],
    latencies: &Latencies,
    owed: &Owed<'_>,
) -> anyhow::Result<Accounted> {
    let s = owed.scenario;
    let windows = owed.timeline.windows.len();
    // When each event was scheduled, replayed from the seed, to place the missing ones in
    // their windows. Only needed when there are windows.
    let offsets = if windows > 0 {
        schedule_offsets(owed)?
    } else {
        Vec::new()
    };
    let mut whole = Outcomes::default();
    let mut per_window = vec![Outcomes::default(); windows];
    let mut missing_by_topic = vec![(0, 0); s.events.topics as usize];
    let subscribers = subscribers_per_topic(ledgers, s.events.topics);
    for ledger in ledgers {
        whole.late += ledger.counts.late;
        whole.on_time += ledger.counts.delivered - ledger.counts.late;
        whole.duplicates += ledger.counts.duplicates;
        whole.out_of_order += ledger.counts.out_of_order;
        for (w, out) in per_window.iter_mut().enumerate() {
            let c: Arrivals = ledger.window_counts(w);
            out.late += c.late;
            out.on_time += c.delivered - c.late;
            out.duplicates += c.duplicates;
            out.out_of_order += c.out_of_order;
        }
        for (i, &topic) in ledger.topics.iter().enumerate() {
            let t = topic as usize;
            let (first, last) = measured_range(owed.emitted, t);
            for seq in ledger.unseen(i, first, last) {
                let dead = owed.dead.contains(&(ledger.client, topic, seq));
                let missing = &mut missing_by_topic[t];
                if dead {
                    missing.0 += 1
                } else {
                    missing.1 += 1
                }
                let bump = |o: &mut Outcomes| {
                    if dead {
                        o.dead_lettered += 1
                    } else {
                        o.lost += 1
                    }
                };
                bump(&mut whole);
                if windows > 0 {
                    let at = owed.timeline.start_ns + offsets[t][seq as usize - 1];
                    for w in owed.timeline.windows_of(at) {
                        bump(&mut per_window[w]);
                    }
                }
            }
        }
    }
    whole.expected = (0..s.events.topics as usize)
        .map(|t| owed.emitted.measured[t] * subscribers[t])
        .sum();
    for (t, topic_offsets) in offsets.iter().enumerate() {
        let (first, last) = measured_range(owed.emitted, t);
        for seq in first..=last {
            let at = owed.timeline.start_ns + topic_offsets[seq as usize - 1];
            for w in owed.timeline.windows_of(at) {
                per_window[w].expected += subscribers[t];
            }
        }
    }
    set_late_latency(&mut whole, latencies.late.first());
    for (w, out) in per_window.iter_mut().enumerate() {
        set_late_latency(out, latencies.late.get(1 + w));
    }
    check("the whole run", &whole)?;
    let mut out = Vec::new();
    for (w, (fault, outcomes)) in s.faults.iter().zip(per_window).enumerate() {
        check(&fault.label(), &outcomes)?;
        if fault.kind.applies_to(owed.mode) {
            out.push(FaultWindow {
                fault: fault.clone(),
                label: fault.label(),
                clients_hit: (0..s.clients.count).filter(|c| owed.plan.hits(w, *c)).count() as u64,
                outcomes,
            });
        }
    }
    Ok(Accounted {
        whole,
        windows: out,
        missing_by_topic,
    })
}

/// Latency percentiles by the second events were scheduled in.
pub(super) fn latency_over_time(latencies: &Latencies) -> Vec<LatencyPoint> {
    LatencyPoint::by_second(&latencies.by_second)
}

fn check(what: &str, o: &Outcomes) -> anyhow::Result<()> {
    ensure!(
        o.adds_up(),
        "the delivery accounting of {what} does not add up: {} on time + {} late + {} dead-lettered + {} lost = {}, \
         but {} deliveries were owed; these numbers cannot be trusted, so no report is written",
        o.on_time,
        o.late,
        o.dead_lettered,
        o.lost,
        o.on_time + o.late + o.dead_lettered + o.lost,
        o.expected
    );
    Ok(())
}

fn set_late_latency(o: &mut Outcomes, h: Option<&Histogram<u64>>) {
    if let Some(h) = h.filter(|h| !h.is_empty()) {
        o.late_p50_ms = h.value_at_quantile(0.5) as f64 / 1000.0;
        o.late_p99_ms = h.value_at_quantile(0.99) as f64 / 1000.0;
        o.late_max_ms = h.max() as f64 / 1000.0;
    }
}

/// The seqs of topic `t` emitted after the warm-up: the last `measured[t]` of them.
fn measured_range(e: &Emitted, t: usize) -> (Seq, Seq) {
    (e.total[t] - e.measured[t] + 1, e.total[t])
}

fn subscribers_per_topic(ledgers: &[Ledger], topics: u32) -> Vec<u64> {
    let mut n = vec![0u64; topics as usize];
    for l in ledgers {
        for t in &l.topics {
            n[*t as usize] += 1;
        }
    }
    n
}

/// Each topic's events' offsets from the start, ns, by seq − 1, from the seeded schedule; it
/// must match what the server emitted.
fn schedule_offsets(owed: &Owed<'_>) -> anyhow::Result<Vec<Vec<u64>>> {
    let s = owed.scenario;
    let end = (s.warmup + s.duration).as_nanos() as u64;
    let mut out = vec![Vec::new(); s.events.topics as usize];
    for (offset, topic) in Schedule::new(&s.events, s.seed) {
        if offset >= end {
            break;
        }
        out[topic as usize].push(offset);
    }
    let replayed: Vec<u64> = out.iter().map(|o| o.len() as u64).collect();
    ensure!(
        replayed == owed.emitted.total,
        "the server emitted {:?} events per topic, but the seeded schedule has {replayed:?}: was the generator stopped early?",
        owed.emitted.total
    );
    Ok(out)
}

#[cfg(test)]
mod handed_tests {
    use super::*;
    use std::sync::Arc;

    fn ledger(client: u32, delivered: u64, duplicates: u64) -> Ledger {
        let mut l = Ledger::new(client, vec![0], Arc::new(crate::recorder::Recorder::default()));
        l.counts.delivered = delivered;
        l.counts.duplicates = duplicates;
        l
    }

    #[test]
    fn a_client_that_saw_more_than_was_handed_fails_the_run() {
        let ledgers = [ledger(0, 10, 0), ledger(1, 10, 1)];
        assert_eq!(check_handed(Mode::Sse, &ledgers, &[10, 11], true).unwrap(), 21);
        assert!(check_handed(Mode::Sse, &ledgers, &[10, 10], false).is_err());
        // Handed but never seen: only a run that could lose something on the way may say so.
        assert!(check_handed(Mode::Poll, &ledgers, &[12, 11], true).is_err());
        assert!(check_handed(Mode::Poll, &ledgers, &[12, 11], false).is_ok());
    }

    #[test]
    fn a_webhook_sender_never_counts_more_2xx_than_its_receiver_saw() {
        let ledgers = [ledger(0, 5, 1)];
        // A late answer after the sender gave up: the receiver saw 6, the sender counted 5.
        assert!(check_handed(Mode::Webhook, &ledgers, &[5], false).is_ok());
        assert!(check_handed(Mode::Webhook, &ledgers, &[5], true).is_err());
        assert!(check_handed(Mode::Webhook, &ledgers, &[7], false).is_err());
    }
}
