//! Where the model's work waited for something it had too little of (the webhook sender's
//! workers), second by second: the seconds in which any of it waited and the longest wait,
//! for the warnings that say where a sender or a server could not keep up though the window
//! as a whole may have been within its means.

use std::ops::Range;

const SECOND: u64 = 1_000_000_000;

/// The waits of the measured window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Waits {
    /// Whether anything waited in each second since the schedule started.
    seconds: Vec<bool>,
    /// The longest wait, ns, and when the work that waited it was ready.
    pub longest: (u64, u64),
}

impl Waits {
    /// Work ready at `at` waited `ns`.
    pub fn waited(&mut self, at: u64, ns: u64) {
        if ns == 0 {
            return;
        }
        let second = (at / SECOND) as usize;
        if self.seconds.len() <= second {
            self.seconds.resize(second + 1, false);
        }
        self.seconds[second] = true;
        if ns > self.longest.0 {
            self.longest = (ns, at);
        }
    }

    /// The seconds in which anything waited, as spans of consecutive seconds.
    pub fn spans(&self) -> Vec<Range<u64>> {
        spans((0..self.seconds.len() as u64).filter(|&s| self.seconds[s as usize]))
    }
}

/// Ascending seconds as spans of consecutive ones.
pub fn spans(seconds: impl Iterator<Item = u64>) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for second in seconds {
        match out.last_mut() {
            Some(span) if span.end == second => span.end = second + 1,
            _ => out.push(second..second + 1),
        }
    }
    out
}

/// Spans of seconds since the schedule started, in words: `8–17 s, 26 s`.
pub fn in_words(spans: &[Range<u64>]) -> String {
    spans
        .iter()
        .map(|r| match r.end - r.start {
            1 => format!("{} s", r.start),
            _ => format!("{}–{} s", r.start, r.end),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A wait in words: `66 ms`, `2.31 s`.
pub fn wait_in_words(ns: u64) -> String {
    if ns >= SECOND {
        format!("{:.2} s", ns as f64 / 1e9)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seconds_anything_waited_are_spans_and_the_longest_wait_is_kept() {
        let mut w = Waits::default();
        for (at, ns) in [(8.2, 1e6), (9.9, 5e6), (10.0, 0.0), (11.5, 2e9), (26.0, 1.0)] {
            w.waited((at * 1e9) as u64, ns as u64);
        }
        assert_eq!(w.spans(), vec![8..10, 11..12, 26..27]);
        assert_eq!(w.longest, (2_000_000_000, 11_500_000_000));
        assert_eq!(in_words(&w.spans()), "8–10 s, 11 s, 26 s");
        assert_eq!(
            (wait_in_words(65_900_000), wait_in_words(2_314_000_000)),
            ("65.9 ms".into(), "2.31 s".into())
        );
    }
}
