//! The commands that compute a result and print it — `validate`, `plan`, `report`, `import`,
//! `backtest` — and writing to stdout: a reader that stops reading early (`| head`) is no error.
//! The result itself comes from the library (`runbook`, `journal::report`, `backtest`).

use std::path::{Path, PathBuf};

use super::args::ReportFormat;
use crate::runbook::plan::count;
use crate::runbook::{LoadError, load};

/// `runbook report`: the report of a run (found by `runs::report`), as Markdown or JSON, on
/// stdout or into a file.
pub(super) fn report(
    found: Result<crate::journal::report::Report, String>,
    format: ReportFormat,
    output: Option<&Path>,
) -> i32 {
    let report = match found {
        Ok(r) => r,
        Err(e) => {
            crate::say!("runbook: {e}");
            return 2;
        }
    };
    let text = match format {
        ReportFormat::Markdown => crate::journal::report::markdown(&report),
        ReportFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => s + "\n",
            Err(e) => {
                crate::say!("runbook: cannot write the report as JSON: {e}");
                return 2;
            }
        },
    };
    match output {
        Some(file) => match std::fs::write(file, text) {
            Ok(()) => 0,
            Err(e) => {
                crate::say!("runbook: cannot write {}: {e}", file.display());
                2
            }
        },
        None => write_stdout(text.as_bytes(), "the report"),
    }
}

/// `runbook plan FILE`: the outline on stdout.
pub(super) fn plan(file: &Path, vars: &[(String, String)]) -> i32 {
    match load(file, vars) {
        Ok(rb) => {
            crate::out_inline!("{}", crate::runbook::plan::outline(&rb));
            0
        }
        // Problems in the file are `FILE:LINE:COL: message`, as `validate` shows them; a file
        // that cannot be read, or a --var the runbook lacks, is the command's own error.
        Err(e @ LoadError::Invalid { .. }) => report_load_error(&e),
        Err(e) => {
            crate::say_inline!("runbook: {}", e.render());
            2
        }
    }
}

fn report_load_error(e: &LoadError) -> i32 {
    crate::say_inline!("{}", e.render());
    2
}

/// `runbook validate FILE...`: one line per file; 0 when all are valid.
pub(super) fn validate(files: &[PathBuf]) -> i32 {
    let mut ok = true;
    for f in files {
        match load(f, &[]) {
            Ok(rb) => {
                let triggers = rb.triggers.len();
                let rollback = rb.rollback.as_ref().map_or(0, |r| r.phases.len());
                crate::out!(
                    "{}: ok ({}, {}, {}, {})",
                    f.display(),
                    count(rb.phases.len(), "phase"),
                    count(rb.step_count(), "step"),
                    count(triggers, "trigger"),
                    count(rollback, "rollback phase")
                );
            }
            Err(e) => {
                ok = false;
                report_load_error(&e);
            }
        }
    }
    if ok { 0 } else { 2 }
}

/// `runbook import`: the runbook TOML on stdout, what the operator should know on stderr.
pub(super) fn import(checklist: &Path) -> i32 {
    match crate::runbook::import::import(checklist) {
        Ok(imported) => {
            for notice in &imported.notices {
                crate::say!("runbook: {}: {notice}", checklist.display());
            }
            write_stdout(imported.toml.as_bytes(), "the runbook")
        }
        Err(message) => {
            crate::say!("runbook: {message}");
            2
        }
    }
}

/// `runbook backtest FILE`: the report on stdout.
pub(super) fn backtest(req: crate::backtest::Request) -> i32 {
    match crate::backtest::run(req) {
        Ok(report) => write_stdout(report.as_bytes(), "the backtest"),
        Err(message) => {
            crate::say_inline!("{message}");
            2
        }
    }
}

/// Writes a command's result to stdout: 0, or 2 with a message when it cannot be written. A reader
/// that stopped reading (`runbook import x.md | head`) has what it wanted: no error.
fn write_stdout(bytes: &[u8], what: &str) -> i32 {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            crate::say!("runbook: cannot write {what} to stdout: {e}");
            2
        }
    }
}
