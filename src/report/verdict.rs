//! Verdicts in plain words: which mode delivered fastest, which cost the server least, and what
//! the choice costs, each sentence built from the run's own numbers and nothing else.

use crate::event::Mode;
use crate::report::html::number;
use crate::report::{below, format_owed, headline, too_close_words};
use crate::results::{Figure, ModeResult, Results};

fn names(modes: &[&ModeResult]) -> String {
    let names: Vec<&str> = modes.iter().map(|m| m.mode.name()).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The verdict sentences for a run (empty when nothing was delivered): speed, server CPU,
/// what the choice costs, what did not arrive, and what the faults made late.
pub fn verdicts(r: &Results) -> Vec<String> {
    let delivered: Vec<&ModeResult> = r.modes.iter().filter(|m| m.deliveries.delivered > 0).collect();
    if delivered.is_empty() {
        return if r.modes.is_empty() {
            Vec::new()
        } else {
            vec!["No mode delivered any event, so there is nothing to compare.".into()]
        };
    }
    [
        Some(speed(r, &delivered)),
        r.has(Figure::CpuMsPer1k)
            .then(|| server_cpu(&delivered))
            .flatten(),
        choice_costs(r, &delivered),
        Some(shortfall(r)),
        lateness_under_faults(r),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Which mode cost the server least and most CPU per delivery, naming the modes that cannot
/// be told from either end; or that the modes were too close to rank.
fn server_cpu(delivered: &[&ModeResult]) -> Option<String> {
    let cpu = |m: &ModeResult| headline(Figure::CpuMsPer1k, m);
    let cheapest = delivered.iter().min_by(|a, b| cpu(a).total_cmp(&cpu(b)))?;
    let dearest = delivered.iter().max_by(|a, b| cpu(a).total_cmp(&cpu(b)))?;
    if cheapest.mode == dearest.mode || cpu(cheapest) <= 0.0 {
        return None;
    }
    if !below(Figure::CpuMsPer1k, cheapest, dearest) {
        return Some(format!(
            "Server CPU per 1,000 delivered events was {} across the modes: from {} ms ({}) to {} ms ({}).",
            too_close_words(Figure::CpuMsPer1k, delivered),
            number(cpu(cheapest)),
            cheapest.mode,
            number(cpu(dearest)),
            dearest.mode
        ));
    }
    // Modes that cannot be told from either end are named with it, not ranked.
    let near = |end: &ModeResult, cheap_end: bool| -> String {
        let close: Vec<&ModeResult> = delivered
            .iter()
            .copied()
            .filter(|m| m.mode != end.mode && m.mode != cheapest.mode && m.mode != dearest.mode)
            .filter(|m| {
                if cheap_end {
                    !below(Figure::CpuMsPer1k, end, m)
                } else {
                    !below(Figure::CpuMsPer1k, m, end)
                }
            })
            .collect();
        if close.is_empty() {
            return String::new();
        }
        let mut involved = close.clone();
        involved.push(end);
        format!(
            " ({} {} of it)",
            names(&close),
            too_close_words(Figure::CpuMsPer1k, &involved)
        )
    };
    Some(format!(
        "{} cost the server least CPU, {} ms per 1,000 delivered events{}; {} cost the most, {} ms ({:.1}×){}.",
        cheapest.mode,
        number(cpu(cheapest)),
        near(cheapest, true),
        dearest.mode,
        number(cpu(dearest)),
        cpu(dearest) / cpu(cheapest),
        near(dearest, false)
    ))
}

/// What each mode's choice costs: connections held, requests per delivery and empty shares.
fn choice_costs(r: &Results, delivered: &[&ModeResult]) -> Option<String> {
    let mut costs = Vec::new();
    let held: Vec<&ModeResult> = delivered
        .iter()
        .filter(|m| matches!(m.mode, Mode::LongPoll | Mode::Sse | Mode::Websocket))
        .copied()
        .collect();
    if !held.is_empty() {
        let peak = held.iter().map(|m| m.server.peak_connections).max().unwrap_or(0);
        costs.push(format!(
            "{} held up to {peak} connections open for {} clients",
            names(&held),
            r.scenario.clients.count
        ));
    }
    for m in delivered
        .iter()
        .filter(|m| matches!(m.mode, Mode::Poll | Mode::ConditionalPoll))
    {
        costs.push(format!(
            "{} made {:.2} requests per delivered event, {:.0}% of them empty",
            m.mode,
            m.server.requests_per_delivery,
            m.server.empty_share * 100.0
        ));
    }
    if let Some(w) = delivered.iter().find(|m| m.mode == Mode::Webhook) {
        costs.push(format!(
            "webhook made {:.2} requests per delivered event and held at most {} connections",
            w.server.requests_per_delivery, w.server.peak_connections
        ));
    }
    if costs.is_empty() {
        return None;
    }
    let mut s = format!("What the choice costs: {}.", costs.join("; "));
    s.replace_range(..1, &s[..1].to_uppercase());
    Some(s)
}

/// Whether every owed delivery arrived, and if not, which mode lost or dead-lettered how many.
fn shortfall(r: &Results) -> String {
    let short: Vec<&ModeResult> = r
        .modes
        .iter()
        .filter(|m| m.deliveries.lost > 0 || m.outcomes.dead_lettered > 0)
        .collect();
    if short.is_empty() {
        return "Every mode delivered every event it owed.".into();
    }
    let parts: Vec<String> = short
        .iter()
        .map(|m| {
            let (lost, dead, owed) = (m.deliveries.lost, m.outcomes.dead_lettered, m.deliveries.expected);
            match (lost, dead) {
                (_, 0) => format!("{} lost {lost} of {owed}", m.mode),
                (0, _) => format!(
                    "{} lost none, but {dead} of {owed} sit in its dead-letter list (kept for replay, not delivered)",
                    m.mode
                ),
                _ => format!(
                    "{} lost {lost} of {owed}, and {dead} more sit in its dead-letter list (kept for replay)",
                    m.mode
                ),
            }
        })
        .collect();
    format!("Not everything arrived: {}.", parts.join("; "))
}

/// Under faults, which modes delivered late, how many and how late at the p99.
fn lateness_under_faults(r: &Results) -> Option<String> {
    if r.scenario.faults.is_empty() {
        return None;
    }
    let parts: Vec<String> = r
        .modes
        .iter()
        .filter(|m| m.outcomes.late > 0)
        .map(|m| {
            format!(
                "{} {} of {} (p99 {})",
                m.mode,
                m.outcomes.late,
                m.outcomes.expected,
                super::format_ms(m.outcomes.late_p99_ms)
            )
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "Through the faults, deliveries arrived late: {}.",
            parts.join("; ")
        )
    })
}

/// Which mode delivered fastest, ranked on the median over every owed delivery; a mode that
/// left deliveries undelivered is never called fastest on its median alone.
fn speed(r: &Results, delivered: &[&ModeResult]) -> String {
    let p50 = |m: &ModeResult| headline(Figure::LatencyP50, m);
    let undelivered = |m: &ModeResult| m.deliveries.expected.saturating_sub(m.deliveries.delivered);
    let complete: Vec<&ModeResult> = delivered
        .iter()
        .copied()
        .filter(|m| undelivered(m) == 0)
        .collect();
    let ranked = if complete.is_empty() {
        delivered
    } else {
        &complete[..]
    };
    let fastest = *ranked
        .iter()
        .min_by(|a, b| p50(a).total_cmp(&p50(b)))
        .expect("non-empty");
    let mut s = format!(
        "{} delivered fastest: half of its deliveries arrived within {} and 99% within {}",
        fastest.mode,
        format_owed(fastest, 0.5),
        format_owed(fastest, 0.99)
    );
    let close: Vec<&ModeResult> = ranked
        .iter()
        .copied()
        .filter(|m| m.mode != fastest.mode && !below(Figure::LatencyP50, fastest, m))
        .collect();
    if !close.is_empty() {
        s.push_str(&format!(
            ", with {} {} of it (too close to rank)",
            names(&close),
            too_close_words(Figure::LatencyP50, &[&close[..], &[fastest]].concat())
        ));
    }
    for m in delivered
        .iter()
        .filter(|m| undelivered(m) > 0 && p50(m) < p50(fastest))
    {
        s.push_str(&format!(
            "; {} had a lower median ({}) but {} of its {} owed deliveries never arrived (p99 {}), so it is not ranked on its median",
            m.mode,
            format_owed(m, 0.5),
            undelivered(m),
            m.deliveries.expected,
            format_owed(m, 0.99)
        ));
    }
    let slowest = *delivered
        .iter()
        .max_by(|a, b| p50(a).total_cmp(&p50(b)))
        .expect("non-empty");
    if slowest.mode != fastest.mode && below(Figure::LatencyP50, fastest, slowest) {
        s.push_str(&format!(
            "; {} was slowest at a median of {}",
            slowest.mode,
            format_owed(slowest, 0.5)
        ));
        // A median past the drain (half of what was owed never came) is no share of an interval.
        let median = slowest.owed_latency_ms(0.5);
        if let (Some(interval), Some(median)) = (r.scenario.poller(slowest.mode).map(|p| p.interval), median)
        {
            let t_ms = interval.as_secs_f64() * 1000.0;
            s.push_str(&format!(
                ", {:.2} of its {} polling interval (theory: {:.2})",
                median / t_ms,
                crate::scenario::humane::format(interval),
                slowest.theory.latency_p50_ms / t_ms
            ));
        }
    }
    s + "."
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::FigureSpread;

    fn quickstart() -> Results {
        crate::results::one_run_fixture()
    }

    #[test]
    fn the_cheapest_is_named_with_the_modes_inside_its_noise() {
        let mut r = quickstart();
        for m in &mut r.modes {
            let cpu: &[f64] = match m.mode {
                Mode::Sse => &[40.0, 43.0, 45.0],
                Mode::Websocket => &[42.0, 44.0, 46.0],
                Mode::Poll => &[80.0, 90.0, 100.0],
                _ => &[60.0, 61.0, 62.0],
            };
            m.spread
                .insert(Figure::CpuMsPer1k, FigureSpread::of(cpu, 1).unwrap());
        }
        let all = verdicts(&r).join("\n");
        assert!(
            all.contains(
                "sse cost the server least CPU, 43.00 ms per 1,000 delivered events (websocket within noise (their \
                 spreads over the repetitions overlap) of it); poll cost the most, 90.00 ms (2.1×)."
            ),
            "{all}"
        );
        // Latency was not repeated: its closeness is the margin's and the sampling error's.
        assert!(
            all.contains("within 20% or three sampling errors of it (too close to rank)"),
            "{all}"
        );
        assert!(!all.contains("with long_poll and sse within noise"), "{all}");
    }

    #[test]
    fn a_pollers_median_past_the_drain_is_no_share_of_its_interval() {
        let mut r = quickstart();
        let poll = r.modes.iter_mut().find(|m| m.mode == Mode::Poll).unwrap();
        // Two thirds of what it was owed never came: its median is beyond the drain.
        poll.deliveries.expected = poll.deliveries.delivered * 3;
        let all = verdicts(&r).join("\n");
        assert!(all.contains("poll was slowest at a median of > drain."), "{all}");
    }
}
