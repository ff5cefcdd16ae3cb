//! How a sweep's points become lines: the first swept parameter with a number at every point
//! is the x axis, and the points that share the other swept values (a sender, a client count)
//! make one line per mode. A sweep of one parameter has one line per mode; one of a rate and
//! a sender has a line per sender.

use crate::event::Mode;
use crate::results::{ModeResult, Results, SweepPoint};

/// Where a sweep's points lie.
pub struct Axis {
    /// The x parameter's path, or `None` when no swept parameter is a number at every point
    /// (the x axis is then the points' index).
    pub path: Option<String>,
    /// The x axis's caption, with its unit.
    pub desc: String,
    /// Each point's x.
    pub xs: Vec<f64>,
    /// Whether every x is positive (so a log axis can hold them).
    pub positive: bool,
    /// The lines' labels, the other swept values (`webhook.sender=raw`), in the order the
    /// points first give them; one empty label when nothing else was swept.
    pub groups: Vec<String>,
    /// Each point's index into `groups`.
    pub group_of: Vec<usize>,
    /// Each group's other swept values alone (`raw`), for a legend.
    short: Vec<String>,
}

impl Axis {
    /// The axis of `r`'s points.
    pub fn of(r: &Results) -> Axis {
        let numeric = r.points.first().and_then(|first| {
            (0..first.values.len()).find(|&i| {
                r.points.iter().all(|p| {
                    p.values
                        .get(i)
                        .is_some_and(|v| v.number.is_some() && v.path == first.values[i].path)
                })
            })
        });
        let Some(i) = numeric else {
            // Every point on its own x, all on one line.
            return Axis {
                path: None,
                desc: "sweep point".to_string(),
                xs: (1..=r.points.len()).map(|i| i as f64).collect(),
                positive: false,
                groups: vec![String::new()],
                group_of: vec![0; r.points.len()],
                short: vec![String::new()],
            };
        };
        let first = &r.points[0].values[i];
        let xs: Vec<f64> = r.points.iter().filter_map(|p| p.values[i].number).collect();
        let unit = if first.value.parse::<f64>().is_err() {
            " (ms)"
        } else {
            ""
        };
        let (mut groups, mut short): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
        let group_of = r
            .points
            .iter()
            .map(|p| {
                let label = others(p, &first.path);
                groups.iter().position(|g| *g == label).unwrap_or_else(|| {
                    groups.push(label);
                    let values = p.values.iter().filter(|v| v.path != first.path);
                    short.push(values.map(|v| v.value.as_str()).collect::<Vec<_>>().join(", "));
                    groups.len() - 1
                })
            })
            .collect();
        Axis {
            path: Some(first.path.clone()),
            desc: format!("{}{unit}", first.path),
            positive: xs.iter().all(|x| *x > 0.0),
            xs,
            groups,
            group_of,
            short,
        }
    }

    /// Each group's other swept values alone (`raw`), for a legend.
    pub fn short_labels(&self) -> Vec<String> {
        self.short.clone()
    }

    /// Whether the points make more than one line per mode.
    pub fn grouped(&self) -> bool {
        self.groups.len() > 1
    }
}

/// The swept values of `p` other than `path`'s, as a label.
pub fn others(p: &SweepPoint, path: &str) -> String {
    p.values
        .iter()
        .filter(|v| v.path != path)
        .map(|v| format!("{}={}", v.path, v.value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One mode's line through the points of one group.
pub struct Line<'a, T> {
    /// The mode.
    pub mode: Mode,
    /// Its group's index in [`Axis::groups`].
    pub group: usize,
    /// What `at` gave at each of its points, in the points' order.
    pub points: Vec<T>,
    /// The points' results, beside.
    pub results: Vec<(&'a SweepPoint, &'a ModeResult)>,
}

/// The modes of a sweep, in its first point's order.
pub fn modes(r: &Results) -> Vec<Mode> {
    r.points
        .first()
        .map(|p| p.modes.iter().map(|m| m.mode).collect())
        .unwrap_or_default()
}

/// Per mode and group, `at(its result at a point, the point's x)` over the points, where it
/// gives one: modes in order, each mode's groups in order.
pub fn lines<'a, T>(
    r: &'a Results,
    axis: &Axis,
    at: impl Fn(&ModeResult, f64) -> Option<T>,
) -> Vec<Line<'a, T>> {
    let mut out = Vec::new();
    for mode in modes(r) {
        for group in 0..axis.groups.len() {
            let mut line = Line {
                mode,
                group,
                points: Vec::new(),
                results: Vec::new(),
            };
            for ((p, x), g) in r.points.iter().zip(&axis.xs).zip(&axis.group_of) {
                let Some(m) = p.modes.iter().find(|m| m.mode == mode).filter(|_| *g == group) else {
                    continue;
                };
                if let Some(v) = at(m, *x) {
                    line.points.push(v);
                    line.results.push((p, m));
                }
            }
            if !line.results.is_empty() {
                out.push(line);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::SweptValue;

    fn point(r: &Results, values: &[(&str, &str, Option<f64>)]) -> SweepPoint {
        let values: Vec<SweptValue> = values
            .iter()
            .map(|(path, value, number)| SweptValue {
                path: path.to_string(),
                value: value.to_string(),
                number: *number,
            })
            .collect();
        SweepPoint {
            label: String::new(),
            values,
            scenario: r.scenario.clone(),
            modes: r.modes.clone(),
        }
    }

    #[test]
    fn a_numeric_parameter_is_the_axis_and_the_others_make_lines() {
        let mut r = crate::results::one_run_fixture();
        r.points = vec![
            point(
                &r,
                &[
                    ("events.rate", "100", Some(100.0)),
                    ("webhook.sender", "dispatcher", None),
                ],
            ),
            point(
                &r,
                &[
                    ("events.rate", "100", Some(100.0)),
                    ("webhook.sender", "raw", None),
                ],
            ),
            point(
                &r,
                &[
                    ("events.rate", "200", Some(200.0)),
                    ("webhook.sender", "dispatcher", None),
                ],
            ),
            point(
                &r,
                &[
                    ("events.rate", "200", Some(200.0)),
                    ("webhook.sender", "raw", None),
                ],
            ),
        ];
        let axis = Axis::of(&r);
        assert_eq!(axis.path.as_deref(), Some("events.rate"));
        assert_eq!(axis.xs, [100.0, 100.0, 200.0, 200.0]);
        assert_eq!(axis.groups, ["webhook.sender=dispatcher", "webhook.sender=raw"]);
        assert_eq!(axis.group_of, [0, 1, 0, 1]);
        assert_eq!(axis.short_labels(), ["dispatcher", "raw"]);
        let first = r.modes[0].mode;
        let lines: Vec<_> = lines(&r, &axis, |_, x| Some(x))
            .into_iter()
            .filter(|l| l.mode == first)
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].group, &lines[0].points), (0, &vec![100.0, 200.0]));
        assert_eq!((lines[1].group, &lines[1].points), (1, &vec![100.0, 200.0]));
    }

    #[test]
    fn the_numeric_parameter_need_not_come_first_and_without_one_the_index_is_the_axis() {
        let mut r = crate::results::one_run_fixture();
        r.points = vec![
            point(
                &r,
                &[
                    ("webhook.sender", "dispatcher", None),
                    ("poll.interval", "1s", Some(1000.0)),
                ],
            ),
            point(
                &r,
                &[
                    ("webhook.sender", "raw", None),
                    ("poll.interval", "1s", Some(1000.0)),
                ],
            ),
        ];
        let axis = Axis::of(&r);
        assert_eq!(axis.desc, "poll.interval (ms)");
        assert!(axis.grouped());
        r.points.iter_mut().for_each(|p| p.values.truncate(1));
        let axis = Axis::of(&r);
        assert!(!axis.grouped());
        assert_eq!((axis.path, axis.xs), (None, vec![1.0, 2.0]));
    }
}
