//! Scenario errors that point at the file, line and column, name the field and say what was
//! expected.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A mistake in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file the mistake is in.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The dotted path of the field, e.g. `events.rate` (empty when the file itself is unreadable).
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// The offending line of the file, for display.
    pub source_line: String,
}

impl std::error::Error for ScenarioError {}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "`{}`: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if !self.source_line.is_empty() {
            let gutter = self.line.to_string().len();
            write!(
                f,
                "\n{:gutter$} |\n{} | {}\n{:gutter$} | {:>col$}",
                "",
                self.line,
                self.source_line,
                "",
                "^",
                col = self.column
            )?;
        }
        Ok(())
    }
}

/// Turns byte offsets into line and column and knows which table a byte belongs to.
pub(crate) struct SourceMap<'a> {
    file: &'a Path,
    text: &'a str,
}

impl<'a> SourceMap<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        SourceMap { file, text }
    }

    /// An error at `span` about `field`.
    pub(crate) fn error(&self, span: Range<usize>, field: &str, message: impl Into<String>) -> ScenarioError {
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        ScenarioError {
            file: self.file.to_path_buf(),
            line: self.text[..start].matches('\n').count() + 1,
            column: self.text[line_start..start].chars().count() + 1,
            field: field.to_string(),
            message: message.into(),
            source_line: self.text[line_start..line_end].trim_end().to_string(),
        }
    }

    /// Translates a TOML parse or type error, naming the field it is about and, for an unknown
    /// key, the nearest valid one.
    pub(crate) fn toml_error(&self, e: &toml::de::Error) -> ScenarioError {
        let span = e.span().unwrap_or(0..0);
        let field = self.field_at(span.start);
        let message = e.message().trim().to_string();
        // The TOML parser has no words for some mistakes (found by fuzzing: `I=` at the end).
        let message = if message.is_empty() && span.start >= self.text.trim_end().len() {
            "the file ends where a value was expected".to_string()
        } else if message.is_empty() {
            "this is not valid TOML".to_string()
        } else {
            message
        };
        let message = match parse_unknown_field(&message) {
            Some((unknown, expected)) => unknown_key_message(&unknown, &expected),
            None => message,
        };
        self.error(span, &field, message)
    }

    /// The dotted path of the key written on the line holding `offset`, inside the table
    /// opened by the nearest `[header]` above it.
    fn field_at(&self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        let line = self.text[line_start..line_end].trim();
        let table = before[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('[') && !l.starts_with("[["))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
        if line.starts_with('[') {
            return line.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
        let key = line.split('=').next().unwrap_or("").trim();
        match (table, key.is_empty() || !line.contains('=')) {
            (Some(t), false) => format!("{t}.{key}"),
            (Some(t), true) => t,
            (None, false) => key.to_string(),
            (None, true) => String::new(),
        }
    }
}

/// Reads `unknown field `x`, expected one of `a`, `b`` into ("x", ["a", "b"]).
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).map(str::to_string).collect();
    Some((unknown.to_string(), expected))
}

/// "unknown key `rat`: did you mean `rate`? Valid keys here: ...".
pub(crate) fn unknown_key_message(unknown: &str, expected: &[String]) -> String {
    let mut msg = format!("unknown key `{unknown}`");
    if let Some(best) = nearest(unknown, expected) {
        msg.push_str(&format!(": did you mean `{best}`?"));
    }
    if !expected.is_empty() {
        let list = expected
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        msg.push_str(&format!(" (expected one of {list})"));
    }
    msg
}

/// The keys an "unknown key" message (of [`unknown_key_message`]) lists as valid, or None
/// for any other message.
pub(crate) fn unknown_keys(message: &str) -> Option<Vec<String>> {
    message.strip_prefix("unknown key `")?;
    let list = message.split_once("(expected one of ").map_or("", |(_, l)| l);
    Some(list.split('`').skip(1).step_by(2).map(str::to_string).collect())
}

/// The candidate closest to `word`, if any is close enough to be a plausible typo.
pub(crate) fn nearest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_message_is_parsed() {
        let (u, e) = parse_unknown_field("unknown field `rat`, expected one of `rate`, `arrival`").unwrap();
        assert_eq!(u, "rat");
        assert_eq!(e, vec!["rate", "arrival"]);
    }

    #[test]
    fn nearest_suggests_plausible_typos_only() {
        let keys = vec!["rate".to_string(), "arrival".to_string(), "topics".to_string()];
        assert_eq!(nearest("rat", &keys), Some("rate"));
        assert_eq!(nearest("topcis", &keys), Some("topics"));
        assert_eq!(nearest("zzzzzz", &keys), None);
    }

    #[test]
    fn positions_and_field_paths_come_from_the_text() {
        let text = "name = \"x\"\n[events]\nrate = -1\n";
        let map = SourceMap::new(Path::new("s.toml"), text);
        let offset = text.find("-1").unwrap();
        assert_eq!(map.field_at(offset), "events.rate");
        let err = map.error(offset..offset + 2, "events.rate", "must be > 0");
        assert_eq!((err.line, err.column), (3, 8));
        assert!(err
            .to_string()
            .starts_with("s.toml:3:8: `events.rate`: must be > 0"));
    }
}
