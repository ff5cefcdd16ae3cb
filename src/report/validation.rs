//! The model beside the measurement: `pushpull report MEASURED SIMULATED` writes
//! validation.html, validation.md and validation.json with every figure both ways, their
//! ratio, the goal and whether the model meets it, and for a miss, the part of the model the
//! figure rests on.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::figures;
use super::html::{esc, number, page_start};
use crate::results::validation::fates::{self, Fate, FATE_GOAL};
use crate::results::validation::{rests_on, Check, Goal, Knee, Validation, Verdict, KNEE_GOAL, KNEE_RISE};
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
    let mode = match &c.point {
        Some(point) => format!("{} at {point}", c.mode),
        None => c.mode.to_string(),
    };
    vec![
        mode,
        c.figure.name().to_string(),
        match c.measured_band {
            Some((low, high)) => format!(
                "{} ({}–{})",
                shown(c.measured),
                figures::value(c.figure, low),
                figures::value(c.figure, high)
            ),
            None => shown(c.measured),
        },
        shown(c.simulated),
        c.ratio().map_or("—".to_string(), |r| format!("{}×", number(r))),
        goal(c.goal),
        verdict(c),
    ]
}

/// Column headers of the knees' table.
const KNEE_HEADER: [&str; 4] = ["mode", "knee measured", "knee simulated", "verdict"];

fn knee_cells(k: &Knee) -> Vec<String> {
    let value = |v: Option<f64>| v.map_or("none".to_string(), number);
    let at = |v: Option<f64>| {
        v.map_or("none in the sweep".to_string(), |v| {
            format!("{} = {}", k.parameter, number(v))
        })
    };
    // The repetitions' own knees, where they do not all agree with the median's.
    let measured = if k.measured_each.iter().any(|&each| each != k.measured) {
        let each: Vec<String> = k.measured_each.iter().map(|&e| value(e)).collect();
        format!("{} (repetitions: {})", at(k.measured), each.join(", "))
    } else {
        at(k.measured)
    };
    vec![
        k.mode.to_string(),
        measured,
        at(k.simulated),
        match k.verdict {
            Verdict::Met => "met".into(),
            Verdict::WithinNoise => "within noise of its goal: it is one measured repetition's knee".into(),
            _ => format!(
                "missed: rests on {}",
                rests_on(k.mode, crate::results::Figure::LatencyP99)
            ),
        },
    ]
}

/// Column headers of the deliveries' table.
const FATE_HEADER: [&str; 8] = [
    "mode",
    "events scheduled",
    "count",
    "measured",
    "simulated",
    "simulated / measured",
    "goal",
    "verdict",
];

fn fate_cells(f: &Fate) -> Vec<String> {
    vec![
        f.mode.to_string(),
        f.during.clone(),
        f.count.to_string(),
        if f.repetitions > 1 {
            format!("{} a run", number(f.measured))
        } else {
            format!("{:.0}", f.measured)
        },
        f.simulated.to_string(),
        if f.measured > 0.0 {
            format!("{}×", number(f.simulated as f64 / f.measured))
        } else {
            "—".into()
        },
        format!("± {:.0}%", FATE_GOAL * 100.0),
        match f.verdict {
            Verdict::Met => "met".into(),
            Verdict::WithinNoise => "within noise of its goal".into(),
            _ => format!("missed: rests on {}", fates::rests_on(f.count)),
        },
    ]
}

/// What the deliveries' table holds, in a sentence.
fn fate_rule() -> String {
    format!(
        "Each mode's deliveries over the whole run and for the events scheduled in each fault's window, as \
         \"Where every delivery went\" counts them; a count both runs have at zero is left out. A measurement \
         repeated is its repetitions' mean, for the model runs once. The goal is the measured count within \
         {:.0}%; a count outside it by less than three standard errors of the difference (each count's √, \
         the mean's divided by √ of the repetitions) is within noise.",
        FATE_GOAL * 100.0
    )
}

/// What the knee is, in a sentence.
fn knee_rule() -> String {
    format!(
        "A mode's knee is the first swept value at which its p99 (for a measurement repeated, the median of \
         its repetitions) exceeds {} times the lowest p99 of the values before it, among the values whose every run \
         delivered the {} deliveries a p99 needs (with fewer, the slowest of a few stands in for it); the goal is the measured \
         knee within {:.0}% (or no knee either way). Where the repetitions, each taken alone, put the knee elsewhere, \
         their knees are shown, and a model's knee that agrees with one of them but not with the median's is \
         within noise.",
        number(KNEE_RISE),
        crate::results::LatencySummary::samples_for(0.99),
        KNEE_GOAL * 100.0
    )
}

/// How many of its goals the model met, missed, and came outside of by less than their noise
/// (neither), over every figure, knee and count that has a goal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    /// Goals met.
    pub met: usize,
    /// Goals missed.
    pub missed: usize,
    /// Goals neither met nor missed: outside by less than their noise.
    pub within_noise: usize,
}

impl Tally {
    /// The tally of `v`.
    pub fn of(v: &Validation) -> Tally {
        let verdicts = v
            .checks
            .iter()
            .map(|c| c.verdict)
            .chain(v.knees.iter().map(|k| k.verdict))
            .chain(v.fates.iter().map(|f| f.verdict));
        let mut t = Tally::default();
        for verdict in verdicts {
            match verdict {
                Verdict::Met => t.met += 1,
                Verdict::Missed => t.missed += 1,
                Verdict::WithinNoise => t.within_noise += 1,
                Verdict::NoGoal | Verdict::NotModelled | Verdict::NotMeasured => {}
            }
        }
        t
    }

    /// The goals the model is held to.
    pub fn held_to(&self) -> usize {
        self.met + self.missed + self.within_noise
    }
}

/// A sentence: how many goals the model met, of how many it was held to, and how many it
/// could not be judged on for the noise.
pub fn summary(v: &Validation) -> String {
    let t = Tally::of(v);
    let noise = if t.within_noise > 0 {
        format!(
            " ({} outside their goal by less than their noise, the two runs' sampling or the spread of the \
             measured repetitions: neither met nor missed)",
            t.within_noise
        )
    } else {
        String::new()
    };
    let unmodelled = match v
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::NotModelled)
        .count()
    {
        0 => String::new(),
        n => format!("; {n} figures are not modelled yet"),
    };
    format!(
        "The model met {} of the {} goals it is held to here{noise}{unmodelled}.",
        t.met,
        t.held_to(),
    )
}

/// What `validation.json` holds: the scenario, the tally and every figure, knee and count as
/// the pages show them, for tools that sum pages up.
#[derive(serde::Serialize)]
struct Document<'a> {
    scenario: &'a str,
    summary: String,
    goals: Tally,
    held_to: usize,
    #[serde(flatten)]
    validation: &'a Validation,
}

/// The terminal table.
pub fn render_text(v: &Validation) -> String {
    let mut all = vec![HEADER.map(String::from).to_vec()];
    all.extend(v.checks.iter().map(cells));
    let mut out = super::table::align(&all);
    if !v.knees.is_empty() {
        let mut knees = vec![KNEE_HEADER.map(String::from).to_vec()];
        knees.extend(v.knees.iter().map(knee_cells));
        let _ = write!(out, "\n{}{}\n", super::table::align(&knees), knee_rule());
    }
    if !v.fates.is_empty() {
        let mut rows = vec![FATE_HEADER.map(String::from).to_vec()];
        rows.extend(v.fates.iter().map(fate_cells));
        let _ = write!(out, "\n{}{}\n", super::table::align(&rows), fate_rule());
    }
    let _ = writeln!(out, "{}", summary(v));
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
        "Measured: {} (on {}, {} cores, from {}). Simulated: {} (a {} ms round trip{}). The same scenario and events; \
         a measured figure repeated over runs is their median, with the band of the repetitions in brackets \
         (their smallest and largest; from {} repetitions, the median's 95% interval).",
        sides.measured.display(),
        measured.environment.cpu_model,
        measured.environment.cores,
        measured.environment.started_at,
        sides.simulated.display(),
        number(sim.round_trip_ms),
        match &sim.server {
            Some(server) => format!(", costs calibrated from {}", server.calibrated_at),
            None => String::new(),
        },
        crate::results::spread::BOOTSTRAP_FROM
    )
}

/// The Markdown page.
pub fn render_markdown(measured: &Results, simulated: &Results, v: &Validation, sides: &Sides) -> String {
    let mut m = format!(
        "# pushpull validation: {}, simulated beside measured\n\n{}\n\n{}\n\n",
        measured.scenario.name,
        lead(measured, simulated, sides),
        summary(v)
    );
    let table = |m: &mut String, header: &[&str], rows: Vec<Vec<String>>| {
        let _ = writeln!(m, "| {} |", header.join(" | "));
        let _ = writeln!(m, "|{}", "---|".repeat(header.len()));
        for row in rows {
            let _ = writeln!(m, "| {} |", row.join(" | "));
        }
    };
    if !v.knees.is_empty() {
        let _ = writeln!(m, "## Knees\n\n{}\n", knee_rule());
        table(&mut m, &KNEE_HEADER, v.knees.iter().map(knee_cells).collect());
        let _ = writeln!(m, "\n## Every figure\n");
    }
    table(&mut m, &HEADER, v.checks.iter().map(cells).collect());
    if !v.fates.is_empty() {
        let _ = writeln!(m, "\n## Where every delivery went\n\n{}\n", fate_rule());
        table(&mut m, &FATE_HEADER, v.fates.iter().map(fate_cells).collect());
    }
    m
}

/// The HTML page.
pub fn render_html(measured: &Results, simulated: &Results, v: &Validation, sides: &Sides) -> String {
    let mut h = page_start(&format!("validation {}", measured.scenario.name));
    let _ = writeln!(
        h,
        "<h1>pushpull validation: {}, simulated beside measured</h1>\n<p class=\"lead\">{}</p>\n<p>{}</p>",
        esc(&measured.scenario.name),
        esc(&lead(measured, simulated, sides)),
        esc(&summary(v))
    );
    let table = |h: &mut String, header: &[&str], rows: Vec<(bool, Vec<String>)>| {
        h.push_str("<div class=\"scroll\"><table>\n<thead><tr>");
        for col in header {
            let _ = write!(h, "<th>{}</th>", esc(col));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for (missed, row) in rows {
            let _ = write!(h, "<tr{}>", if missed { " class=\"differs\"" } else { "" });
            for cell in row {
                let _ = write!(h, "<td>{}</td>", esc(&cell));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody></table></div>\n");
    };
    if !v.knees.is_empty() {
        let _ = writeln!(h, "<h2>Knees</h2>\n<p>{}</p>", esc(&knee_rule()));
        table(
            &mut h,
            &KNEE_HEADER,
            v.knees
                .iter()
                .map(|k| (k.verdict == Verdict::Missed, knee_cells(k)))
                .collect(),
        );
        h.push_str("<h2>Every figure</h2>\n");
    }
    table(
        &mut h,
        &HEADER,
        v.checks
            .iter()
            .map(|c| (c.verdict == Verdict::Missed, cells(c)))
            .collect(),
    );
    if !v.fates.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Where every delivery went</h2>\n<p>{}</p>",
            esc(&fate_rule())
        );
        table(
            &mut h,
            &FATE_HEADER,
            v.fates
                .iter()
                .map(|f| (f.verdict == Verdict::Missed, fate_cells(f)))
                .collect(),
        );
    }
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

/// Writes `validation.html`, `validation.md` and `validation.json` into `dir`; returns the
/// HTML page's path.
pub fn write(
    measured: &Results,
    simulated: &Results,
    v: &Validation,
    sides: &Sides,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let html = dir.join("validation.html");
    std::fs::write(&html, render_html(measured, simulated, v, sides))
        .with_context(|| format!("writing {}", html.display()))?;
    let md = dir.join("validation.md");
    std::fs::write(&md, render_markdown(measured, simulated, v, sides))
        .with_context(|| format!("writing {}", md.display()))?;
    let json = dir.join("validation.json");
    let goals = Tally::of(v);
    let document = Document {
        scenario: &measured.scenario.name,
        summary: summary(v),
        goals,
        held_to: goals.held_to(),
        validation: v,
    };
    let text = serde_json::to_string_pretty(&document).context("writing the validation as JSON")? + "\n";
    std::fs::write(&json, text).with_context(|| format!("writing {}", json.display()))?;
    Ok(html)
}
