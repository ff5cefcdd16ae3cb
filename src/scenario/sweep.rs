//! Sweeps: `[sweep]` names scenario parameters by their dotted path and gives each a list of
//! values; `run` then executes every point, combined as a cross product (the default) or
//! zipped (`combine = "zip"`), and the report draws each metric against the swept values.
//!
//! ```toml
//! [sweep]
//! "poll.interval" = ["100ms", "1s", "5s"]
//! "clients.count" = [10, 100, 1000]
//! ```
//!
//! A point is the scenario with the values written into its resolved TOML and validated again,
//! so every range check applies to swept values as it does to written ones.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Scenario;

/// How the value lists combine into points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Every combination of the values.
    Cross,
    /// The first values together, then the second ones, …; the lists must be equally long.
    Zip,
}

/// One swept parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Dotted path into the scenario, e.g. `poll.interval`.
    pub path: String,
    /// The values it takes.
    pub values: Vec<toml::Value>,
}

/// A scenario's `[sweep]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "BTreeMap<String, toml::Value>",
    into = "BTreeMap<String, toml::Value>"
)]
pub struct Sweep {
    /// How the lists combine.
    pub combine: Combine,
    /// The parameters, in path order.
    pub params: Vec<Param>,
}

impl TryFrom<BTreeMap<String, toml::Value>> for Sweep {
    type Error = String;
    fn try_from(mut map: BTreeMap<String, toml::Value>) -> Result<Self, String> {
        let combine = match map.remove("combine") {
            None => Combine::Cross,
            Some(toml::Value::String(s)) if s == "cross" => Combine::Cross,
            Some(toml::Value::String(s)) if s == "zip" => Combine::Zip,
            Some(other) => return Err(format!("`combine` is \"cross\" or \"zip\", not {other}")),
        };
        let params = map
            .into_iter()
            .map(|(path, v)| match v {
                toml::Value::Array(values) if !values.is_empty() => Ok(Param { path, values }),
                _ => Err(format!("`{path}` needs a non-empty list of values")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sweep { combine, params })
    }
}

impl From<Sweep> for BTreeMap<String, toml::Value> {
    fn from(s: Sweep) -> Self {
        let mut map: BTreeMap<String, toml::Value> = s
            .params
            .into_iter()
            .map(|p| (p.path, toml::Value::Array(p.values)))
            .collect();
        let combine = match s.combine {
            Combine::Cross => "cross",
            Combine::Zip => "zip",
        };
        map.insert("combine".into(), toml::Value::String(combine.into()));
        map
    }
}

/// One point of a sweep: which values, and the scenario they make.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// (path, value) for each swept parameter.
    pub values: Vec<(String, toml::Value)>,
    /// The scenario with those values, validated.
    pub scenario: Scenario,
}

/// What went wrong building a point: which parameter (if one is to blame) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointError {
    /// The swept path at fault, when one is.
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Paths a sweep may not touch: they shape the run rather than parameterize it.
const FIXED: [&str; 4] = ["name", "modes", "sweep", "thresholds"];

/// A display form of a swept value: `1s`, `100`, `"x"`.
pub fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A swept value as a number for an axis: durations in ms, numbers as they are.
pub fn as_number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        toml::Value::String(s) => super::humane::parse(s).ok().map(|d| d.as_secs_f64() * 1000.0),
        _ => None,
    }
}

/// `poll.interval=1s, clients.count=100`.
pub fn label(values: &[(String, toml::Value)]) -> String {
    values
        .iter()
        .map(|(p, v)| format!("{p}={}", show(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Sweep {
    /// The combinations of values, in order.
    pub fn combinations(&self) -> Result<Vec<Vec<(String, toml::Value)>>, PointError> {
        match self.combine {
            Combine::Zip => {
                let n = self.params[0].values.len();
                if let Some(p) = self.params.iter().find(|p| p.values.len() != n) {
                    return Err(PointError {
                        path: Some(p.path.clone()),
                        message: format!(
                            "zipped lists must be equally long: `{}` has {n} values, `{}` has {}",
                            self.params[0].path,
                            p.path,
                            p.values.len()
                        ),
                    });
                }
                Ok((0..n)
                    .map(|i| {
                        self.params
                            .iter()
                            .map(|p| (p.path.clone(), p.values[i].clone()))
                            .collect()
                    })
                    .collect())
            }
            Combine::Cross => {
                let mut points: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
                for p in &self.params {
                    points = points
                        .into_iter()
                        .flat_map(|prefix| {
                            p.values.iter().map(move |v| {
                                let mut next = prefix.clone();
                                next.push((p.path.clone(), v.clone()));
                                next
                            })
                        })
                        .collect();
                }
                Ok(points)
            }
        }
    }

    /// Builds and validates every point of `base` (a scenario whose `sweep` is this one).
    pub fn points(&self, base: &Scenario) -> Result<Vec<Point>, PointError> {
        let mut plain = base.clone();
        plain.sweep = None;
        let table = toml::Value::try_from(&plain).expect("a scenario converts to TOML");
        let leaves = leaf_paths(&table, "");
        for p in &self.params {
            let fixed = FIXED
                .iter()
                .any(|f| p.path == *f || p.path.starts_with(&format!("{f}.")));
            if fixed {
                return Err(PointError {
                    path: Some(p.path.clone()),
                    message: format!("`{}` cannot be swept: it shapes the run itself", p.path),
                });
            }
            if leaves.contains(&p.path) {
                continue;
            }
            // A key left at its default may be missing from the resolved table (`webhook.sender`,
            // `webhook.endpoint_concurrency`): where its table is there, the point's own
            // validation judges the key and its value.
            let known = match p.path.rsplit_once('.') {
                Some((parent, key)) if table_at(&table, parent).is_some() => {
                    unknown_key(&table, &p.path, &p.values[0])
                        .map(|expected| super::nearest_name(key, &expected).map(|n| format!("{parent}.{n}")))
                }
                _ => Some(super::nearest_name(&p.path, &leaves).map(str::to_string)),
            };
            if let Some(near) = known {
                let hint = near.map(|n| format!(" did you mean `{n}`?")).unwrap_or_default();
                return Err(PointError {
                    path: Some(p.path.clone()),
                    message: format!("no parameter `{}`.{hint}", p.path),
                });
            }
        }
        self.combinations()?
            .into_iter()
            .enumerate()
            .map(|(i, values)| {
                let mut t = table.clone();
                for (path, v) in &values {
                    set_path(&mut t, path, v.clone());
                }
                let text = toml::to_string(&t).expect("a table serializes");
                let file = format!("sweep point {} ({})", i + 1, label(&values));
                let scenario = Scenario::parse(Path::new(&file), &text).map_err(|e| PointError {
                    path: values.iter().map(|(p, _)| p.clone()).find(|p| e.field == *p),
                    message: format!(
                        "point {} ({}): `{}`: {}",
                        i + 1,
                        label(&values),
                        e.field,
                        e.message
                    ),
                })?;
                Ok(Point { values, scenario })
            })
            .collect()
    }
}

/// The keys its table allows, when the scenario's format does not know the key at `path`
/// (judged by writing `value` there: an unknown key is refused before any value is read).
fn unknown_key(table: &toml::Value, path: &str, value: &toml::Value) -> Option<Vec<String>> {
    let mut t = table.clone();
    set_path(&mut t, path, value.clone());
    let text = toml::to_string(&t).expect("a table serializes");
    let e = Scenario::parse(Path::new("sweep point"), &text).err()?;
    super::error::unknown_keys(&e.message)
}

/// The table at a dotted path, if there is one.
fn table_at<'a>(v: &'a toml::Value, path: &str) -> Option<&'a toml::Table> {
    path.split('.')
        .try_fold(v, |cur, part| cur.as_table()?.get(part))?
        .as_table()
}

/// Every dotted path to a non-table value.
fn leaf_paths(v: &toml::Value, prefix: &str) -> Vec<String> {
    match v {
        toml::Value::Table(t) => t
            .iter()
            .flat_map(|(k, v)| {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(v, &path)
            })
            .collect(),
        _ => vec![prefix.to_string()],
    }
}

fn set_path(v: &mut toml::Value, path: &str, value: toml::Value) {
    let mut cur = v;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let table = cur.as_table_mut().expect("checked: the path exists");
        if parts.peek().is_none() {
            table.insert(part.to_string(), value);
            return;
        }
        cur = table.get_mut(part).expect("checked: the path exists");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(extra: &str) -> Result<Scenario, crate::scenario::ScenarioError> {
        let text =
            format!("name = \"s\"\nduration = \"1s\"\n[events]\nrate = 10\n[clients]\ncount = 3\n{extra}");
        Scenario::parse(Path::new("s.toml"), &text)
    }

    #[test]
    fn cross_combines_every_value_in_file_order() {
        let s = base("[sweep]\n\"poll.interval\" = [\"100ms\", \"1s\"]\n\"clients.count\" = [2, 4, 8]\n")
            .unwrap();
        let sweep = s.sweep.as_ref().unwrap();
        assert_eq!(
            sweep.params[0].path, "poll.interval",
            "the file's order, not alphabetical"
        );
        let points = sweep.points(&s).unwrap();
        assert_eq!(points.len(), 6);
        assert_eq!(label(&points[1].values), "poll.interval=100ms, clients.count=4");
        assert_eq!(
            points[5].scenario.poll.interval,
            std::time::Duration::from_secs(1)
        );
        assert_eq!(points[5].scenario.clients.count, 8);
        assert!(points.iter().all(|p| p.scenario.sweep.is_none()));
    }

    #[test]
    fn zip_pairs_values_and_needs_equal_lengths() {
        let s = base("[sweep]\ncombine = \"zip\"\n\"poll.interval\" = [\"100ms\", \"1s\"]\n\"clients.count\" = [2, 4]\n").unwrap();
        let points = s.sweep.as_ref().unwrap().points(&s).unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(
            (
                points[1].scenario.clients.count,
                points[1].scenario.poll.interval.as_millis()
            ),
            (4, 1000)
        );
        let e =
            base("[sweep]\ncombine = \"zip\"\n\"poll.interval\" = [\"100ms\"]\n\"clients.count\" = [2, 4]\n")
                .unwrap_err();
        assert!(e.message.contains("equally long"), "{e}");
    }

    #[test]
    fn paths_that_do_not_exist_or_shape_the_run_are_refused() {
        let e = base("[sweep]\n\"poll.intervall\" = [\"1s\"]\n").unwrap_err();
        assert_eq!((e.line, e.column), (8, 1));
        assert!(e.message.contains("did you mean `poll.interval`?"), "{e}");
        let e = base("[sweep]\n\"modes\" = [[\"poll\"]]\n").unwrap_err();
        assert!(e.message.contains("cannot be swept"), "{e}");
        let e = base("[sweep]\n\"poll.interval\" = []\n").unwrap_err();
        assert!(e.message.contains("non-empty list"), "{e}");
    }

    #[test]
    fn swept_values_are_validated_like_written_ones() {
        let e = base("[sweep]\n\"events.rate\" = [10, -1]\n").unwrap_err();
        assert!(
            e.message
                .starts_with("point 2 (events.rate=-1): `events.rate`: expected a number greater than 0"),
            "{e}"
        );
        assert_eq!(e.field, "sweep.\"events.rate\"");
    }

    #[test]
    fn keys_left_at_their_default_can_be_swept() {
        let s = base("[sweep]\n\"webhook.sender\" = [\"dispatcher\", \"raw\"]\n\"webhook.endpoint_concurrency\" = [1, 8]\n").unwrap();
        let points = s.sweep.as_ref().unwrap().points(&s).unwrap();
        let raw = &points[2].scenario.webhook;
        assert_eq!(
            (raw.sender, raw.endpoint_concurrency),
            (crate::scenario::Sender::Raw, Some(1))
        );
        assert!(!raw.signing, "the raw sender never signs");
        assert!(points[0].scenario.webhook.signing);
        let e = base("[sweep]\n\"webhook.sendr\" = [\"raw\"]\n").unwrap_err();
        assert!(e.message.contains("did you mean `webhook.sender`?"), "{e}");
        let e = base("[sweep]\n\"webhook.sender\" = [\"fast\"]\n").unwrap_err();
        assert!(e.message.contains("expected one of `dispatcher`, `raw`"), "{e}");
    }

    #[test]
    fn values_read_as_numbers_for_axes() {
        assert_eq!(as_number(&toml::Value::String("250ms".into())), Some(250.0));
        assert_eq!(as_number(&toml::Value::Integer(7)), Some(7.0));
        assert_eq!(as_number(&toml::Value::String("poisson".into())), None);
    }
}
