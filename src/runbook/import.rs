//! `runbook import CHECKLIST.md`: a Markdown checklist turned into a runbook TOML on stdout.

use std::path::Path;

/// Entry point of the `import` command; returns the exit status.
pub fn main(checklist: &Path) -> i32 {
    let _ = checklist;
    eprintln!("runbook: import is not built yet");
    2
}
