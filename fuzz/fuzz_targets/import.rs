//! `runbook import` on arbitrary bytes: Markdown in, runbook TOML out. Never panics, and what it
//! writes is a runbook that validates (the property the command promises).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // `import` refuses what is not UTF-8 before converting.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(imported) = runbook::runbook::import::convert("checklist.md", text) else {
        return;
    };
    let toml = imported.toml;
    if let Err(e) = runbook::runbook::parse::parse_str(Path::new("checklist.toml"), &toml, &[]) {
        panic!(
            "import wrote a runbook that does not validate:\n{}\n--- the runbook ---\n{toml}",
            e.render()
        );
    }
});
