//! Resuming: finding the run to resume, rebuilding where it stood from its journal, and saying
//! what changed in the runbook file since. Pure but for reading the state dir.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{Event, Outcome, Record, RollbackStatus, StepStatus, snapshot};
use crate::runbook::{OnFailure, Runbook};

/// A step by (rollback, phase id, step id).
pub type StepKey = (bool, String, String);

/// Where an interrupted run stood.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResumePlan {
    /// Steps that are finished and never run again.
    pub done: HashSet<StepKey>,
    /// The highest attempt each step reached, so that attempts go on counting.
    pub attempts: HashMap<StepKey, u32>,
    /// The step that was in flight (or had failed) when the run stopped: the operator decides.
    pub interrupted: Option<StepKey>,
    /// The rollback had started (with this reason) and not finished.
    pub rollback: Option<String>,
    /// The step whose latest attempt has a `step_started` and no `step_finished`: its command
    /// may still be running under its monitor, or have ended with nobody there to record it.
    pub in_flight: Option<StepKey>,
    /// Who approved each step (SPEC §8) since its last `step_finished`: kept for the next session.
    pub approvals: HashMap<StepKey, Vec<String>>,
}

/// What the journal says about the run as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub runbook: String,
    pub title: String,
    pub file: String,
    pub sha256: String,
    pub vars: Vec<(String, String)>,
    /// The last `run_finished`, if the last session ended with one.
    pub finished: Option<Outcome>,
}

pub fn info(records: &[Record]) -> Option<RunInfo> {
    let mut info: Option<RunInfo> = None;
    for r in records {
        match &r.event {
            Event::RunStarted {
                runbook,
                title,
                file,
                sha256,
                vars,
                ..
            } => {
                let first = info.is_none();
                let i = info.get_or_insert_with(|| RunInfo {
                    runbook: runbook.clone(),
                    title: title.clone(),
                    file: file.clone(),
                    sha256: sha256.clone(),
                    vars: vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    finished: None,
                });
                if !first {
                    i.finished = None;
                    // A resume under --force recorded the file as it was then: compare with that.
                    i.file = file.clone();
                    i.sha256 = sha256.clone();
                }
            }
            Event::RunFinished { outcome, .. } => {
                if let Some(i) = info.as_mut() {
                    i.finished = Some(*outcome);
                }
            }
            _ => {}
        }
    }
    info
}

/// Whether a run can be resumed: it did not reach its end. A run that succeeded or was rolled
/// back is done; one that was interrupted, stopped on a failed step, was aborted (quit, or nobody
/// there to give a go-ahead) or whose rollback failed can go on.
pub fn resumable(info: &RunInfo) -> bool {
    !matches!(info.finished, Some(Outcome::Succeeded | Outcome::RolledBack))
}

/// Rebuilds where the run stood.
pub fn plan(records: &[Record], rb: &Runbook) -> ResumePlan {
    let mut plan = ResumePlan::default();
    let mut last: HashMap<StepKey, (StepStatus, u32)> = HashMap::new();
    let mut open: Vec<StepKey> = Vec::new();
    let mut rollback_done = false;
    for r in records {
        match &r.event {
            Event::StepStarted {
                phase,
                step,
                attempt,
                rollback,
            } => {
                let key = (*rollback, phase.clone(), step.clone());
                let a = plan.attempts.entry(key.clone()).or_default();
                *a = (*a).max(*attempt);
                open.retain(|k| k != &key);
                open.push(key);
            }
            Event::StepFinished(f) => {
                let key = (f.rollback, f.phase.clone(), f.step.clone());
                let a = plan.attempts.entry(key.clone()).or_default();
                *a = (*a).max(f.attempt);
                open.retain(|k| k != &key);
                // Approvals count for one go-ahead of the step.
                plan.approvals.remove(&key);
                last.insert(key, (f.status, f.attempt));
            }
            Event::Approval {
                phase,
                step,
                rollback,
                operator,
                simulated: false,
                ..
            } => {
                let key = (*rollback, phase.clone(), step.clone());
                let given = plan.approvals.entry(key).or_default();
                if !given.contains(operator) {
                    given.push(operator.clone());
                }
            }
            Event::RollbackStarted { reason, .. } => {
                plan.rollback = Some(reason.clone());
                rollback_done = false;
            }
            // A rollback that failed goes on when the run is resumed.
            Event::RollbackFinished { status } => rollback_done = *status == RollbackStatus::Succeeded,
            _ => {}
        }
    }
    if rollback_done {
        plan.rollback = None;
    }
    let on_failure = |key: &StepKey| {
        rb.find_step(key.0, &key.1, &key.2)
            .map_or(OnFailure::Ask, |s| s.on_failure)
    };
    let mut needs_decision: Vec<StepKey> = Vec::new();
    for (key, (status, attempt)) in &last {
        let done = match status {
            StepStatus::Succeeded | StepStatus::Confirmed | StepStatus::Skipped => true,
            StepStatus::Failed | StepStatus::TimedOut => on_failure(key) == OnFailure::Continue,
            // Cancelled (by a rollback, or a stop) or interrupted: not done.
            StepStatus::Cancelled | StepStatus::Interrupted => false,
        };
        if done {
            plan.done.insert(key.clone());
        } else if *attempt > 0 && !is_manual(rb, key) {
            needs_decision.push(key.clone());
        }
    }
    // A step started and never finished was in flight when the run died — unless it is a manual
    // step still waiting for its go-ahead, which simply waits again.
    plan.in_flight = open.iter().rev().find(|k| !is_manual(rb, k)).cloned();
    for key in open {
        if !is_manual(rb, &key) {
            needs_decision.push(key);
        }
    }
    // Only the latest can have been in flight; earlier undecided ones were decided by the run going on.
    plan.interrupted = records.iter().rev().find_map(|r| match &r.event {
        Event::StepStarted {
            phase,
            step,
            rollback,
            ..
        } => {
            let key = (*rollback, phase.clone(), step.clone());
            needs_decision.contains(&key).then_some(key)
        }
        Event::StepFinished(f) => {
            let key = (f.rollback, f.phase.clone(), f.step.clone());
            needs_decision.contains(&key).then_some(key)
        }
        _ => None,
    });
    plan
}

/// A manual step never needs a decision on resume: it simply waits for its go-ahead again.
fn is_manual(rb: &Runbook, key: &StepKey) -> bool {
    rb.find_step(key.0, &key.1, &key.2)
        .is_some_and(|s| matches!(s.kind, crate::runbook::StepKind::Manual(_)))
}

/// What differs between the runbook the run started with and the file now. With the plan
/// snapshot the journal keeps, each step (and trigger) added, removed or edited is named; a journal
/// from before the snapshot names the steps it knows that are gone, and the hashes.
pub fn changes(records: &[Record], old_sha: &str, rb: &Runbook) -> Vec<String> {
    let snapshot = records.iter().rev().find_map(|r| match &r.event {
        Event::RunStarted { plan: Some(p), .. } => Some(p),
        _ => None,
    });
    if let Some(old) = snapshot {
        if old_sha == rb.sha256 {
            return Vec::new();
        }
        let mut out = vec![format!("file: {}", rb.file.display())];
        let diffs = snapshot::differences(old, &snapshot::PlanSnapshot::of(rb));
        if diffs.is_empty() {
            out.push(
                "no step or trigger was added, removed or edited (settings, metrics, the rollback's title \
                 or comments differ)"
                    .into(),
            );
        }
        out.extend(diffs);
        return out;
    }
    let mut out = Vec::new();
    if old_sha != rb.sha256 {
        out.push(format!(
            "{} changed since the run started (sha256 {} → {})",
            rb.file.display(),
            &old_sha[..old_sha.len().min(12)],
            &rb.sha256[..rb.sha256.len().min(12)]
        ));
    }
    let mut seen = HashSet::new();
    for r in records {
        let key = match &r.event {
            Event::StepStarted {
                phase,
                step,
                rollback,
                ..
            } => (*rollback, phase.clone(), step.clone()),
            Event::StepFinished(f) => (f.rollback, f.phase.clone(), f.step.clone()),
            _ => continue,
        };
        if !seen.insert(key.clone()) {
            continue;
        }
        let exists = rb.find_step(key.0, &key.1, &key.2).is_some();
        if !exists {
            let which = if key.0 { "rollback step" } else { "step" };
            out.push(format!(
                "{which} {}/{} is in the journal but no longer in the runbook",
                key.1, key.2
            ));
        }
    }
    out
}

/// The latest run in the state dir that can be resumed.
pub fn latest_unfinished(state_dir: &Path) -> Option<PathBuf> {
    // The newest by the time the run started (its first event), not by folder name.
    std::fs::read_dir(state_dir.join("runs"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter_map(|d| {
            let (records, _) = super::read(&d.join("journal.jsonl")).ok()?;
            let started = records.first()?.ts.clone();
            info(&records).filter(resumable).map(|_| (started, d))
        })
        .max()
        .map(|(_, d)| d)
}
