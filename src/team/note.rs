//! `runbook note RUN TEXT`: add a note to a run's journal from a shell, as a watcher's `n` does.
//! The driver journals it with the asker's name (from the kernel on its socket, or as reported
//! through the shared store from another host).

use std::path::Path;

use super::remote::{Asked, find};
use crate::control::Request;

/// Exit status: 0 added, 1 refused or no driver, 2 no such run.
pub fn main(run: &Path, text: &str, state_dir: &Path, store: Option<&str>) -> i32 {
    let found = match find(run, state_dir, store) {
        Ok(f) => f,
        Err((code, e)) => {
            crate::say!("runbook: {e}");
            return code;
        }
    };
    match found.ask(&Request::Note {
        text: text.to_string(),
    }) {
        Asked::Answered(r) if r.ok => {
            crate::out!("{}", r.text());
            0
        }
        Asked::Answered(r) => {
            crate::say!("runbook: note not added: {}", r.text());
            1
        }
        Asked::NoDriver { ended } => {
            let why = match ended {
                Some(outcome) => format!("this run has ended ({outcome})"),
                None => "nobody drives this run (driver gone)".into(),
            };
            crate::say!("runbook: note not added: {why}; the journal is written by a run's driver alone");
            1
        }
        Asked::Failed(e) => {
            crate::say!("runbook: note not added: {e}");
            1
        }
    }
}
