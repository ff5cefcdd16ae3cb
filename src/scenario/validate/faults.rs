//! `[[faults]]`: when each fault strikes, for how long, at what share of the clients, and its
//! kind with the parameters that kind takes. Every kind is one row of [`KINDS`]: its name,
//! its parameters and how it is built, so a kind cannot be accepted by one check and built
//! as another.

use std::time::Duration;

use super::Check;
use crate::scenario::humane;
use crate::scenario::raw::{RawAnswer, RawFault, RawScenario};
use crate::scenario::{DownAnswer, Fault, FaultKind, Scenario, ScenarioError};

/// Builds a kind from its fault's own parameters (`faults[i]`), those it does not take
/// already refused.
type Build = fn(&Check<'_>, &RawFault, usize, &Scenario) -> Result<FaultKind, ScenarioError>;

/// Every fault kind: its name, the parameters it takes besides `at`, `for` and `share`, and
/// how it is built.
pub(super) const KINDS: [(&str, &[&str], Build); 7] = [
    ("receiver_down", &["answer", "retry_after"], receiver_down),
    ("receiver_slow", &["delay"], |c, f, i, s| {
        let delay = c.duration(&f.delay, &field(i, "delay"), s.webhook.timeout * 2, true)?;
        Ok(FaultKind::ReceiverSlow { delay })
    }),
    ("receiver_flaky", &["probability"], |c, f, i, _| {
        let probability = c.float(&f.probability, &field(i, "probability"), 0.5, 0.0..=1.0)?;
        Ok(FaultKind::ReceiverFlaky { probability })
    }),
    ("receiver_gone", &[], |_, _, _, _| Ok(FaultKind::ReceiverGone)),
    ("stream_cut", &[], |_, _, _, _| Ok(FaultKind::StreamCut)),
    ("client_pause", &[], |_, _, _, _| Ok(FaultKind::ClientPause)),
    ("latency", &["delay", "jitter"], latency),
];

/// `faults[i].name`.
fn field(i: usize, name: &str) -> String {
    format!("faults[{i}].{name}")
}

impl Check<'_> {
    pub(super) fn faults(&self, raw: &RawScenario, s: &Scenario) -> Result<Vec<Fault>, ScenarioError> {
        let run = s.warmup + s.duration;
        let mut out = Vec::new();
        for (i, f) in raw.faults.iter().flatten().enumerate() {
            let at = self.duration(&Some(f.at.clone()), &field(i, "at"), Duration::ZERO, false)?;
            if at >= run {
                return Err(self.map.error(
                    f.at.span(),
                    &field(i, "at"),
                    format!(
                        "expected a time before the run ends ({} of warm-up and duration), found {:?}",
                        humane::format(run),
                        f.at.get_ref()
                    ),
                ));
            }
            let kind = self.fault_kind(f, i, s)?;
            if !self.resolved && !s.modes.iter().any(|m| kind.applies_to(*m)) {
                let modes: Vec<String> = kind.modes().iter().map(|m| format!("`{m}`")).collect();
                return Err(self.map.error(
                    f.kind.span(),
                    &field(i, "kind"),
                    format!(
                        "`{}` affects only {}, and this scenario runs none of them",
                        kind.name(),
                        modes.join(", ")
                    ),
                ));
            }
            out.push(Fault {
                kind,
                at,
                lasts: self.duration(&Some(f.lasts.clone()), &field(i, "for"), Duration::ZERO, true)?,
                share: self.float(&f.share, &field(i, "share"), 1.0, 1e-9..=1.0)?,
            });
        }
        Ok(out)
    }

    /// The kind and its own parameters; a parameter the kind does not take is refused.
    fn fault_kind(&self, f: &RawFault, i: usize, s: &Scenario) -> Result<FaultKind, ScenarioError> {
        let name = f.kind.get_ref().as_str();
        let Some((_, takes, build)) = KINDS.iter().find(|(n, _, _)| *n == name) else {
            let names = KINDS.map(|(n, _, _)| n);
            return Err(self.choice_error(&f.kind, &field(i, "kind"), name, &names));
        };
        let given = [
            ("answer", f.answer.as_ref().map(|v| v.span())),
            ("retry_after", f.retry_after.as_ref().map(|v| v.span())),
            ("delay", f.delay.as_ref().map(|v| v.span())),
            ("jitter", f.jitter.as_ref().map(|v| v.span())),
            ("probability", f.probability.as_ref().map(|v| v.span())),
        ];
        for (param, span) in given {
            if let (Some(span), false) = (span, takes.contains(&param)) {
                let hint = if takes.is_empty() {
                    "it takes only `at`, `for` and `share`".to_string()
                } else {
                    let list: Vec<String> = takes.iter().map(|t| format!("`{t}`")).collect();
                    format!("it takes {}", list.join(", "))
                };
                return Err(self.map.error(
                    span,
                    &field(i, param),
                    format!("`{param}` does not apply to a `{name}` fault: {hint}"),
                ));
            }
        }
        build(self, f, i, s)
    }
}

/// `receiver_down`: answered 503 (with a `Retry-After`, if given) or by closing the connection.
fn receiver_down(c: &Check<'_>, f: &RawFault, i: usize, _: &Scenario) -> Result<FaultKind, ScenarioError> {
    let answer = match f.answer.as_ref().map(|a| (a, a.get_ref())) {
        None => DownAnswer::Unavailable,
        Some((_, RawAnswer::Status(503))) => DownAnswer::Unavailable,
        Some((_, RawAnswer::Word(w))) if w == "503" => DownAnswer::Unavailable,
        Some((_, RawAnswer::Word(w))) if w == "close" => DownAnswer::Close,
        Some((a, other)) => {
            let found = match other {
                RawAnswer::Status(n) => n.to_string(),
                RawAnswer::Word(w) => w.clone(),
            };
            return Err(c.choice_error(a, &field(i, "answer"), &found, &["503", "close"]));
        }
    };
    let retry_after = match &f.retry_after {
        None => None,
        Some(given) if answer == DownAnswer::Close => {
            return Err(c.map.error(
                given.span(),
                &field(i, "retry_after"),
                "a closed connection carries no `Retry-After`: use `answer = 503` with it",
            ))
        }
        Some(_) => Some(c.duration_in(
            &f.retry_after,
            &field(i, "retry_after"),
            Duration::ZERO,
            Duration::from_secs(1)..=Duration::from_secs(24 * 3600),
        )?),
    };
    Ok(FaultKind::ReceiverDown { answer, retry_after })
}

/// `latency`: a round trip added to every exchange, with a jitter of at most itself.
fn latency(c: &Check<'_>, f: &RawFault, i: usize, _: &Scenario) -> Result<FaultKind, ScenarioError> {
    let Some(d) = &f.delay else {
        return Err(c.map.error(
            f.kind.span(),
            &field(i, "delay"),
            "a `latency` fault needs `delay`, the round-trip time it adds (e.g. \"80ms\")",
        ));
    };
    let delay = c.duration(&f.delay, &field(i, "delay"), Duration::ZERO, true)?;
    let jitter = c.duration(&f.jitter, &field(i, "jitter"), Duration::ZERO, false)?;
    if jitter > delay {
        return Err(c.map.error(
            f.jitter.as_ref().map_or(d.span(), |j| j.span()),
            &field(i, "jitter"),
            format!(
                "expected a jitter of at most the delay ({}), found {}",
                humane::format(delay),
                humane::format(jitter)
            ),
        ));
    }
    Ok(FaultKind::Latency { delay, jitter })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn every_kind_in_the_table_builds_the_kind_of_its_name() {
        for (name, takes, _) in KINDS {
            let delay = if takes.contains(&"delay") {
                "delay = \"10ms\"\n"
            } else {
                ""
            };
            let text = format!(
                "name = \"k\"\nduration = \"5s\"\n[events]\nrate = 5\n[clients]\ncount = 4\n[[faults]]\nkind = \"{name}\"\nat = \"1s\"\nfor = \"1s\"\n{delay}"
            );
            let s = Scenario::parse(Path::new("k.toml"), &text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(s.faults[0].kind.name(), name);
        }
    }
}
