//! The crate's layers depend one way: each rule below names what a part must not import,
//! read from the `crate::` paths of its source outside test modules and comments. A file may
//! not grow past 500 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level part of the crate must not import.
const RULES: &[(&str, &[&str])] = &[
    ("event", &["*"]),
    ("clock", &["*"]),
    ("procstat", &["*"]),
    (
        "scenario",
        &[
            "api",
            "results",
            "calibration",
            "server",
            "modes",
            "recorder",
            "simulate",
            "driver",
            "report",
            "app",
            "cli",
        ],
    ),
    (
        "api",
        &[
            "results",
            "calibration",
            "server",
            "modes",
            "recorder",
            "simulate",
            "driver",
            "report",
            "app",
            "cli",
        ],
    ),
    (
        "results",
        &[
            "calibration",
            "server",
            "modes",
            "recorder",
            "simulate",
            "driver",
            "report",
            "app",
            "cli",
        ],
    ),
    (
        "recorder",
        &["server", "modes", "simulate", "driver", "report", "app", "cli"],
    ),
    // The server's costs per operation, fitted from measured results; the simulator's prices.
    (
        "calibration",
        &[
            "server", "modes", "recorder", "simulate", "driver", "report", "app", "cli",
        ],
    ),
    ("server", &["simulate", "driver", "report", "app", "cli"]),
    ("modes", &["simulate", "driver", "report", "app", "cli"]),
    // The simulator runs the scenario's model on the modes' own client behaviour and theory.
    (
        "simulate",
        &["server", "recorder", "driver", "report", "app", "cli"],
    ),
    (
        "driver",
        &["server", "simulate", "calibration", "report", "app", "cli"],
    ),
    (
        "environment",
        &[
            "server", "modes", "recorder", "simulate", "driver", "report", "app", "cli",
        ],
    ),
    (
        "report",
        &[
            "server",
            "calibration",
            "modes",
            "recorder",
            "simulate",
            "driver",
            "app",
            "cli",
        ],
    ),
    (
        "cli",
        &[
            "server", "modes", "recorder", "simulate", "driver", "report", "app",
        ],
    ),
];

const MAX_LINES: usize = 500;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comment lines and without `#[cfg(test)]` items (to their closing brace).
fn code_outside_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("#[cfg(test)]") {
            let mut depth = 0i32;
            let mut opened = false;
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                opened |= l.contains('{');
                if opened && depth <= 0 {
                    break;
                }
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The crate's top-level parts that `code` names: `crate::x` and `crate::{x, y::z}`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(
                group
                    .split(',')
                    .map(|s| s.trim().split("::").next().unwrap_or("").trim().to_string()),
            );
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found.retain(|n| !n.is_empty() && n != "self");
    found
}

#[test]
fn layers_depend_one_way_and_files_stay_small() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let rules: BTreeMap<&str, &[&str]> = RULES.iter().copied().collect();
    let mut broken = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        let lines = text.lines().count();
        if lines > MAX_LINES {
            broken.push(format!("{}: {lines} lines (at most {MAX_LINES})", rel.display()));
        }
        let part = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let part = part.trim_end_matches(".rs");
        let Some(forbidden) = rules.get(part) else {
            continue;
        };
        for name in imports(&code_outside_tests(&text)) {
            if name != part && (forbidden.contains(&"*") || forbidden.contains(&name.as_str())) {
                broken.push(format!("{}: imports crate::{name}", rel.display()));
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_grouped_imports_and_skips_tests_and_comments() {
    let code = "use crate::{a, b::c};\n// crate::d\nfn f() { crate::e::g(); }\n#[cfg(test)]\nmod tests {\n    use crate::h;\n}\nuse crate::i;\n";
    let found: Vec<String> = imports(&code_outside_tests(code)).into_iter().collect();
    assert_eq!(found, ["a", "b", "e", "i"]);
}
