//! Merging results of the same scenario run several times (other seeds, other machines, other
//! drivers): histograms are added, counts summed, rates and shares recomputed from the sums,
//! and time series kept per source.
//!
//! Server figures are summed as if each run had its own server, which is how `pushpull run`
//! works (it starts a server per mode). Latency percentiles of the merge are those of all the
//! runs' deliveries together, because the histograms themselves are added.
//!
//! Runs merged by `report` may have run at the same time (several drivers), so their rates
//! add up; the repetitions of one run ([`pool`]) ran one after another, so their rates are
//! their totals over their summed time, and their peaks the largest, not the sum.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context as _};

use super::{
    ClientCost, Deliveries, DrainCost, LatencySummary, ModeResult, Outcomes, Results, ServerCost,
    TopicDeliveries,
};
use crate::clock::Lateness;
use crate::scenario::Scenario;

/// Merges runs of one scenario (same name and settings; seeds may differ) into one result.
pub fn merge(parts: &[Results]) -> anyhow::Result<Results> {
    let Some(first) = parts.first() else {
        bail!("nothing to merge")
    };
    for (i, p) in parts.iter().enumerate().skip(1) {
        ensure!(
            same_scenario(&first.scenario, &p.scenario),
            "results {} is of a different scenario than results 1 (`{}` vs `{}`, or other settings): only runs of the \
             same scenario can be merged",
            i + 1,
            p.scenario.name,
            first.scenario.name
        );
        ensure!(
            p.simulated.is_some() == first.simulated.is_some(),
            "results {} is {} and results 1 is not: a model and a measurement are laid side by side, not merged",
            i + 1,
            if p.simulated.is_some() { "simulated" } else { "measured" }
        );
        let modes = |r: &Results| r.modes.iter().map(|m| m.mode).collect::<Vec<_>>();
        ensure!(
            modes(p) == modes(first),
            "results {} ran other modes ({:?}) than results 1 ({:?})",
            i + 1,
            modes(p),
            modes(first)
        );
    }
    let mut modes = Vec::new();
    for (k, m) in first.modes.iter().enumerate() {
        let all: Vec<&ModeResult> = parts.iter().map(|p| &p.modes[k]).collect();
        modes.push(merge_mode(&all, Runs::Concurrent).with_context(|| format!("merging mode `{}`", m.mode))?);
    }
    let sources: Vec<_> = parts
        .iter()
        .flat_map(|p| {
            if p.sources.is_empty() {
                vec![p.environment.clone()]
            } else {
                p.sources.clone()
            }
        })
        .collect();
    Ok(Results {
        schema_version: first.schema_version,
        scenario: first.scenario.clone(),
        environment: first.environment.clone(),
        modes,
        sources,
        points: Vec::new(),
        simulated: first.simulated.clone(),
    })
}

/// Same scenario but for the seed and the number of repetitions.
pub(super) fn same_scenario(a: &Scenario, b: &Scenario) -> bool {
    let mut b = b.clone();
    b.seed = a.seed;
    b.repeat = a.repeat;
    *a == b
}

fn latency(parts: &[&LatencySummary]) -> anyhow::Result<LatencySummary> {
    let mut total = crate::results::histogram::new_histogram();
    for l in parts {
        total.add(l.decode_histogram()?).context("adding histograms")?;
    }
    Ok(LatencySummary::from_histogram(&total))
}

/// How the runs being merged relate in time.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Runs {
    /// Possibly at once (several drivers): rates and peaks add up.
    Concurrent,
    /// One after another (repetitions): rates over the summed time, the largest peak.
    Sequential,
}

/// Pools the repetitions of one mode (run one after another on the same scenario) into one
/// result that keeps them all and the spread of each headline figure.
pub fn pool(reps: Vec<ModeResult>) -> anyhow::Result<ModeResult> {
    ensure!(!reps.is_empty(), "nothing to pool");
    if reps.len() == 1 {
        return Ok(reps.into_iter().next().expect("one"));
    }
    let all: Vec<&ModeResult> = reps.iter().collect();
    let mut pooled = merge_mode(&all, Runs::Sequential)?;
    pooled.spread = super::spread::spreads(&reps);
    pooled.repetitions = reps;
    Ok(pooled)
}

fn merge_mode(all: &[&ModeResult], runs: Runs) -> anyhow::Result<ModeResult> {
    let first = all[0];
    let seconds: f64 = all.iter().map(|m| m.measured_seconds).sum();
    let per_second = |total: u64, concurrent: f64| match runs {
        Runs::Concurrent => concurrent,
        Runs::Sequential if seconds > 0.0 => total as f64 / seconds,
        Runs::Sequential => 0.0,
    };
    let peak = |f: fn(&ModeResult) -> u64| match runs {
        Runs::Concurrent => all.iter().map(|m| f(m)).sum(),
        Runs::Sequential => all.iter().map(|m| f(m)).max().unwrap_or(0),
    };
    let source = match runs {
        Runs::Concurrent => "source",
        Runs::Sequential => "repetition",
    };
    let sum = |f: fn(&ModeResult) -> u64| all.iter().map(|m| f(m)).sum::<u64>();
    let sumf = |f: fn(&ModeResult) -> f64| all.iter().map(|m| f(m)).sum::<f64>();
    let maxf = |f: fn(&ModeResult) -> f64| all.iter().map(|m| f(m)).fold(0.0, f64::max);

    let mut by_topic: BTreeMap<u32, TopicDeliveries> = BTreeMap::new();
    for m in all {
        for t in &m.deliveries.by_topic {
            let row = by_topic.entry(t.topic).or_insert_with(|| TopicDeliveries {
                topic: t.topic,
                ..TopicDeliveries::default()
            });
            row.subscribers += t.subscribers;
            row.events += t.events;
            row.expected += t.expected;
            row.delivered += t.delivered;
            row.lost += t.lost;
            row.dead_lettered += t.dead_lettered;
            row.duplicates += t.duplicates;
            row.out_of_order += t.out_of_order;
        }
    }
    let deliveries = Deliveries {
        events_measured: sum(|m| m.deliveries.events_measured),
        expected: sum(|m| m.deliveries.expected),
        delivered: sum(|m| m.deliveries.delivered),
        lost: sum(|m| m.deliveries.lost),
        duplicates: sum(|m| m.deliveries.duplicates),
        out_of_order: sum(|m| m.deliveries.out_of_order),
        gap_events: sum(|m| m.deliveries.gap_events),
        reconnects: sum(|m| m.deliveries.reconnects),
        slow_disconnects: sum(|m| m.deliveries.slow_disconnects),
        dropped_oldest: sum(|m| m.deliveries.dropped_oldest),
        stream_cuts: sum(|m| m.deliveries.stream_cuts),
        dead_letters: sum(|m| m.deliveries.dead_letters),
        rejected: sum(|m| m.deliveries.rejected),
        client_errors: sum(|m| m.deliveries.client_errors),
        generator_max_lag_ms: maxf(|m| m.deliveries.generator_max_lag_ms),
        subscribers_with_loss: sum(|m| m.deliveries.subscribers_with_loss),
        handed_by_server: sum(|m| m.deliveries.handed_by_server),
        by_topic: by_topic.into_values().collect(),
    };

    let mut requests_by_route: BTreeMap<String, BTreeMap<u16, u64>> = BTreeMap::new();
    for m in all {
        for (route, by_status) in &m.server.requests_by_route {
            for (status, n) in by_status {
                *requests_by_route
                    .entry(route.clone())
                    .or_default()
                    .entry(*status)
                    .or_default() += n;
            }
        }
    }
    let delivered_count = deliveries.delivered;
    // What each repetition's ratios divided by: its deliveries in the window, or, in results
    // written before those were recorded, its delivered events.
    let in_window = sum(|m| m.window_deliveries());
    let requests = sum(|m| m.server.requests);
    let empty = sum(|m| m.server.empty_responses);
    let (bytes_read, bytes_written) = (sum(|m| m.server.bytes_read), sum(|m| m.server.bytes_written));
    let cpu = sumf(|m| m.server.cpu_seconds);
    let webhook = all[1..]
        .iter()
        .fold(first.server.webhook, |w, m| w.add(&m.server.webhook));

    let server = ServerCost {
        requests,
        requests_per_second: per_second(requests, sumf(|m| m.server.requests_per_second)),
        requests_by_route,
        empty_responses: empty,
        bytes_read,
        bytes_written,
        cpu_seconds: cpu,
        // Loadings add as the CPU does, where every run has them of one calibration's shape.
        cpu_calibration_loadings: if all
            .iter()
            .all(|m| m.server.cpu_calibration_loadings.len() == first.server.cpu_calibration_loadings.len())
        {
            (0..first.server.cpu_calibration_loadings.len())
                .map(|k| all.iter().map(|m| m.server.cpu_calibration_loadings[k]).sum())
                .collect()
        } else {
            Vec::new()
        },
        generator_spin_cpu_seconds: sumf(|m| m.server.generator_spin_cpu_seconds),
        census_cpu_seconds: sumf(|m| m.server.census_cpu_seconds),
        peak_rss_bytes: all.iter().map(|m| m.server.peak_rss_bytes).max().unwrap_or(0),
        peak_connections: peak(|m| m.server.peak_connections),
        connections_refused: sum(|m| m.server.connections_refused),
        rss_baseline_bytes: sum(|m| m.server.rss_baseline_bytes) / all.len() as u64,
        rss_steady_bytes: sum(|m| m.server.rss_steady_bytes) / all.len() as u64,
        log_bytes: sum(|m| m.server.log_bytes) / all.len() as u64,
        memory_per_client_bytes: sumf(|m| m.server.memory_per_client_bytes) / all.len() as f64,
        webhook,
        tcp: {
            let mut tcp = all[1..]
                .iter()
                .fold(first.server.tcp.clone(), |t, m| t.merge(&m.server.tcp));
            // Repetitions held their connections one after another: the most any held (and
            // opened), not the sum, is what segments per connection per second divide by.
            if let (Runs::Sequential, super::TcpReading::Measured(t)) = (runs, &mut tcp) {
                let most = |f: fn(&super::TcpTraffic) -> u64| {
                    all.iter()
                        .filter_map(|m| m.server.tcp.measured())
                        .map(f)
                        .max()
                        .unwrap_or(0)
                };
                t.connections = most(|t| t.connections);
                t.opened = most(|t| t.opened);
            }
            tcp
        },
        deliveries_in_window: all.iter().map(|m| m.server.deliveries_in_window).sum(),
        heartbeats: all.iter().map(|m| m.server.heartbeats).sum(),
        voluntary_switches: all.iter().map(|m| m.server.voluntary_switches).sum(),
        involuntary_switches: all.iter().map(|m| m.server.involuntary_switches).sum(),
        ..ServerCost::default()
    }
    .with_ratios(in_window);
    let client = ClientCost {
        requests: sum(|m| m.client.requests),
        cpu_seconds: sumf(|m| m.client.cpu_seconds),
        cpu_share_of_core: match runs {
            Runs::Concurrent => sumf(|m| m.client.cpu_share_of_core),
            Runs::Sequential if seconds > 0.0 => sumf(|m| m.client.cpu_seconds) / seconds,
            Runs::Sequential => 0.0,
        },
        peak_rss_bytes: all.iter().map(|m| m.client.peak_rss_bytes).max().unwrap_or(0),
        saturated: all.iter().any(|m| m.client.saturated),
    };
    let mut timeseries = Vec::new();
    let mut warnings = Vec::new();
    let mut offset = 0;
    for m in all {
        // A part may itself be a merge: keep its sources distinct from the other parts'.
        let span = m.timeseries.iter().map(|s| s.source).max().map_or(1, |s| s + 1);
        timeseries.extend(m.timeseries.iter().cloned().map(|mut s| {
            s.source += offset;
            s
        }));
        warnings.extend(m.warnings.iter().map(|w| format!("{source} {}: {w}", offset + 1)));
        offset += span;
    }
    let mut outcomes = Outcomes::default();
    let mut fault_windows = first.fault_windows.clone();
    for (i, m) in all.iter().enumerate() {
        outcomes.absorb(&m.outcomes);
        if i > 0 {
            anyhow::ensure!(
                m.fault_windows.len() == fault_windows.len(),
                "the runs have different fault windows"
            );
            for (into, w) in fault_windows.iter_mut().zip(&m.fault_windows) {
                into.clients_hit += w.clients_hit;
                into.outcomes.absorb(&w.outcomes);
            }
        }
    }
    Ok(ModeResult {
        mode: first.mode,
        theory: first.theory.clone(),
        latency: latency(&all.iter().map(|m| &m.latency).collect::<Vec<_>>())?,
        latency_from_emission: latency(&all.iter().map(|m| &m.latency_from_emission).collect::<Vec<_>>())?,
        deliveries,
        server,
        client,
        outcomes,
        late_after_ms: first.late_after_ms,
        fault_windows,
        // Per-second percentiles cannot be added up without their histograms.
        latency_over_time: Vec::new(),
        timeseries,
        measured_seconds: match runs {
            Runs::Concurrent => maxf(|m| m.measured_seconds),
            Runs::Sequential => seconds,
        },
        deliveries_per_second: per_second(delivered_count, sumf(|m| m.deliveries_per_second)),
        drain_seconds: maxf(|m| m.drain_seconds),
        drain: DrainCost {
            deliveries: sum(|m| m.drain.deliveries),
            requests: sum(|m| m.drain.requests),
            bytes: sum(|m| m.drain.bytes),
            server_cpu_seconds: sumf(|m| m.drain.server_cpu_seconds),
            driver_cpu_seconds: sumf(|m| m.drain.driver_cpu_seconds),
        },
        generator: all.iter().fold(Lateness::default(), |a, m| a.worst(m.generator)),
        poll_sends: all.iter().fold(Lateness::default(), |a, m| a.worst(m.poll_sends)),
        warnings,
        // A merge of pooled results keeps neither their repetitions nor their spreads.
        repetitions: Vec::new(),
        spread: BTreeMap::new(),
    })
}
