//! The claims people make about push and pull, checked against a run: each gets "holds",
//! "does not hold" or "depends", with the numbers that decide it. A claim is only judged when
//! the run has the modes it compares.

use crate::modes::Mode;
use crate::report::format_ms;
use crate::report::html::number;
use crate::results::{ModeResult, Results};

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
}

/// Two values within this ratio of each other are too close to call.
const CLOSE: f64 = 1.2;

fn find(r: &Results, mode: Mode) -> Option<&ModeResult> {
    r.modes
        .iter()
        .find(|m| m.mode == mode && m.deliveries.delivered > 0)
}

/// Judges `a < b` (smaller is the claim's direction): holds, does not hold, or too close.
fn smaller(a: f64, b: f64) -> Judgement {
    if a * CLOSE < b {
        Judgement::Holds
    } else if b * CLOSE < a {
        Judgement::DoesNotHold
    } else {
        Judgement::Depends
    }
}

/// Every claim the run can speak to.
pub fn judge(r: &Results) -> Vec<Claim> {
    let mut out = Vec::new();
    let poll = find(r, Mode::Poll).or_else(|| find(r, Mode::ConditionalPoll));
    let hook = find(r, Mode::Webhook);
    let streams: Vec<&ModeResult> = [Mode::Sse, Mode::Websocket, Mode::LongPoll]
        .iter()
        .filter_map(|m| find(r, *m))
        .collect();

    if let Some(p) = poll {
        let empty = p.server.empty_share;
        let judgement = if empty > 0.5 {
            Judgement::Holds
        } else if empty < 0.1 {
            Judgement::DoesNotHold
        } else {
            Judgement::Depends
        };
        out.push(Claim {
            claim: "Polling wastes requests",
            judgement,
            evidence: format!(
                "{} answered {:.1}% of its {} requests with nothing new ({} requests per delivered event). \
                 The waste grows as events per client per interval fall: theory says e^(−λT) = {:.1}% here.",
                p.mode,
                empty * 100.0,
                p.server.requests,
                number(p.server.requests_per_delivery),
                p.theory.empty_share * 100.0
            ),
        });
    }
    if let (Some(p), Some(h)) = (poll, hook) {
        let cpu = |m: &ModeResult| m.server.cpu_seconds_per_1k_deliveries * 1000.0;
        out.push(Claim {
            claim: "Webhooks reduce server load",
            judgement: smaller(cpu(h), cpu(p)),
            evidence: format!(
                "Server CPU per 1,000 delivered events: webhook {} ms, {} {} ms; requests per event: webhook {}, {} {}. \
                 Webhooks cost the sender one request per event per subscriber; polling costs one per client per interval, \
                 whether or not anything happened.",
                number(cpu(h)),
                p.mode,
                number(cpu(p)),
                number(h.server.requests_per_delivery),
                p.mode,
                number(p.server.requests_per_delivery)
            ),
        });
        out.push(Claim {
            claim: "Webhooks reduce latency",
            judgement: smaller(h.latency.p50_ms, p.latency.p50_ms),
            evidence: format!(
                "Median latency: webhook {} (p99 {}), {} {} (p99 {}). A poller waits about half its interval; a webhook \
                 leaves as soon as the event exists, unless it has to be retried.",
                format_ms(h.latency.p50_ms),
                format_ms(h.latency.p99_ms),
                p.mode,
                format_ms(p.latency.p50_ms),
                format_ms(p.latency.p99_ms)
            ),
        });
    }
    if !streams.is_empty() {
        let clients = r.scenario.clients.count;
        let worst_mem = streams
            .iter()
            .map(|m| m.server.memory_per_client_bytes)
            .fold(0.0, f64::max);
        let all_served = streams.iter().all(|m| m.deliveries.lost == 0);
        let judgement = if all_served {
            Judgement::Depends
        } else {
            Judgement::Holds
        };
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
        out.push(Claim {
            claim: "Open connections tie up resources and can't handle many connections",
            judgement,
            evidence: format!(
                "They do tie up resources: {}. {} With at most {:.1} KiB each, the {clients} clients here cost {:.1} MiB; \
                 a process may hold about 19,000 connections on these machines, so past that the server must be spread.",
                names.join("; "),
                if all_served {
                    format!("But all {clients} clients were served with nothing lost.")
                } else {
                    "And not every delivery arrived.".to_string()
                },
                worst_mem / 1024.0,
                worst_mem * f64::from(clients) / (1 << 20) as f64
            ),
        });
    }
    if let Some(h) = hook {
        let machinery = h.server.webhook.retries
            + h.deliveries.dead_letters
            + h.deliveries.duplicates
            + h.deliveries.rejected;
        out.push(Claim {
            claim: "Webhooks are simpler",
            judgement: Judgement::Depends,
            evidence: format!(
                "Simpler for the client, which only answers POSTs; not for the sender, which here {}kept {} connections \
                 and made {} retries and {} dead letters, while the receiver {}deduplicated ({} duplicates, {} rejected). \
                 Failures decide how much of that machinery runs: {} retries, dead letters, duplicates and rejections here.",
                if r.scenario.webhook.signing { "signed every message, " } else { "" },
                h.server.peak_connections,
                h.server.webhook.retries,
                h.deliveries.dead_letters,
                if r.scenario.webhook.signing { "verified every signature and " } else { "" },
                h.deliveries.duplicates,
                h.deliveries.rejected,
                machinery
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_values_are_too_close_to_call() {
        assert_eq!(smaller(1.0, 2.0), Judgement::Holds);
        assert_eq!(smaller(2.0, 1.0), Judgement::DoesNotHold);
        assert_eq!(smaller(1.0, 1.1), Judgement::Depends);
    }
}
