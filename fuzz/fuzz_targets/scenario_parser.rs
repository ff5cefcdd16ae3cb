//! Any text given to the scenario parser is accepted (and then survives its own resolved form)
//! or refused with a place inside the file; nothing panics.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pushpull::scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Scenario::parse(Path::new("fuzz.toml"), text) {
        Ok(s) => {
            if let Err(e) = Scenario::parse(Path::new("resolved.toml"), &s.to_toml()) {
                panic!("a valid scenario's resolved form is refused: {e}");
            }
        }
        Err(e) => {
            let lines = text.lines().count().max(1);
            assert!(e.line >= 1 && e.line <= lines + 1, "line {} of {lines}", e.line);
            assert!(e.column >= 1 && !e.message.is_empty());
        }
    }
});
