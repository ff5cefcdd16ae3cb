//! The claims people make about push and pull, checked against a run: each gets "holds",
//! "does not hold" or "depends", with the numbers that decide it. A claim is only judged when
//! the run has the modes it compares.

use crate::event::Mode;
use crate::report::html::number;
use crate::report::{below, format_owed, headline, CLOSE_MARGIN};
use crate::results::{cpu_calibration_error_of_difference, Figure, ModeResult, Results};

/// What the run says about a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// The numbers support it.
    Holds,
    /// The numbers contradict it.
    DoesNotHold,
    /// It is true under some conditions of this run and not others, or too close to call.
    Depends,
}

impl Judgement {
    /// In words.
    pub fn words(self) -> &'static str {
        match self {
            Judgement::Holds => "holds",
            Judgement::DoesNotHold => "does not hold",
            Judgement::Depends => "depends",
        }
    }
}

/// One claim, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The claim as people put it.
    pub claim: &'static str,
    /// The verdict.
    pub judgement: Judgement,
    /// The numbers behind it.
    pub evidence: String,
    /// How the verdict is decided, for every outcome, printed beside it.
    pub rule: String,
}

fn find(r: &Results, mode: Mode) -> Option<&ModeResult> {
    r.modes
        .iter()
        .find(|m| m.mode == mode && m.deliveries.delivered > 0)
}

/// Judges `f` of `a` < `f` of `b` (smaller is the claim's direction): holds, does not hold, or
/// too close (see [`below`]).
fn smaller(f: Figure, a: &ModeResult, b: &ModeResult) -> Judgement {
    if below(f, a, b) {
        Judgement::Holds
    } else if below(f, b, a) {
        Judgement::DoesNotHold
    } else {
        Judgement::Depends
    }
}

/// Owed deliveries that never arrived.
fn undelivered(m: &ModeResult) -> u64 {
    m.deliveries.expected.saturating_sub(m.deliveries.delivered)
}

/// The rule of a comparison judged by [`smaller`].
fn margin_rule(r: &Results, what: &str) -> String {
    if repeated(r) {
        format!(
            "holds when {what} is smaller with no overlap between the two modes' spreads over the repetitions, \
             does not hold when it is larger with no overlap, depends when they overlap"
        )
    } else {
        format!(
            "holds when {what} is smaller by more than {m:.0}%, does not hold when it is larger by more than {m:.0}%, \
             depends in between",
            m = CLOSE_MARGIN * 100.0
        )
    }
}

/// Whether the run repeated its modes (and so judges by spreads, not by a margin).
fn repeated(r: &Results) -> bool {
    r.modes.iter().any(|m| !m.spread.is_empty())
}

/// Every claim the run can speak to.
pub fn judge(r: &Results) -> Vec<Claim> {
    let poll = find(r, Mode::Poll).or_else(|| find(r, Mode::ConditionalPoll));
    let hook = find(r, Mode::Webhook);
    let streams: Vec<&ModeResult> = [Mode::Sse, Mode::Websocket, Mode::LongPoll]
        .iter()
        .filter_map(|m| find(r, *m))
        .collect();
    let mut out = Vec::new();
    if let Some(p) = poll {
        out.push(polling_wastes(p));
    }
    if let (Some(p), Some(h)) = (poll, hook) {
        if r.has(Figure::CpuMsPer1k) {
            out.push(webhooks_reduce_load(r, p, h));
        }
        out.push(webhooks_reduce_latency(r, p, h));
    }
    // Judged on whether every client was served within this machine's memory and descriptors:
    // the model does not enforce those limits yet, so a simulation cannot speak to it.
    if !streams.is_empty() && r.simulated.is_none() {
        out.push(connections(r, &streams));
    }
    if let Some(h) = hook {
        out.push(webhooks_simpler(r, h));
    }
    out
}

fn polling_wastes(p: &ModeResult) -> Claim {
    let empty = p.server.empty_share;
    let judgement = if empty > 0.5 {
        Judgement::Holds
    } else if empty < 0.1 {
        Judgement::DoesNotHold
    } else {
        Judgement::Depends
    };
    Claim {
        claim: "Polling wastes requests",
        judgement,
        evidence: format!(
            "{} answered {:.1}% of its {} requests with nothing new ({} requests per delivered event). \
             The waste grows as events per client per interval fall: theory says {:.1}% here.",
            p.mode,
            empty * 100.0,
            p.server.requests,
            number(p.server.requests_per_delivery),
            p.theory.empty_share * 100.0
        ),
        rule:
            "holds when more than half the polls found nothing, does not hold when fewer than a tenth did, \
               depends in between"
                .into(),
    }
}

fn webhooks_reduce_load(r: &Results, p: &ModeResult, h: &ModeResult) -> Claim {
    let cpu = |m: &ModeResult| headline(Figure::CpuMsPer1k, m);
    let costs = cpu_calibration_error_of_difference(&h.server, &p.server);
    let mut rule = margin_rule(r, "the webhook sender's CPU per delivered event");
    if costs.is_some() {
        rule += "; either way only by more than three standard errors of the difference under the calibration's costs";
    }
    Claim {
        claim: "Webhooks reduce server load",
        judgement: smaller(Figure::CpuMsPer1k, h, p),
        evidence: format!(
            "Server CPU per 1,000 delivered events: webhook {} ms, {} {} ms{}; requests per event: webhook {}, {} {}. \
             Webhooks cost the sender one request per event per subscriber; polling costs one per client per interval, \
             whether or not anything happened.",
            number(cpu(h)),
            p.mode,
            number(cpu(p)),
            costs.map_or(String::new(), |e| format!(
                " (their difference uncertain by ± {} ms from the calibration's costs)",
                number(e)
            )),
            number(h.server.requests_per_delivery),
            p.mode,
            number(p.server.requests_per_delivery)
        ),
        rule,
    }
}

fn webhooks_reduce_latency(r: &Results, p: &ModeResult, h: &ModeResult) -> Claim {
    let median = smaller(Figure::LatencyP50, h, p);
    let tail = smaller(Figure::LatencyP99, h, p);
    let loses_more = undelivered(h) > undelivered(p);
    let judgement = match (median, tail) {
        (Judgement::Holds, Judgement::Holds) if !loses_more => Judgement::Holds,
        (Judgement::DoesNotHold, Judgement::DoesNotHold) => Judgement::DoesNotHold,
        _ => Judgement::Depends,
    };
    Claim {
        claim: "Webhooks reduce latency",
        judgement,
        evidence: format!(
            "Over every owed delivery (the undelivered counted as slowest): webhook median {}, p99 {}, {} never \
             arrived; {} median {}, p99 {}, {} never arrived.",
            format_owed(h, 0.5),
            format_owed(h, 0.99),
            undelivered(h),
            p.mode,
            format_owed(p, 0.5),
            format_owed(p, 0.99),
            undelivered(p)
        ),
        rule: if repeated(r) {
            "holds when the webhook median and p99 are both smaller, with no overlap between the modes' spreads \
             over the repetitions, and webhooks left no more undelivered; does not hold when both are larger with no \
             overlap; depends otherwise"
                .into()
        } else {
            format!(
                "holds when the webhook median and p99 are both smaller by more than {m:.0}% (and by more than three \
                 sampling errors of the percentiles) and webhooks left no more undelivered; does not hold when both \
                 are larger by as much; depends otherwise",
                m = CLOSE_MARGIN * 100.0
            )
        },
    }
}

fn connections(r: &Results, streams: &[&ModeResult]) -> Claim {
    let clients = r.scenario.clients.count;
    let e = &r.environment;
    let worst_mem = streams
        .iter()
        .map(|m| m.server.memory_per_client_bytes)
        .fold(0.0, f64::max);
    let failed: Vec<&&ModeResult> = streams
        .iter()
        .filter(|m| undelivered(m) > 0 || m.deliveries.client_errors > 0)
        .collect();
    let names: Vec<String> = streams
        .iter()
        .map(|m| {
            format!(
                "{} {:.1} KiB per client, {} connections",
                m.mode,
                m.server.memory_per_client_bytes / 1024.0,
                m.server.peak_connections
            )
        })
        .collect();
    // What this machine could hold at that cost: by memory, and by descriptors per process.
    let by_memory = (worst_mem > 0.0 && e.memory_available_bytes > 0)
        .then(|| e.memory_available_bytes as f64 / worst_mem);
    let (judgement, scale) = match (failed.is_empty(), by_memory, e.open_files_limit) {
        (false, _, _) => (
            Judgement::Holds,
            format!(
                "{} did not serve every client ({}).",
                failed.iter().map(|m| m.mode.name()).collect::<Vec<_>>().join(", "),
                failed
                    .iter()
                    .map(|m| format!("{} undelivered, {} client errors", undelivered(m), m.deliveries.client_errors))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        (true, Some(mem), Some(fds)) => (
            if mem >= fds as f64 {
                Judgement::DoesNotHold
            } else {
                Judgement::Depends
            },
            format!(
                "All {clients} clients were served. At {:.1} KiB each, this machine's available memory ({:.1} GiB) \
                 holds about {:.0} such connections, and one process may open {fds} files.",
                worst_mem / 1024.0,
                e.memory_available_bytes as f64 / (1u64 << 30) as f64,
                mem
            ),
        ),
        (true, _, _) => (
            Judgement::Depends,
            format!("All {clients} clients were served; this machine's memory or descriptor limit was not recorded."),
        ),
    };
    Claim {
        claim: "Open connections tie up resources and can't handle many connections",
        judgement,
        evidence: format!(
            "They do tie up resources: {}. {scale} With at most {:.1} KiB each, the {clients} clients here cost {:.1} MiB.",
            names.join("; "),
            worst_mem / 1024.0,
            worst_mem * f64::from(clients) / (1 << 20) as f64
        ),
        rule: "holds when a connection-holding mode failed to serve its clients (undelivered events or client \
               errors); does not hold when every client was served and the machine's available memory, at the \
               measured cost per connection, holds at least as many connections as one process may open; depends \
               when memory would run out first"
            .into(),
    }
}

fn webhooks_simpler(r: &Results, h: &ModeResult) -> Claim {
    let machinery = h.server.webhook.retries
        + h.deliveries.dead_letters
        + h.deliveries.duplicates
        + h.deliveries.rejected;
    let judgement = match (machinery, undelivered(h)) {
        (0, 0) => Judgement::Holds,
        (_, 0) => Judgement::Depends,
        _ => Judgement::DoesNotHold,
    };
    Claim {
        claim: "Webhooks are simpler",
        judgement,
        evidence: format!(
            "Simpler for the client, which only answers POSTs; the sender here {}kept {} connections and made {} \
             retries and {} dead letters, while the receiver {}deduplicated ({} duplicates, {} rejected); {} owed \
             deliveries never arrived.",
            if r.scenario.webhook.signing { "signed every message, " } else { "" },
            h.server.peak_connections,
            h.server.webhook.retries,
            h.deliveries.dead_letters,
            if r.scenario.webhook.signing { "verified every signature and " } else { "" },
            h.deliveries.duplicates,
            h.deliveries.rejected,
            undelivered(h)
        ),
        rule: "holds when no failure machinery ran (no retry, dead letter, duplicate or rejection); depends when \
               it ran and recovered every delivery; does not hold when deliveries were still left undelivered"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two copies of the fixture's first mode with server CPU per 1k of `a` and `b` ms, each
    /// spread over `reps` when given.
    fn pair(a: &[f64], b: &[f64]) -> (ModeResult, ModeResult) {
        let base = results().modes.remove(0);
        let with = |values: &[f64]| {
            let mut m = base.clone();
            m.server.cpu_seconds_per_1k_deliveries = values[0] / 1000.0;
            if values.len() > 1 {
                let s = crate::results::FigureSpread::of(values, 1).expect("values");
                m.spread.insert(Figure::CpuMsPer1k, s);
            }
            m
        };
        (with(a), with(b))
    }

    #[test]
    fn close_values_are_too_close_to_call() {
        let cpu = |a: &[f64], b: &[f64]| {
            let (a, b) = pair(a, b);
            smaller(Figure::CpuMsPer1k, &a, &b)
        };
        assert_eq!(cpu(&[1.0], &[2.0]), Judgement::Holds);
        assert_eq!(cpu(&[2.0], &[1.0]), Judgement::DoesNotHold);
        assert_eq!(cpu(&[1.0], &[1.1]), Judgement::Depends);
    }

    #[test]
    fn with_repetitions_noise_decides_not_the_margin() {
        let cpu = |a: &[f64], b: &[f64]| {
            let (a, b) = pair(a, b);
            smaller(Figure::CpuMsPer1k, &a, &b)
        };
        // 5% apart, but every repetition of one below every repetition of the other.
        assert_eq!(cpu(&[1.00, 1.01, 1.02], &[1.05, 1.06, 1.07]), Judgement::Holds);
        assert_eq!(
            cpu(&[1.05, 1.06, 1.07], &[1.00, 1.01, 1.02]),
            Judgement::DoesNotHold
        );
        // Medians 30% apart, but the ranges overlap: within noise.
        assert_eq!(cpu(&[1.0, 1.0, 1.5], &[1.3, 1.3, 1.4]), Judgement::Depends);
    }

    #[test]
    fn a_simulated_cpu_is_ranked_only_beyond_the_calibrations_error_of_the_difference() {
        // 100 and 130 ms per 1k, 30% apart (past the 20% margin), each over 1,000 deliveries
        // so that a loading of x s is x × 1000 ms per 1k.
        let cpu = |a: [f64; 2], b: [f64; 2]| {
            let (mut x, mut y) = pair(&[100.0], &[130.0]);
            for (m, l) in [(&mut x, a), (&mut y, b)] {
                m.server.cpu_seconds = m.server.cpu_seconds_per_1k_deliveries;
                m.server.cpu_calibration_loadings = l.to_vec();
            }
            (smaller(Figure::CpuMsPer1k, &x, &y), x, y)
        };
        // Errors apart, 6 and 9 ms: the difference's is 10.8 ms by hand, three of them 32.4
        // against the 30 between them.
        let (j, x, y) = cpu([0.006, 0.0], [0.0, 0.009]);
        assert_eq!(j, Judgement::Depends);
        let words = crate::report::too_close_words(Figure::CpuMsPer1k, &[&x, &y]);
        assert_eq!(words, "within three of the calibration's standard errors");
        // Each uncertain by 20 ms, but by the same costs: the difference's error is 1 ms, and
        // the ranking holds (the errors in quadrature, 28.5 ms, would have withheld it).
        assert_eq!(cpu([0.020, 0.002], [0.020, 0.003]).0, Judgement::Holds);
        assert_eq!(cpu([0.0, 0.0], [0.0, 0.0]).0, Judgement::Holds);
        // A measured pair carries none, and is judged by the margin alone.
        let (a, b) = pair(&[100.0], &[130.0]);
        assert_eq!(smaller(Figure::CpuMsPer1k, &a, &b), Judgement::Holds);
    }

    /// A run of every mode to bend into each outcome.
    fn results() -> Results {
        crate::results::one_run_fixture()
    }

    fn mode(r: &mut Results, mode: Mode) -> &mut ModeResult {
        r.modes.iter_mut().find(|m| m.mode == mode).expect("the mode ran")
    }

    fn verdict(r: &Results, claim: &str) -> Judgement {
        judge(r)
            .into_iter()
            .find(|c| c.claim == claim)
            .expect("judged")
            .judgement
    }

    #[test]
    fn polling_wastes_requests_comes_out_each_way() {
        let mut r = results();
        for (share, expected) in [
            (0.9, Judgement::Holds),
            (0.3, Judgement::Depends),
            (0.05, Judgement::DoesNotHold),
        ] {
            mode(&mut r, Mode::Poll).server.empty_share = share;
            assert_eq!(verdict(&r, "Polling wastes requests"), expected, "{share}");
        }
    }

    #[test]
    fn webhooks_reduce_load_comes_out_each_way() {
        let mut r = results();
        mode(&mut r, Mode::Poll).server.cpu_seconds_per_1k_deliveries = 0.1;
        for (hook, expected) in [
            (0.05, Judgement::Holds),
            (0.11, Judgement::Depends),
            (0.2, Judgement::DoesNotHold),
        ] {
            mode(&mut r, Mode::Webhook).server.cpu_seconds_per_1k_deliveries = hook;
            assert_eq!(verdict(&r, "Webhooks reduce server load"), expected, "{hook}");
        }
    }

    #[test]
    fn webhooks_reduce_latency_weighs_the_tail_and_the_undelivered() {
        let mut r = results();
        // As run: webhook in under a millisecond, poll in half a second.
        assert_eq!(verdict(&r, "Webhooks reduce latency"), Judgement::Holds);
        // Half the webhooks never arrived: the median falls among them.
        let h = mode(&mut r, Mode::Webhook);
        h.deliveries.expected = h.deliveries.delivered * 3;
        assert_eq!(verdict(&r, "Webhooks reduce latency"), Judgement::DoesNotHold);
        // A few never arrived: the median still wins, the tail does not.
        let h = mode(&mut r, Mode::Webhook);
        h.deliveries.expected = h.deliveries.delivered + h.deliveries.delivered / 50;
        assert_eq!(verdict(&r, "Webhooks reduce latency"), Judgement::Depends);
    }

    #[test]
    fn the_connections_claim_comes_out_each_way_from_the_machines_own_limits() {
        let mut r = results();
        r.environment.open_files_limit = Some(20_000);
        r.environment.memory_available_bytes = 8 << 30;
        let claim = "Open connections tie up resources and can't handle many connections";
        assert_eq!(verdict(&r, claim), Judgement::DoesNotHold);
        // Memory for fewer connections than the descriptors allow.
        r.environment.memory_available_bytes = 64 << 20;
        assert_eq!(verdict(&r, claim), Judgement::Depends);
        mode(&mut r, Mode::Sse).deliveries.client_errors = 3;
        assert_eq!(verdict(&r, claim), Judgement::Holds);
        // No machine fact is invented: the sentence names what was read.
        let c = judge(&r).into_iter().find(|c| c.claim == claim).unwrap();
        assert!(!c.evidence.contains("19,000"), "{}", c.evidence);
    }

    #[test]
    fn webhooks_are_simpler_comes_out_each_way() {
        let mut r = results();
        let h = mode(&mut r, Mode::Webhook);
        h.server.webhook.retries = 0;
        h.deliveries.duplicates = 0;
        h.deliveries.rejected = 0;
        h.deliveries.dead_letters = 0;
        assert_eq!(verdict(&r, "Webhooks are simpler"), Judgement::Holds);
        mode(&mut r, Mode::Webhook).server.webhook.retries = 4;
        assert_eq!(verdict(&r, "Webhooks are simpler"), Judgement::Depends);
        let h = mode(&mut r, Mode::Webhook);
        h.deliveries.expected = h.deliveries.delivered + 2;
        assert_eq!(verdict(&r, "Webhooks are simpler"), Judgement::DoesNotHold);
    }
}
