//! `pushpull compare` in words: a terminal table, and `compare.html` and `compare.md` pages,
//! of every figure's change between a base and new results, with criterion's verdicts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::figures;
use super::html::{esc, page_start};
use crate::results::compare::{Change, Comparison, Verdict};

/// Column headers.
const HEADER: [&str; 7] = ["point", "mode", "figure", "base", "new", "change", "verdict"];

/// What the two files were, for the page's heading.
pub struct Sides<'a> {
    /// The scenario's name.
    pub scenario: &'a str,
    /// Where the base came from.
    pub base: &'a Path,
    /// Where the new results came from.
    pub new: &'a Path,
}

fn change(c: &Change) -> String {
    let sign = if c.delta() >= 0.0 { "+" } else { "−" };
    let amount = figures::amount(c.figure, c.delta().abs());
    match c.relative() {
        Some(r) => format!("{sign}{amount} ({sign}{:.1}%)", r.abs() * 100.0),
        None => format!("{sign}{amount}"),
    }
}

fn rows(c: &Comparison) -> Vec<Vec<String>> {
    c.changes
        .iter()
        .map(|ch| {
            vec![
                ch.point.clone(),
                ch.mode.to_string(),
                ch.figure.name().to_string(),
                figures::value(ch.figure, ch.base),
                figures::value(ch.figure, ch.new),
                change(ch),
                ch.verdict.words().to_string(),
            ]
        })
        .collect()
}

/// Whether any change came from a sweep point (else the point column is left out).
fn has_points(c: &Comparison) -> bool {
    c.changes.iter().any(|ch| !ch.point.is_empty())
}

/// Sentences for above the table: other machines, unmatched modes, the count of each verdict.
fn notes(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(diff) = &c.machines_differ {
        out.push(format!(
            "The two ran on different machines ({diff}): a change may be the machine's, not the code's."
        ));
    }
    for (point, mode, side) in &c.unmatched {
        let at = if point.is_empty() {
            String::new()
        } else {
            format!(" at {point}")
        };
        out.push(format!(
            "{mode}{at} ran only in the {side} results; it is not compared."
        ));
    }
    let count = |v: Verdict| c.changes.iter().filter(|ch| ch.verdict == v).count();
    if count(Verdict::NotJudged) == c.changes.len() && !c.changes.is_empty() {
        out.push(
            "Neither side was repeated, so no change can be told from noise: run both with --repeat 5 to judge."
                .into(),
        );
    } else {
        out.push(format!(
            "{} regressed, {} improved, {} within noise{}. A change is judged beyond noise when the two runs' \
             bands (the bootstrap 95% interval of the median from 5 repetitions, else the range) do not overlap \
             and it is larger than 1% (criterion's noise threshold).",
            count(Verdict::Regressed),
            count(Verdict::Improved),
            count(Verdict::WithinNoise),
            match count(Verdict::NotJudged) {
                0 => String::new(),
                n => format!(", {n} not judged"),
            }
        ));
    }
    out
}

fn columns(c: &Comparison, row: Vec<String>) -> Vec<String> {
    if has_points(c) {
        row
    } else {
        row.into_iter().skip(1).collect()
    }
}

/// The terminal table with its notes.
pub fn render_text(c: &Comparison) -> String {
    let mut all = vec![columns(c, HEADER.map(String::from).to_vec())];
    all.extend(rows(c).into_iter().map(|r| columns(c, r)));
    let mut out = super::table::align(&all);
    for n in notes(c) {
        let _ = writeln!(out, "{n}");
    }
    out
}

/// The Markdown page.
pub fn render_markdown(c: &Comparison, sides: &Sides) -> String {
    let mut m = format!(
        "# pushpull compare: {}\n\nBase: `{}`. New: `{}`.\n\n",
        sides.scenario,
        sides.base.display(),
        sides.new.display()
    );
    for n in notes(c) {
        let _ = writeln!(m, "{n}\n");
    }
    let header = columns(c, HEADER.map(String::from).to_vec());
    let _ = writeln!(m, "| {} |", header.join(" | "));
    let _ = writeln!(m, "|{}", "---|".repeat(header.len()));
    for r in rows(c) {
        let _ = writeln!(m, "| {} |", columns(c, r).join(" | "));
    }
    m
}

/// The HTML page.
pub fn render_html(c: &Comparison, sides: &Sides) -> String {
    let mut h = page_start(&format!("compare {}", sides.scenario));
    let _ = writeln!(
        h,
        "<h1>pushpull compare: {}</h1>\n<p class=\"lead\">Base: <code>{}</code>. New: <code>{}</code>.</p>",
        esc(sides.scenario),
        esc(&sides.base.display().to_string()),
        esc(&sides.new.display().to_string())
    );
    for n in notes(c) {
        let class = if n.contains("different machines") {
            " class=\"warn\""
        } else {
            ""
        };
        let _ = writeln!(h, "<p{class}>{}</p>", esc(&n));
    }
    h.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
    for col in columns(c, HEADER.map(String::from).to_vec()) {
        let _ = write!(h, "<th>{}</th>", esc(&col));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (ch, r) in c.changes.iter().zip(rows(c)) {
        let class = match ch.verdict {
            Verdict::Regressed => " class=\"differs\"",
            _ => "",
        };
        let _ = write!(h, "<tr{class}>");
        for cell in columns(c, r) {
            let _ = write!(h, "<td>{}</td>", esc(&cell));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n</main>\n</body>\n</html>\n");
    h
}

/// Writes `compare.html` and `compare.md` into `dir`; returns the HTML page's path.
pub fn write(c: &Comparison, sides: &Sides, dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let html = dir.join("compare.html");
    std::fs::write(&html, render_html(c, sides)).with_context(|| format!("writing {}", html.display()))?;
    let md = dir.join("compare.md");
    std::fs::write(&md, render_markdown(c, sides)).with_context(|| format!("writing {}", md.display()))?;
    Ok(html)
}
