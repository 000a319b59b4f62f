//! `runbook validate` on arbitrary bytes: what `runbook::load` does once the file is read (text
//! only, then parse and validate), the diagnostics rendered as the user sees them, and the outline
//! `plan` prints for a valid runbook. Never panics, never hangs.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `load` refuses what is not UTF-8 before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match runbook::runbook::parse::parse_str(Path::new("fuzz/runbook.toml"), text, &[]) {
        Ok(rb) => {
            let _ = runbook::runbook::plan::outline(&rb);
        }
        Err(e) => {
            let _ = e.render();
        }
    }
});
