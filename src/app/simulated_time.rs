//! `simulate`'s progress: one bar per mode in simulated time (with the capacity search's
//! probes), or one over a sweep's points.

use crate::scenario::Scenario;

/// One progress bar per mode, in simulated time; for a sweep, one over its points.
pub(super) struct SimulatedTime {
    bars: Vec<(Option<crate::event::Mode>, indicatif::ProgressBar)>,
}

impl SimulatedTime {
    pub(super) fn new(s: &Scenario, show: bool) -> Self {
        let multi = indicatif::MultiProgress::new();
        let bar = |len: u64, template: &str, prefix: String| {
            let bar = if show {
                multi.add(indicatif::ProgressBar::new(len))
            } else {
                indicatif::ProgressBar::hidden()
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(template)
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(prefix);
            bar
        };
        let bars = match &s.sweep {
            Some(plan) => {
                let points = plan.combinations().map_or(0, |c| c.len()) as u64;
                let template =
                    "{prefix:>20} [{bar:30.magenta/blue}] {pos}/{len} points simulated, {elapsed} taken";
                vec![(None, bar(points, template, "sweep".into()))]
            }
            None => {
                let total_ms = (s.warmup + s.duration + s.drain).as_millis() as u64;
                let template = "{prefix:>20} [{bar:30.magenta/blue}] {msg} simulated, {elapsed} taken";
                s.modes
                    .iter()
                    .map(|&mode| (Some(mode), bar(total_ms, template, mode.to_string())))
                    .collect()
            }
        };
        SimulatedTime { bars }
    }

    pub(super) fn finish(&self) {
        for (_, bar) in &self.bars {
            bar.finish_and_clear();
        }
    }
}

impl crate::simulate::Watch for SimulatedTime {
    fn at(&self, mode: crate::event::Mode, at_ns: u64) {
        if let Some((_, bar)) = self.bars.iter().find(|(m, _)| *m == Some(mode)) {
            bar.set_position(at_ns / 1_000_000);
            bar.set_message(crate::scenario::humane::format(std::time::Duration::from_millis(
                at_ns / 1_000_000,
            )));
        }
    }

    fn probed(&self, mode: crate::event::Mode, cores: u32, p99_ms: f64) {
        if let Some((_, bar)) = self.bars.iter().find(|(m, _)| *m == Some(mode)) {
            bar.set_message(format!("capacity search: {cores} cores give p99 {p99_ms:.1} ms"));
        }
    }

    fn points_done(&self, done: usize, _total: usize) {
        if let Some((None, bar)) = self.bars.first() {
            bar.set_position(done as u64);
        }
    }
}
