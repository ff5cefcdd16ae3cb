//! The HTML report: one self-contained file (inline SVG and CSS, no scripts, no network) that
//! reads from a phone's width to a wide screen.

use std::fmt::Write as _;

use super::charts::{css_color, Rendered};
use super::{format_ms, outcomes, table, theory, verdict};
use crate::results::Results;

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif; margin: 0; color: #1d1d1f;
       background: #fafafa; line-height: 1.5; }
main { max-width: 1100px; margin: 0 auto; padding: 1.2rem; }
h1 { font-size: 1.8rem; margin: .2rem 0 .4rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.lead { font-size: 1.05rem; color: #333; }
.verdicts { background: #fff; border-left: 4px solid #0072b2; padding: .6rem 1rem; margin: 1rem 0; }
.verdicts li { margin: .3rem 0; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; background: #fff; font-size: .92rem; min-width: 100%; }
th, td { padding: .35rem .6rem; border-bottom: 1px solid #e5e5e5; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
td.left, th.left { text-align: left; }
td.note { white-space: normal; text-align: left; color: #444; min-width: 16rem; }
tr.differs td { background: #fff6e5; }
.swatch { display: inline-block; width: .8em; height: .8em; border-radius: 2px; margin-right: .4em; vertical-align: -.05em; }
figure { margin: 1.2rem 0; background: #fff; padding: .4rem; border: 1px solid #e5e5e5; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: .9rem; color: #555; padding: .3rem .4rem 0; }
pre { background: #fff; border: 1px solid #e5e5e5; padding: .8rem; overflow-x: auto; font-size: .85rem; }
.warn { color: #8a4b00; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { font-weight: 600; }
@media (max-width: 600px) { main { padding: .6rem; } h1 { font-size: 1.4rem; } }
@media print { body { background: #fff; } figure, .verdicts { break-inside: avoid; } }
";

/// The start of a page (through `<main>`) titled `pushpull: TITLE`; close it with
/// `</main></body></html>`.
pub fn page_start(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>pushpull: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(title)
    )
}

/// Renders the whole report.
pub fn render(r: &Results, charts: &[Rendered]) -> String {
    let s = &r.scenario;
    let mut h = page_start(&super::titled(r, &s.name));
    let _ = writeln!(
        h,
        "<h1>{}</h1>",
        esc(&super::titled(r, &format!("pushpull report: {}", s.name)))
    );
    if !s.description.is_empty() {
        let _ = writeln!(h, "<p class=\"lead\">{}</p>", esc(&s.description));
    }
    if let Some(note) = super::simulated_note(r) {
        let _ = writeln!(h, "<p><strong>{}</strong></p>", esc(&note));
    }
    let _ = writeln!(
        h,
        "<p>{} clients, {} events/s ({:?} arrivals) over {} topics, {} for {} after a {} warm-up; seed {}.</p>",
        s.clients.count,
        s.events.rate,
        s.events.arrival,
        s.events.topics,
        super::source(r),
        crate::scenario::humane::format(s.duration),
        crate::scenario::humane::format(s.warmup),
        s.seed
    );

    if r.points.is_empty() {
        run_sections(&mut h, r);
    } else {
        sweep_sections(&mut h, r);
    }
    h.push_str("<h2 id=\"charts\">Charts</h2>\n");
    for c in charts {
        let _ = writeln!(
            h,
            "<figure id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
            c.chart.name(),
            strip_xml_prolog(&c.svg),
            esc(&super::titled(r, c.chart.title()))
        );
    }

    if r.points.is_empty() {
        mode_sections(&mut h, r);
    }
    h.push_str("<h2 id=\"scenario\">The scenario as run</h2>\n");
    let _ = writeln!(h, "<pre>{}</pre>", esc(&s.to_toml()));
    h.push_str("<h2 id=\"environment\">Environment</h2>\n<dl>\n");
    let e = &r.environment;
    for (k, v) in [
        ("host", e.hostname.clone()),
        ("CPU", format!("{} ({} cores)", e.cpu_model, e.cores)),
        (
            "memory",
            format!("{:.1} GiB", e.memory_bytes as f64 / (1u64 << 30) as f64),
        ),
        ("OS", e.os.clone()),
        ("pushpull", e.pushpull_version.clone()),
        (
            "git commit",
            e.git_commit.clone().unwrap_or_else(|| "unknown".into()),
        ),
        ("started", e.started_at.clone()),
        ("clock", e.clock.clone()),
        ("seed", s.seed.to_string()),
    ] {
        let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
    }
    h.push_str("</dl>\n");
    if !r.sources.is_empty() {
        let _ = writeln!(h, "<p>Merged from {} runs:</p>\n<ol>", r.sources.len());
        for src in &r.sources {
            let _ = writeln!(
                h,
                "<li>{} ({}, {} cores), started {}, commit {}</li>",
                esc(&src.hostname),
                esc(&src.cpu_model),
                src.cores,
                esc(&src.started_at),
                esc(src.git_commit.as_deref().unwrap_or("unknown"))
            );
        }
        h.push_str("</ol>\n");
    }
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

fn theory_table(r: &Results) -> String {
    let source = super::source(r);
    let mut h = format!(
        "<div class=\"scroll\"><table>\n<thead><tr><th>mode</th><th class=\"left\">metric</th><th>theory</th><th>{source}</th>\
         <th>{source} / theory</th><th>why they differ</th></tr></thead>\n<tbody>\n",
    );
    for c in theory::compare(r) {
        let _ = writeln!(
            h,
            "<tr{}><td>{}</td><td class=\"left\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"note\">{}</td></tr>",
            if c.differs() { " class=\"differs\"" } else { "" },
            c.mode,
            esc(c.metric),
            number(c.predicted),
            number(c.measured),
            c.ratio.map_or("—".to_string(), |x| format!("{x:.2}")),
            esc(c.note.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</tbody></table></div>\n<p>Rows more than 20% off their theory are shaded, with the likeliest reason from this run's figures.</p>\n");
    h
}

/// A number with as many decimals as its size deserves.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn strip_xml_prolog(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// Verdicts, comparison table, thresholds and theory of a single run.
fn run_sections(h: &mut String, r: &Results) {
    let verdicts = verdict::verdicts(r);
    if !verdicts.is_empty() {
        h.push_str("<section class=\"verdicts\" aria-label=\"verdicts\"><ul>\n");
        for v in verdicts {
            let _ = writeln!(h, "<li>{}</li>", esc(&v));
        }
        h.push_str("</ul></section>\n");
    }

    h.push_str("<h2 id=\"comparison\">Comparison</h2>\n<div class=\"scroll\"><table>\n<thead><tr>");
    for col in table::HEADER {
        let _ = write!(h, "<th>{}</th>", esc(col));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (m, row) in r.modes.iter().zip(table::rows(r)) {
        comparison_row(h, None, m.mode, &row);
    }
    h.push_str("</tbody></table></div>\n");
    h.push_str(
        "<p>Latency runs from each event's <em>scheduled</em> time to its arrival. Delivery counts are exact. \
         Requests, bytes and CPU are the server's own, counted from the end of the warm-up to the end of the schedule: the window that made the events they are divided by.</p>\n",
    );
    for m in &r.modes {
        for w in &m.warnings {
            let _ = writeln!(h, "<p class=\"warn\">Warning, {}: {}</p>", m.mode, esc(w));
        }
    }

    thresholds_table(h, r);
    outcomes_table(h, r);

    let claims = super::claims::judge(r);
    if !claims.is_empty() {
        h.push_str("<h2 id=\"claims\">What people say, checked</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th class=\"left\">claim</th><th class=\"left\">verdict</th><th class=\"left\">the numbers</th><th class=\"left\">the rule</th></tr></thead>\n<tbody>\n");
        for c in claims {
            let _ = writeln!(
                h,
                "<tr><td class=\"left\">{}</td><td class=\"left\"><strong>{}</strong></td><td class=\"note\">{}</td><td class=\"note\">{}</td></tr>",
                esc(c.claim),
                c.judgement.words(),
                esc(&c.evidence),
                esc(&c.rule)
            );
        }
        h.push_str("</tbody></table></div>\n");
    }

    let _ = writeln!(
        h,
        "<h2 id=\"theory\">Theory beside {}</h2>",
        if r.simulated.is_some() {
            "the model"
        } else {
            "measurement"
        }
    );
    h.push_str(&theory_table(r));
    for s in super::sections(r) {
        section(h, &s);
    }
}

/// A table after the comparison (see [`super::Section`]).
fn section(h: &mut String, s: &super::Section) {
    let _ = write!(
        h,
        "<h2 id=\"{}\">{}</h2>\n<div class=\"scroll\"><table>\n<thead><tr>",
        s.id,
        esc(s.title)
    );
    for col in s.header {
        let _ = write!(h, "<th>{}</th>", esc(col));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (mode, row) in &s.rows {
        comparison_row(h, None, *mode, row);
    }
    let _ = writeln!(h, "</tbody></table></div>\n<p>{}</p>", esc(&s.note));
}

/// What each mode did, with its theory in words.
fn mode_sections(h: &mut String, r: &Results) {
    h.push_str("<h2 id=\"modes\">Each mode</h2>\n");
    for m in &r.modes {
        let d = &m.deliveries;
        let _ = writeln!(
            h,
            "<h3><span class=\"swatch\" style=\"background:{}\"></span>{}</h3>\n<p>{}</p>\n<dl>\
             <dt>latency</dt><dd>p50 {}, p90 {}, p99 {}{} (from actual emission: p50 {})</dd>\
             <dt>deliveries</dt><dd>{} of {} ({} late, {} dead-lettered, {} lost, {} duplicates, {} out of order, {} reported gone, {} reconnections)</dd>\
             <dt>server</dt><dd>{} requests ({:.0}/s), {} bytes read, {} written, {:.2} CPU s, peak {} connections, {:.1} KiB per client</dd>\
             <dt>driver</dt><dd>{:.2} CPU s ({:.0}% of a core)</dd></dl>",
            css_color(m.mode),
            m.mode,
            esc(&m.theory.explanation),
            format_ms(m.latency.p50_ms),
            format_ms(m.latency.p90_ms),
            format_ms(m.latency.p99_ms),
            esc(&super::tail(&m.latency)),
            format_ms(m.latency_from_emission.p50_ms),
            d.delivered,
            d.expected,
            m.outcomes.late,
            m.outcomes.dead_lettered,
            d.lost,
            d.duplicates,
            d.out_of_order,
            d.gap_events,
            d.reconnects,
            m.server.requests,
            m.server.requests_per_second,
            m.server.bytes_read,
            m.server.bytes_written,
            m.server.cpu_seconds,
            m.server.peak_connections,
            m.server.memory_per_client_bytes / 1024.0,
            m.client.cpu_seconds,
            m.client.cpu_share_of_core * 100.0,
        );
    }
}

/// One row of the comparison table: the mode with its colour swatch, then the figures; a
/// sweep's rows start with the point.
fn comparison_row(h: &mut String, point: Option<&str>, mode: crate::event::Mode, row: &[String]) {
    h.push_str("<tr>");
    if let Some(point) = point {
        let _ = write!(h, "<td>{}</td>", esc(point));
    }
    for (i, cell) in row.iter().enumerate() {
        if i == 0 {
            let swatch = format!(
                "<span class=\"swatch\" style=\"background:{}\"></span>",
                css_color(mode)
            );
            let _ = write!(h, "<td class=\"left\">{swatch}{}</td>", esc(cell));
        } else {
            let _ = write!(h, "<td>{}</td>", esc(cell));
        }
    }
    h.push_str("</tr>\n");
}

/// A sweep: one table row per point and mode, and the thresholds of every point.
fn sweep_sections(h: &mut String, r: &Results) {
    let _ = writeln!(
        h,
        "<p class=\"verdicts\">A sweep of {} points: {}.</p>",
        r.points.len(),
        esc(&r
            .points
            .iter()
            .map(|p| p.label.as_str())
            .collect::<Vec<_>>()
            .join("; "))
    );
    h.push_str(
        "<h2 id=\"comparison\">Every point</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th>point</th>",
    );
    for col in table::HEADER {
        let _ = write!(h, "<th>{}</th>", esc(col));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for p in &r.points {
        let view = r.point_view(p);
        for (m, row) in view.modes.iter().zip(table::rows(&view)) {
            comparison_row(h, Some(&p.label), m.mode, &row);
        }
    }
    h.push_str("</tbody></table></div>\n");
    thresholds_table(h, r);
    for s in super::sweep_sections(r) {
        section(h, &s);
    }
}

/// Where every owed delivery went, per mode and fault window.
fn outcomes_table(h: &mut String, r: &Results) {
    if !outcomes::present(r) {
        return;
    }
    h.push_str(
        "<h2 id=\"outcomes\">Where every delivery went</h2>\n<div class=\"scroll\"><table>\n<thead><tr>",
    );
    for col in outcomes::HEADER {
        let _ = write!(h, "<th>{}</th>", esc(col));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in outcomes::rows(r) {
        let cells = &row.cells;
        let _ = write!(
            h,
            "<tr><td class=\"left\"><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td class=\"left\">{}</td>",
            css_color(row.mode.mode),
            esc(&cells[0]),
            esc(&cells[1])
        );
        for c in &cells[2..] {
            let _ = write!(h, "<td>{}</td>", esc(c));
        }
        h.push_str("</tr>\n");
    }
    let _ = writeln!(
        h,
        "</tbody></table></div>\n<p>{}</p>",
        esc(&outcomes::late_thresholds(r))
    );
}

/// Every threshold with what was measured and whether it held.
fn thresholds_table(h: &mut String, r: &Results) {
    let outcomes = super::thresholds::evaluate(r);
    if !outcomes.is_empty() {
        let _ = writeln!(
            h,
            "<h2 id=\"thresholds\">Thresholds</h2>\n<div class=\"scroll\"><table>\n<thead><tr><th class=\"left\">threshold</th><th>{}</th><th>result</th></tr></thead>\n<tbody>",
            super::source(r)
        );
        for o in &outcomes {
            let _ = writeln!(
                h,
                "<tr{}><td class=\"left\">{}</td><td>{}</td><td>{}</td></tr>",
                if o.failed() { " class=\"differs\"" } else { "" },
                esc(&o.threshold),
                o.measured.map_or("no data".to_string(), number),
                if o.failed() {
                    "<strong>FAIL</strong>"
                } else {
                    o.result()
                }
            );
        }
        h.push_str("</tbody></table></div>\n");
    }
}
