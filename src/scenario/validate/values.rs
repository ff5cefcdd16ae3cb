//! Checks of one value: a whole number, a number or a duration within its range, or one of
//! a list of words, each refused with the field, what was expected and what was found.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::Check;
use crate::scenario::error::nearest;
use crate::scenario::humane;
use crate::scenario::raw::S;
use crate::scenario::ScenarioError;

impl Check<'_> {
    pub(super) fn choice_error<T>(
        &self,
        at: &S<T>,
        field: &str,
        found: &str,
        choices: &[&str],
    ) -> ScenarioError {
        let owned: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
        let list = choices
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let hint = nearest(found, &owned)
            .map(|n| format!(" did you mean `{n}`?"))
            .unwrap_or_default();
        self.map.error(
            at.span(),
            field,
            format!("expected one of {list}, found `{found}`.{hint}"),
        )
    }

    pub(super) fn int(
        &self,
        v: &Option<S<i64>>,
        field: &str,
        default: i64,
        range: RangeInclusive<i64>,
    ) -> Result<i64, ScenarioError> {
        let Some(v) = v else { return Ok(default) };
        let x = *v.get_ref();
        if !range.contains(&x) {
            let expected = if *range.end() == i64::MAX {
                format!("a whole number of at least {}", range.start())
            } else {
                format!("a whole number from {} to {}", range.start(), range.end())
            };
            return Err(self
                .map
                .error(v.span(), field, format!("expected {expected}, found {x}")));
        }
        Ok(x)
    }

    pub(super) fn float(
        &self,
        v: &Option<S<f64>>,
        field: &str,
        default: f64,
        range: RangeInclusive<f64>,
    ) -> Result<f64, ScenarioError> {
        let Some(v) = v else { return Ok(default) };
        let x = *v.get_ref();
        if !x.is_finite() || !range.contains(&x) {
            let expected = if *range.start() > 0.0 && *range.start() < 1e-3 {
                format!("a number greater than 0 and at most {}", range.end())
            } else {
                format!("a number from {} to {}", range.start(), range.end())
            };
            return Err(self
                .map
                .error(v.span(), field, format!("expected {expected}, found {x}")));
        }
        Ok(x)
    }

    pub(super) fn duration(
        &self,
        v: &Option<S<String>>,
        field: &str,
        default: Duration,
        positive: bool,
    ) -> Result<Duration, ScenarioError> {
        let min = if positive {
            Duration::from_nanos(1)
        } else {
            Duration::ZERO
        };
        self.duration_in(v, field, default, min..=Duration::from_secs(7 * 24 * 3600))
    }

    pub(super) fn duration_in(
        &self,
        v: &Option<S<String>>,
        field: &str,
        default: Duration,
        range: RangeInclusive<Duration>,
    ) -> Result<Duration, ScenarioError> {
        let Some(v) = v else { return Ok(default) };
        let d = humane::parse(v.get_ref()).map_err(|m| self.map.error(v.span(), field, m))?;
        if !range.contains(&d) {
            let low = if range.start().is_zero() {
                "0s".to_string()
            } else if *range.start() == Duration::from_nanos(1) {
                "more than 0s".to_string()
            } else {
                humane::format(*range.start())
            };
            return Err(self.map.error(
                v.span(),
                field,
                format!(
                    "expected a duration from {low} to {}, found {:?}",
                    humane::format(*range.end()),
                    v.get_ref()
                ),
            ));
        }
        Ok(d)
    }
}
