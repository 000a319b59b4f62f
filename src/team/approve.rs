//! `runbook approve RUN STEP`: approve, from a shell, a step that waits for a second operator.
//! Who approves is this process's Unix user, as the kernel tells the driver; nothing here says it.

use std::path::Path;

/// How another operator approves a step, as the screens say it: on the driver's host, by the
/// run's folder (`here`; any state dir, no store needed); with a shared store, from another host,
/// by the run's id (`other_host`), which is how the store knows it (`runbook approve ID` works on
/// the driver's host too: the folder of that id in the state dir, else the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub here: Option<String>,
    pub other_host: Option<String>,
}

/// The id by which other hosts name the run in `run_dir`, when it is shared through a store.
pub fn shared_id(run_dir: &Path, shared: bool) -> Option<String> {
    shared.then(|| crate::store::lease::run_id(run_dir))
}

/// The commands that approve `step` of a run: by its folder (`folder`, when the one who reads it
/// is on the driver's host) and by its id in the shared store (`shared_id`, when the run is
/// shared through one).
pub fn hint(folder: Option<&str>, shared_id: Option<&str>, step: &str) -> Hint {
    Hint {
        here: folder.map(|f| format!("runbook approve {f} {step}")),
        other_host: shared_id.map(|id| format!("runbook approve {id} {step}")),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_run_is_approved_from_another_host_by_its_id() {
        let local = hint(Some("/st/runs/20261129T1200Z-rb"), None, "deploy/migrate");
        assert_eq!(
            local.here.as_deref(),
            Some("runbook approve /st/runs/20261129T1200Z-rb deploy/migrate")
        );
        assert_eq!(local.other_host, None);
        let shared = hint(
            Some("/st/runs/20261129T1200Z-rb"),
            Some("20261129T1200Z-rb"),
            "deploy/migrate",
        );
        assert_eq!(
            shared.other_host.as_deref(),
            Some("runbook approve 20261129T1200Z-rb deploy/migrate")
        );
        assert!(shared.here.is_some());
        // A watcher through the store has no folder to name.
        let remote = hint(None, Some("20261129T1200Z-rb"), "deploy/migrate");
        assert_eq!(remote.here, None);
        assert!(remote.other_host.is_some());
    }
}
