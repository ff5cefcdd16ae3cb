//! The report a run leaves behind: charts as SVG and PNG, report.html and report.md.

use std::process::Command;

use pushpull::modes::Mode;
use pushpull::report::charts::{css_color, Chart};
use scraper::{Html, Selector};

use crate::util::exe;

/// Runs `modes` of a tiny scenario through the binary into a temporary folder.
fn run(modes: &str) -> tempfile::TempDir {
    run_with(modes, "")
}

/// The same with more TOML (faults) appended.
fn run_with(modes: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("tiny.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"report\"\ndescription = \"A <tiny> run & its report\"\nduration = \"600ms\"\nwarmup = \"100ms\"\n\
             drain = \"2s\"\nmodes = [{modes}]\n[events]\nrate = 50\ntopics = 2\n[clients]\ncount = 4\n\
             [poll]\ninterval = \"100ms\"\n{extra}"
        ),
    )
    .unwrap();
    let out = Command::new(exe())
        .arg("run")
        .arg(&scenario)
        .arg("--quiet")
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

#[test]
fn a_run_writes_every_chart_as_svg_and_png_with_one_series_per_mode() {
    let dir = run("\"poll\", \"websocket\"");
    for chart in Chart::PLAIN {
        let svg = std::fs::read_to_string(dir.path().join(format!("{}.svg", chart.name()))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{}",
            chart.name()
        );
        let png = std::fs::read(dir.path().join(format!("{}.png", chart.name()))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000,
            "{}.png",
            chart.name()
        );
        for mode in Mode::ALL {
            let stroke = format!("stroke=\"{}\"", css_color(mode).to_uppercase());
            let fill = format!("fill=\"{}\"", css_color(mode).to_uppercase());
            let present = svg.contains(&stroke) || svg.contains(&fill);
            let ran = matches!(mode, Mode::Poll | Mode::Websocket);
            assert_eq!(present, ran, "{}: {mode} drawn = {present}", chart.name());
        }
    }
    let cdf = std::fs::read_to_string(dir.path().join("latency-cdf.svg")).unwrap();
    for mode in [Mode::Poll, Mode::Websocket] {
        let polyline = format!("stroke=\"{}\" stroke-width=\"2\"", css_color(mode).to_uppercase());
        assert_eq!(cdf.matches(&polyline).count(), 1, "one CDF line for {mode}");
    }
}

#[test]
fn the_html_report_is_self_contained_and_holds_every_chart_and_the_table() {
    let dir = run("\"poll\", \"sse\"");
    let text = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let html = Html::parse_document(&text);
    assert!(html.errors.is_empty(), "HTML parse errors: {:?}", html.errors);
    let select = |s: &str| Selector::parse(s).unwrap();
    assert_eq!(html.select(&select("figure svg")).count(), Chart::PLAIN.len());
    for chart in Chart::PLAIN {
        assert_eq!(
            html.select(&select(&format!("figure#{}", chart.name()))).count(),
            1
        );
    }
    let table = html
        .select(&select("#comparison + div table"))
        .next()
        .expect("the comparison table");
    let rows: Vec<String> = table
        .select(&select("tbody tr td:first-child"))
        .map(|td| td.text().collect())
        .collect();
    assert_eq!(rows, vec!["poll", "sse"]);
    assert!(
        html.select(&select("script, link, iframe, img, object"))
            .next()
            .is_none(),
        "nothing is loaded from elsewhere"
    );
    for el in html.select(&select("[src], [href]")) {
        let v = el.value();
        let target = v.attr("src").or(v.attr("href")).unwrap();
        assert!(!target.contains("//"), "external reference {target}");
    }
    assert!(
        text.contains("A &lt;tiny&gt; run &amp; its report"),
        "the description is escaped"
    );
    assert!(
        html.select(&select(".verdicts li")).count() >= 2,
        "verdicts lead the report"
    );
    assert!(text.contains("Theory beside measurement"));
    let claims: Vec<String> = html
        .select(&select("#claims + div tbody tr td:first-child"))
        .map(|td| td.text().collect())
        .collect();
    assert_eq!(
        claims,
        vec![
            "Polling wastes requests",
            "Open connections tie up resources and can't handle many connections"
        ]
    );
    assert!(text.contains("[events]"), "the scenario as run");
}

#[test]
fn the_markdown_report_links_every_chart() {
    let dir = run("\"long_poll\"");
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for chart in Chart::PLAIN {
        assert!(
            md.contains(&format!("]({}.svg)", chart.name())),
            "{}",
            chart.name()
        );
    }
    assert!(md.contains("| mode | p50 |"));
    assert!(md.contains("| long_poll |"));
}

#[test]
fn report_rerenders_from_results_alone() {
    let dir = run("\"webhook\"");
    let again = tempfile::tempdir().unwrap();
    let rendered = pushpull::app::report(&[dir.path().join("results.json")], Some(again.path().into()))
        .expect("renders");
    assert_eq!(rendered.html, again.path().join("report.html"));
    let first = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let second = std::fs::read_to_string(again.path().join("report.md")).unwrap();
    assert_eq!(first, second, "the same results render the same report");
}

#[test]
fn report_refuses_a_file_that_is_not_results() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("results.json");
    std::fs::write(&bad, "{\"schema_version\": 99}").unwrap();
    let failure = pushpull::app::report(&[bad], None).expect_err("refused");
    assert_eq!(failure.exit_code(), 2);
    assert!(failure.to_string().contains("schema version 99"), "{failure}");
}

#[test]
fn a_sweep_runs_every_point_into_one_results_file_and_draws_the_curves() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("sweep.toml");
    std::fs::write(
        &scenario,
        "name = \"sweep\"\nduration = \"500ms\"\nwarmup = \"100ms\"\ndrain = \"2s\"\nmodes = [\"poll\", \"websocket\"]\n\
         [events]\nrate = 40\ntopics = 2\n[clients]\ncount = 4\n[sweep]\n\"poll.interval\" = [\"50ms\", \"400ms\"]\n",
    )
    .unwrap();
    // Every point repeated twice: the curves get a band from the lower repetition to the upper.
    let out = Command::new(exe())
        .arg("run")
        .arg(&scenario)
        .args(["--repeat", "2"])
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("point poll.interval=50ms") && stdout.contains("point poll.interval=400ms"),
        "{stdout}"
    );
    let r = pushpull::results::Results::load(&dir.path().join("results.json")).unwrap();
    assert!(r.modes.is_empty());
    assert_eq!(r.points.len(), 2);
    assert_eq!(r.points[1].values[0].number, Some(400.0));
    for p in &r.points {
        assert_eq!(p.modes.len(), 2);
        for m in &p.modes {
            assert_eq!(m.repetitions.len(), 2, "{}: {}", p.label, m.mode);
            assert_eq!(
                m.deliveries.delivered, m.deliveries.expected,
                "{}: {}",
                p.label, m.mode
            );
        }
    }
    let slow = &r.points[1].modes[0];
    let fast = &r.points[0].modes[0];
    assert!(
        slow.latency.p50_ms > fast.latency.p50_ms,
        "a longer interval waits longer"
    );
    for chart in Chart::SWEEP {
        let svg = std::fs::read_to_string(dir.path().join(format!("{}.svg", chart.name()))).unwrap();
        for mode in [Mode::Poll, Mode::Websocket] {
            assert!(
                svg.contains(&css_color(mode).to_uppercase()),
                "{}: {mode}",
                chart.name()
            );
        }
    }
    // The bands are the only shapes drawn at 0.18 opacity.
    let curves = std::fs::read_to_string(dir.path().join("sweep-curves.svg")).unwrap();
    assert!(
        curves.contains("opacity=\"0.18\""),
        "the repetitions' bands are drawn"
    );
    let html = Html::parse_document(&std::fs::read_to_string(dir.path().join("report.html")).unwrap());
    let rows = html
        .select(&Selector::parse("#comparison + div tbody tr").unwrap())
        .count();
    assert_eq!(rows, 4, "one row per point and mode");
}

#[test]
fn a_run_with_faults_shows_where_every_delivery_went_and_a_fault_timeline() {
    let dir = run_with(
        "\"poll\", \"webhook\"",
        "[webhook]\nretry = [\"100ms\", \"100ms\", \"100ms\", \"100ms\"]\n\
         [[faults]]\nkind = \"receiver_down\"\nat = \"200ms\"\nfor = \"300ms\"\n\
         [[faults]]\nkind = \"client_pause\"\nat = \"300ms\"\nfor = \"200ms\"",
    );
    let svg = std::fs::read_to_string(dir.path().join("faults-timeline.svg")).unwrap();
    assert!(
        svg.contains("receiver_down 100% 200ms–500ms"),
        "the lane names the fault"
    );
    assert!(svg.contains("client_pause 100% 300ms–500ms"));
    assert!(dir.path().join("faults-timeline.png").exists());
    let html = Html::parse_document(&std::fs::read_to_string(dir.path().join("report.html")).unwrap());
    let rows = Selector::parse("#outcomes + .scroll tbody tr").unwrap();
    let rows: Vec<Vec<String>> = html
        .select(&rows)
        .map(|tr| tr.text().map(str::to_string).collect())
        .collect();
    // Per mode, the whole run, then each window of a fault that applies to it.
    let firsts: Vec<String> = rows.iter().map(|r| format!("{} {}", r[0], r[1])).collect();
    assert_eq!(
        firsts,
        [
            "poll the whole run",
            "poll during client_pause 100% 300ms–500ms",
            "webhook the whole run",
            "webhook during receiver_down 100% 200ms–500ms"
        ]
    );
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("## Where every delivery went") && md.contains("faults-timeline.svg"));
}
