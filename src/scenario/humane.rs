//! Durations as people write them (`"250ms"`, `"2m"`, `"1h 30m"`), in both directions.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses a humane duration string.
pub fn parse(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("expected a duration such as \"250ms\", \"5s\" or \"2m\", found {s:?} ({e})"))
}

/// Formats a duration the way [`parse`] reads it.
pub fn format(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    humantime::format_duration(d).to_string()
}

/// `#[serde(with = "humane")]` for a `Duration` field.
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*d))
}

/// See [`serialize`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).map_err(serde::de::Error::custom)
}

/// `#[serde(with = "humane::list")]` for a `Vec<Duration>` field.
pub mod list {
    use super::*;
    use serde::ser::SerializeSeq;

    /// Serializes each duration as a humane string.
    pub fn serialize<S: Serializer>(ds: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(ds.len()))?;
        for d in ds {
            seq.serialize_element(&format(*d))?;
        }
        seq.end()
    }

    /// Parses each humane string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| parse(s).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// `#[serde(with = "humane::option")]` for an `Option<Duration>` field.
pub mod option {
    use super::*;

    /// Serializes a present duration as a humane string.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&format(*d)),
            None => s.serialize_none(),
        }
    }

    /// Parses a present humane string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in ["250ms", "5s", "2m", "1h 30m", "0s"] {
            let d = parse(s).unwrap();
            assert_eq!(parse(&format(d)).unwrap(), d, "{s}");
        }
        assert!(parse("5 parsecs").is_err());
    }
}
