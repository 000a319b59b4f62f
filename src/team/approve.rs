//! `runbook approve RUN STEP`: approve, from a shell, a step that waits for a second operator.
//! Who approves is this process's Unix user, as the kernel tells the driver; nothing here says it.

use std::path::Path;

use super::remote::{Asked, find};
use crate::control::Request;

/// Approves `step` of the run `run` (a run folder, its journal, or a run id); prints what was
/// approved or why not. The driver is asked on the run's control socket, else (another host)
/// through the shared store when one is set (`store`: `--store`). Exit status: 0 approved,
/// 1 refused by the driver or no driver to ask, 2 no such run.
pub fn main(run: &Path, step: &str, state_dir: &Path, store: Option<&str>) -> i32 {
    let found = match find(run, state_dir, store) {
        Ok(f) => f,
        Err((code, e)) => {
            crate::say!("runbook: {e}");
            return code;
        }
    };
    let asked = found.ask(&Request::Approve {
        step: step.to_string(),
    });
    match asked {
        Asked::Answered(r) if r.ok => {
            crate::out!("{}", r.text());
            0
        }
        Asked::Answered(r) => {
            crate::say!("runbook: not approved: {}", r.text());
            1
        }
        Asked::NoDriver { ended: Some(outcome) } => {
            crate::say!(
                "runbook: not approved: this run has ended ({outcome}); nothing waits for an approval"
            );
            1
        }
        Asked::NoDriver { ended: None } => {
            let run = found
                .dir
                .as_ref()
                .map_or_else(|| found.run_id.clone(), |d| d.display().to_string());
            crate::say!(
                "runbook: not approved: nobody drives this run (driver gone); an approval is given to a live driver: \
                 once someone drives it again (runbook takeover {run} --reason ...), approve again"
            );
            1
        }
        Asked::Failed(e) => {
            crate::say!("runbook: not approved: {e}");
            1
        }
    }
}
