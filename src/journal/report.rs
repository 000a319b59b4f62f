//! `runbook report JOURNAL`: a run's record as Markdown (or JSON), ready for a retrospective.

use std::path::Path;

/// Entry point of the `report` command; returns the exit status.
pub fn main(journal: &Path, format: &str, output: Option<&Path>) -> i32 {
    let _ = (journal, format, output);
    eprintln!("runbook: report is not built yet");
    2
}
