//! For a run that sweeps `webhook.sender`: the rate the dispatcher sustained beside the raw
//! sender's at the same offered rate, so that its throughput reads as a share of what this
//! machine can send at all.

use super::html::number;
use super::{figures, Section};
use crate::event::Mode;
use crate::results::throughput::{Sustained, Throughput};
use crate::results::{Figure, ModeResult, Results, SweepPoint};
use crate::scenario::Sender;

const HEADER: [&str; 7] = [
    "sender",
    "offered/s",
    "sustained/s",
    "its 95% interval",
    "share of the raw sender's",
    "p99",
    "CPU ms/1k",
];

/// One sender's webhook result at one point, and what it was offered and sustained.
struct Side<'a> {
    m: &'a ModeResult,
    t: Throughput,
}

impl<'a> Side<'a> {
    fn of(p: &'a SweepPoint) -> Option<Side<'a>> {
        let m = p.modes.iter().find(|m| m.mode == Mode::Webhook)?;
        Some(Side {
            m,
            t: Throughput::of(m),
        })
    }

    fn row(&self, name: String, share: String) -> (Mode, Vec<String>) {
        let (median, interval) = match &self.t.rate {
            Some(s) => (
                number(s.median),
                format!("{} – {}", number(s.interval.low), number(s.interval.high)),
            ),
            None => ("—".into(), "—".into()),
        };
        (
            Mode::Webhook,
            vec![
                name,
                number(self.t.offered),
                median,
                interval,
                share,
                figures::cell(Figure::LatencyP99, self.m),
                figures::cell(Figure::CpuMsPer1k, self.m),
            ],
        )
    }
}

/// The points' other swept values, as a label (empty when the sender is all that is swept).
fn others(p: &SweepPoint) -> String {
    super::lines::others(p, "webhook.sender")
}

/// The section, when the run swept the sender and holds a point of each beside the other.
pub fn section(r: &Results) -> Option<Section> {
    let mut rows = Vec::new();
    let mut findings = Vec::new();
    // The points where both kept up, said once together when others found the ceiling.
    let mut kept = Vec::new();
    let mut ceiling_found = false;
    for raw_point in r
        .points
        .iter()
        .filter(|p| p.scenario.webhook.sender == Sender::Raw)
    {
        let label = others(raw_point);
        let Some(dispatcher_point) = r
            .points
            .iter()
            .find(|p| p.scenario.webhook.sender == Sender::Dispatcher && others(p) == label)
        else {
            continue;
        };
        let (Some(raw), Some(dispatcher)) = (Side::of(raw_point), Side::of(dispatcher_point)) else {
            continue;
        };
        let at = if label.is_empty() {
            String::new()
        } else {
            format!(" at {label}")
        };
        let share = match (&dispatcher.t.rate, &raw.t.rate) {
            (Some(d), Some(w)) if w.median > 0.0 => Some((d, w, d.median / w.median)),
            _ => None,
        };
        rows.push(dispatcher.row(
            format!("dispatcher{at}"),
            share.map_or("—".into(), |(_, _, s)| format!("{s:.2}×")),
        ));
        rows.push(raw.row(format!("raw{at}"), "1×".into()));
        ceiling_found |= raw.t.behind;
        if !raw.t.behind && !dispatcher.t.behind && !label.is_empty() {
            kept.push(label);
        } else {
            findings.push(finding(&label, &dispatcher, &raw, share));
        }
    }
    if rows.is_empty() {
        return None;
    }
    if !kept.is_empty() {
        let offer_more = if ceiling_found {
            "."
        } else {
            ": this machine's ceiling lies above what was offered, so offer more to find it."
        };
        findings.insert(
            0,
            format!(
                "At {}, both senders kept up with what was offered{offer_more}",
                and_list(&kept)
            ),
        );
    }
    Some(Section {
        id: "ceiling",
        title: "The dispatcher against the raw sender",
        header: &HEADER,
        rows,
        note: format!(
            "The raw sender POSTs the same bytes over the same connection pools to the same receivers and does \
             nothing else (no signing, no lanes, no retries), so what it sustains is what this machine sends at \
             all with these receivers on it. Sustained: the median of the per-second delivery rates from the \
             first whole second with a delivery to the last (the warm-up's backlog before and the drain's tail \
             after left out), with a 95% bootstrap interval of that median; offered: what the window's events \
             owed per second. A sender fell behind when the drain after the window got over a tenth of its \
             deliveries and over twice what one keeping up leaves it (its mean latency's worth). {}",
            findings.join(" ")
        ),
    })
}

/// What one pair of points says, in a sentence or two from their own numbers.
fn finding(label: &str, d: &Side, raw: &Side, share: Option<(&Sustained, &Sustained, f64)>) -> String {
    let at = if label.is_empty() {
        String::new()
    } else {
        format!("At {label}, t")
    };
    let the = if label.is_empty() { "T" } else { "" };
    let Some((ds, rs, share)) = share else {
        return format!(
            "{at}{the}he run holds fewer than three whole seconds of deliveries for a sender, too few to say what \
             it sustained."
        );
    };
    if !raw.t.behind {
        let dispatcher = if !d.t.behind {
            "and so did the dispatcher"
        } else {
            "but the dispatcher did not"
        };
        return format!(
            "{at}{the}he raw sender kept up with the {} offered a second, {dispatcher}: this machine's ceiling lies \
             above what was offered, so offer more to find it.",
            number(raw.t.offered)
        );
    }
    let overlap = ds.interval.high >= rs.interval.low && rs.interval.high >= ds.interval.low;
    let (raw_rate, offered, dispatcher) = (number(rs.median), number(raw.t.offered), number(ds.median));
    if overlap {
        format!(
            "{at}{the}he raw sender sustained {raw_rate} a second of the {offered} offered, this machine's ceiling \
             with these receivers; the dispatcher sustained {dispatcher}, {share:.2}× of it (the two medians' \
             intervals overlap: within the noise of each other)."
        )
    } else if ds.median > rs.median {
        format!(
            "{at}{the}he raw sender sustained {raw_rate} a second of the {offered} offered; the dispatcher sustained \
             {dispatcher}, {share:.2}× as much, beyond the noise of the two medians: its own work (signing, lanes, \
             retries) did not hold it below what sending alone reached."
        )
    } else {
        format!(
            "{at}{the}he raw sender sustained {raw_rate} a second of the {offered} offered, this machine's ceiling \
             with these receivers; the dispatcher sustained {dispatcher}, {share:.2}× of it."
        )
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::rate_sweep;

    #[test]
    fn each_rate_pairs_the_senders_and_the_rates_both_kept_up_with_are_said_once() {
        let r = rate_sweep(&[
            (
                "dispatcher",
                [
                    (1000.0, 1000.0),
                    (2000.0, 2000.0),
                    (3000.0, 1800.0),
                    (4000.0, 1500.0),
                ],
            ),
            (
                "raw",
                [
                    (1000.0, 1000.0),
                    (2000.0, 2000.0),
                    (3000.0, 2000.0),
                    (4000.0, 2000.0),
                ],
            ),
        ]);
        let s = section(&r).unwrap();
        assert_eq!(s.rows.len(), 8);
        // At the third rate: 1,800 of the raw sender's 2,000.
        assert_eq!(s.rows[4].1[0], "dispatcher at events.rate=3");
        assert_eq!(s.rows[4].1[4], "0.90×");
        assert!(
            s.note
                .contains("At events.rate=1 and events.rate=2, both senders kept up with what was offered. "),
            "{}",
            s.note
        );
        assert!(!s.note.contains("offer more"), "{}", s.note);
        assert!(s
            .note
            .contains("At events.rate=4, the raw sender sustained 2000 a second of the 4000 offered"));
    }
}
