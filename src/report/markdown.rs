//! The Markdown report: renders on a code-hosting site, with the charts as image links to the
//! SVG files beside it.

use std::fmt::Write as _;

use super::charts::Rendered;
use super::html::number;
use super::{table, theory, verdict};
use crate::results::Results;

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders the whole report.
pub fn render(r: &Results, charts: &[Rendered]) -> String {
    let s = &r.scenario;
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# {}\n",
        super::titled(r, &format!("pushpull report: {}", s.name))
    );
    if !s.description.is_empty() {
        let _ = writeln!(m, "{}\n", s.description);
    }
    if let Some(note) = super::simulated_note(r) {
        let _ = writeln!(m, "**{note}**\n");
    }
    if !r.points.is_empty() {
        sweep(&mut m, r, charts);
        return m;
    }
    for v in verdict::verdicts(r) {
        let _ = writeln!(m, "- {v}");
    }
    let _ = writeln!(m, "\n## Comparison\n");
    table_header(&mut m, &[]);
    for row in table::rows(r) {
        let _ = writeln!(
            m,
            "| {} |",
            row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        );
    }
    for mr in &r.modes {
        for w in &mr.warnings {
            let _ = writeln!(m, "\n> Warning, {}: {}", mr.mode, cell(w));
        }
    }
    thresholds(&mut m, r);
    if super::outcomes::present(r) {
        let _ = writeln!(m, "\n## Where every delivery went\n");
        let _ = writeln!(m, "| {} |", super::outcomes::HEADER.join(" | "));
        let _ = writeln!(
            m,
            "|---|---|{}",
            "---:|".repeat(super::outcomes::HEADER.len() - 2)
        );
        for row in super::outcomes::rows(r) {
            let _ = writeln!(
                m,
                "| {} |",
                row.cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
            );
        }
        let _ = writeln!(m, "\n{}", super::outcomes::late_thresholds(r));
    }
    let claims = super::claims::judge(r);
    if !claims.is_empty() {
        let _ = writeln!(
            m,
            "\n## What people say, checked\n\n| claim | verdict | the numbers | the rule |\n|---|---|---|---|"
        );
        for c in claims {
            let _ = writeln!(
                m,
                "| {} | **{}** | {} | {} |",
                c.claim,
                c.judgement.words(),
                cell(&c.evidence),
                cell(&c.rule)
            );
        }
    }
    let _ = writeln!(
        m,
        "\n## Theory beside {}\n",
        if r.simulated.is_some() {
            "the model"
        } else {
            "measurement"
        }
    );
    let _ = writeln!(
        m,
        "| mode | metric | theory | {source} | {source} / theory | why they differ |",
        source = super::source(r)
    );
    let _ = writeln!(m, "|---|---|---:|---:|---:|---|");
    for c in theory::compare(r) {
        let flag = if c.differs() { " ⚠" } else { "" };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {}{flag} | {} |",
            c.mode,
            c.metric,
            number(c.predicted),
            number(c.measured),
            c.ratio.map_or("—".to_string(), |x| format!("{x:.2}")),
            cell(c.note.as_deref().unwrap_or(""))
        );
    }
    for s in super::sections(r) {
        section(&mut m, &s);
    }
    let _ = writeln!(m, "\n## Charts\n");
    for c in charts {
        let _ = writeln!(
            m,
            "![{}]({}.svg)\n",
            super::titled(r, c.chart.title()),
            c.chart.name()
        );
    }
    let _ = writeln!(m, "## Each mode\n");
    for mr in &r.modes {
        let _ = writeln!(m, "**{}**: {}\n", mr.mode, mr.theory.explanation);
    }
    let _ = writeln!(m, "## The scenario as run\n\n```toml\n{}```\n", s.to_toml());
    let e = &r.environment;
    let _ = writeln!(
        m,
        "## Environment\n\n- host: {}\n- CPU: {} ({} cores)\n- OS: {}\n- pushpull {}, commit {}\n- started {}\n- clock: {}",
        e.hostname,
        e.cpu_model,
        e.cores,
        e.os,
        e.pushpull_version,
        e.git_commit.as_deref().unwrap_or("unknown"),
        e.started_at,
        e.clock
    );
    m
}

fn thresholds(m: &mut String, r: &Results) {
    let outcomes = super::thresholds::evaluate(r);
    if !outcomes.is_empty() {
        let _ = writeln!(
            m,
            "\n## Thresholds\n\n| threshold | {} | result |\n|---|---:|---|",
            super::source(r)
        );
        for o in &outcomes {
            let _ = writeln!(
                m,
                "| {} | {} | {} |",
                cell(&o.threshold),
                o.measured.map_or("no data".to_string(), number),
                if o.failed() { "**FAIL**" } else { o.result() }
            );
        }
    }
}

/// The comparison table's header rows, after any `leading` columns (left-aligned like the
/// mode; the figures are right-aligned).
fn table_header(m: &mut String, leading: &[&str]) {
    let names: Vec<&str> = leading.iter().copied().chain(table::HEADER).collect();
    let figures = table::HEADER.len() - 1;
    let _ = writeln!(m, "| {} |", names.join(" | "));
    let _ = writeln!(
        m,
        "|{}{}",
        "---|".repeat(names.len() - figures),
        "---:|".repeat(figures)
    );
}

/// A table after the comparison (see [`super::Section`]).
fn section(m: &mut String, s: &super::Section) {
    let _ = writeln!(m, "\n## {}\n", s.title);
    let _ = writeln!(m, "| {} |", s.header.join(" | "));
    let _ = writeln!(m, "|---|{}", "---:|".repeat(s.header.len() - 1));
    for (_, row) in &s.rows {
        let _ = writeln!(
            m,
            "| {} |",
            row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        );
    }
    let _ = writeln!(m, "\n{}", s.note);
}

fn sweep(m: &mut String, r: &Results, charts: &[Rendered]) {
    let _ = writeln!(m, "A sweep of {} points.\n\n## Every point\n", r.points.len());
    table_header(m, &["point"]);
    for p in &r.points {
        for row in table::rows(&r.point_view(p)) {
            let _ = writeln!(
                m,
                "| {} | {} |",
                cell(&p.label),
                row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
            );
        }
    }
    thresholds(m, r);
    for s in super::sweep_sections(r) {
        section(m, &s);
    }
    let _ = writeln!(m, "\n## Charts\n");
    for c in charts {
        let _ = writeln!(
            m,
            "![{}]({}.svg)\n",
            super::titled(r, c.chart.title()),
            c.chart.name()
        );
    }
    let _ = writeln!(
        m,
        "## The scenario as run\n\n```toml\n{}```",
        r.scenario.to_toml()
    );
}
