//! The model beside the measurement: `pushpull report MEASURED SIMULATED` writes
//! validation.html and validation.md with every figure both ways, their ratio, the goal and
//! whether the model meets it, and for a miss, the part of the model the figure rests on.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::figures;
use super::html::{esc, number, page_start};
use crate::results::validation::{rests_on, Check, Goal, Verdict};
use crate::results::Results;

/// Column headers.
const HEADER: [&str; 7] = [
    "mode",
    "figure",
    "measured",
    "simulated",
    "simulated / measured",
    "goal",
    "verdict",
];

fn goal(g: Option<Goal>) -> String {
    match g {
        Some(Goal::Share(s)) => format!("± {:.0}%", s * 100.0),
        Some(Goal::Ms(ms)) => format!("± {ms} ms"),
        None => "—".into(),
    }
}

fn verdict(c: &Check) -> String {
    match c.verdict {
        Verdict::Met => "met".into(),
        Verdict::Missed => format!("missed: rests on {}", rests_on(c.mode, c.figure)),
        Verdict::WithinNoise => "within noise of its goal".into(),
        Verdict::NoGoal => "no goal".into(),
        Verdict::NotModelled => "not modelled".into(),
        Verdict::NotMeasured => "not measured".into(),
    }
}

fn cells(c: &Check) -> Vec<String> {
    let shown = |v: Option<f64>| v.map_or("—".to_string(), |v| figures::value(c.figure, v));
    vec![
        c.mode.to_string(),
        c.figure.name().to_string(),
        shown(c.measured),
        shown(c.simulated),
        c.ratio().map_or("—".to_string(), |r| format!("{}×", number(r))),
        goal(c.goal),
        verdict(c),
    ]
}

/// A sentence: how many goals the model met, of how many it was held to, and how many it
/// could not be judged on for the noise.
pub fn summary(checks: &[Check]) -> String {
    let count = |v: Verdict| checks.iter().filter(|c| c.verdict == v).count();
    let (met, missed, noisy) = (
        count(Verdict::Met),
        count(Verdict::Missed),
        count(Verdict::WithinNoise),
    );
    let noise = if noisy > 0 {
        format!(
            " ({noisy} outside their goal by less than the two runs' sampling noise: neither met nor missed)"
        )
    } else {
        String::new()
    };
    format!(
        "The model met {met} of the {} goals it is held to here{noise}; {} figures are not modelled yet.",
        met + missed + noisy,
        count(Verdict::NotModelled)
    )
}

/// The terminal table.
pub fn render_text(checks: &[Check]) -> String {
    let mut all = vec![HEADER.map(String::from).to_vec()];
    all.extend(checks.iter().map(cells));
    let mut out = super::table::align(&all);
    let _ = writeln!(out, "{}", summary(checks));
    out
}

/// Where the two runs came from.
pub struct Sides<'a> {
    /// The measured results.json.
    pub measured: &'a Path,
    /// The simulated results.json.
    pub simulated: &'a Path,
}

fn lead(measured: &Results, simulated: &Results, sides: &Sides) -> String {
    let sim = simulated.simulated.as_ref().expect("checked simulated");
    format!(
        "Measured: {} (on {}, {} cores). Simulated: {} (a {} ms round trip). The same scenario and events; \
         a measured figure repeated over runs is their median.",
        sides.measured.display(),
        measured.environment.cpu_model,
        measured.environment.cores,
        sides.simulated.display(),
        number(sim.round_trip_ms)
    )
}

/// The Markdown page.
pub fn render_markdown(measured: &Results, simulated: &Results, checks: &[Check], sides: &Sides) -> String {
    let mut m = format!(
        "# pushpull validation: {}, simulated beside measured\n\n{}\n\n{}\n\n",
        measured.scenario.name,
        lead(measured, simulated, sides),
        summary(checks)
    );
    let _ = writeln!(m, "| {} |", HEADER.join(" | "));
    let _ = writeln!(m, "|{}", "---|".repeat(HEADER.len()));
    for c in checks {
        let _ = writeln!(m, "| {} |", cells(c).join(" | "));
    }
    m
}

/// The HTML page.
pub fn render_html(measured: &Results, simulated: &Results, checks: &[Check], sides: &Sides) -> String {
    let mut h = page_start(&format!("validation {}", measured.scenario.name));
    let _ = writeln!(
        h,
        "<h1>pushpull validation: {}, simulated beside measured</h1>\n<p class=\"lead\">{}</p>\n<p>{}</p>",
        esc(&measured.scenario.name),
        esc(&lead(measured, simulated, sides)),
        esc(&summary(checks))
    );
    h.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
    for col in HEADER {
        let _ = write!(h, "<th>{}</th>", esc(col));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for c in checks {
        let class = if c.verdict == Verdict::Missed {
            " class=\"differs\""
        } else {
            ""
        };
        let _ = write!(h, "<tr{class}>");
        for cell in cells(c) {
            let _ = write!(h, "<td>{}</td>", esc(&cell));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n</main>\n</body>\n</html>\n");
    h
}

/// Writes `validation.html` and `validation.md` into `dir`; returns the HTML page's path.
pub fn write(
    measured: &Results,
    simulated: &Results,
    checks: &[Check],
    sides: &Sides,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let html = dir.join("validation.html");
    std::fs::write(&html, render_html(measured, simulated, checks, sides))
        .with_context(|| format!("writing {}", html.display()))?;
    let md = dir.join("validation.md");
    std::fs::write(&md, render_markdown(measured, simulated, checks, sides))
        .with_context(|| format!("writing {}", md.display()))?;
    Ok(html)
}
