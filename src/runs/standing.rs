//! Where a run stands, worked out from its journal alone (and its runbook, where it can be
//! read): starting, running a step, waiting for the driver (a go-ahead, a decision, approvals),
//! held by firing triggers, between steps, or finished; and that position in words, as `ls` and
//! the watcher's screen say it.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::journal::{Event, Outcome, Record, StepStatus};
use crate::runbook::{OnFailure, Runbook, StepKind};

/// A step by its name in the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepName {
    pub phase: String,
    pub step: String,
    pub rollback: bool,
}

impl std::fmt::Display for StepName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.phase, self.step)
    }
}

/// What the run waits for from its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    /// A manual step's confirmation, or a `confirm = true` (or irreversible) step's go-ahead.
    GoAhead,
    /// A step failed: retry, skip or roll back.
    Decision,
    /// Other operators' approvals (the driver says so when asked, or on its lease row in the
    /// shared store: the journal does not).
    Approvals,
}

/// Where a run stands, as its journal (and its runbook, where it can be read) tells.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Standing {
    /// Nothing was recorded yet (the run is starting).
    Starting,
    Running {
        step: StepName,
        attempt: u32,
        /// When the attempt started (RFC 3339).
        since: String,
    },
    Waiting {
        step: StepName,
        #[serde(rename = "waiting_for")]
        for_: WaitFor,
    },
    /// Triggers fire: the driver acknowledges them or rolls back.
    Held { triggers: Vec<String> },
    /// Between two steps (the next one starts, or the driver is gone).
    Between { after: Option<StepName> },
    Finished {
        outcome: Outcome,
        exit_code: i32,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// Where the run stands, with the rollback it is in (if one started and did not finish).
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub standing: Standing,
    /// The rollback's reason, while it runs.
    pub rollback: Option<String>,
}

/// Works out where a run stands from its journal. With the runbook, a step that waits for a
/// go-ahead before it starts (`confirm = true`, irreversible) is named as waiting, and a failed
/// step as waiting for a decision only where its `on_failure` asks.
pub fn standing(records: &[Record], rb: Option<&Runbook>) -> Position {
    let mut open: Option<(StepName, u32, String)> = None;
    let mut last: Option<(StepName, StepStatus, u32)> = None;
    let mut firing: BTreeSet<String> = BTreeSet::new();
    let mut rollback: Option<String> = None;
    let mut finished = None;
    for r in records {
        match &r.event {
            Event::RunStarted { .. } => {
                // A new session (resumed): it watches the triggers afresh.
                finished = None;
                firing.clear();
            }
            Event::StepStarted {
                phase,
                step,
                attempt,
                rollback,
            } => {
                let name = StepName {
                    phase: phase.clone(),
                    step: step.clone(),
                    rollback: *rollback,
                };
                open = Some((name, *attempt, r.ts.clone()));
            }
            Event::StepFinished(f) => {
                let name = StepName {
                    phase: f.phase.clone(),
                    step: f.step.clone(),
                    rollback: f.rollback,
                };
                if open.as_ref().is_some_and(|(o, _, _)| *o == name) {
                    open = None;
                }
                last = Some((name, f.status, f.attempt));
            }
            Event::TriggerFired { trigger, .. } => {
                firing.insert(trigger.clone());
            }
            Event::TriggerCleared { trigger, .. } | Event::TriggerAcknowledged { trigger, .. } => {
                firing.remove(trigger);
            }
            Event::RollbackStarted { reason, .. } => rollback = Some(reason.clone()),
            Event::RollbackFinished { .. } => rollback = None,
            Event::RunFinished {
                outcome,
                exit_code,
                reason,
            } => {
                finished = Some(Standing::Finished {
                    outcome: *outcome,
                    exit_code: *exit_code,
                    reason: reason.clone(),
                });
            }
            _ => {}
        }
    }
    if let Some(f) = finished {
        return Position {
            standing: f,
            rollback: None,
        };
    }
    let step_of = |n: &StepName| rb.and_then(|rb| rb.find_step(n.rollback, &n.phase, &n.step));
    let standing = if let Some((name, attempt, since)) = open {
        if step_of(&name).is_some_and(|s| matches!(s.kind, StepKind::Manual(_))) {
            Standing::Waiting {
                step: name,
                for_: WaitFor::GoAhead,
            }
        } else {
            Standing::Running {
                step: name,
                attempt,
                since,
            }
        }
    } else if !firing.is_empty() && rollback.is_none() {
        Standing::Held {
            triggers: firing.into_iter().collect(),
        }
    } else {
        let failed = last.as_ref().filter(|(name, status, attempt)| {
            matches!(status, StepStatus::Failed | StepStatus::TimedOut)
                && step_of(name).is_none_or(|s| {
                    // A step that retries, or goes on or rolls back by itself, waits for nobody.
                    s.on_failure == OnFailure::Ask && *attempt > s.retries
                })
        });
        match (failed, rb) {
            (Some((name, _, _)), _) => Standing::Waiting {
                step: name.clone(),
                for_: WaitFor::Decision,
            },
            (None, Some(rb)) => match next_step(records, rb, rollback.is_some()) {
                Some((name, true)) => Standing::Waiting {
                    step: name,
                    for_: WaitFor::GoAhead,
                },
                _ => Standing::Between {
                    after: last.map(|l| l.0),
                },
            },
            (None, None) if records.is_empty() => Standing::Starting,
            (None, None) => Standing::Between {
                after: last.map(|l| l.0),
            },
        }
    };
    Position { standing, rollback }
}

/// The next step the run will come to (of the rollback procedure once it started), as `resume`
/// would work it out, and whether it waits for a go-ahead before it starts.
fn next_step(records: &[Record], rb: &Runbook, rolling_back: bool) -> Option<(StepName, bool)> {
    let plan = crate::journal::resume::plan(records, rb);
    rb.phases_of(rolling_back).iter().find_map(|p| {
        p.steps.iter().find_map(|s| {
            let key = (rolling_back, p.id.clone(), s.id.clone());
            (!plan.done.contains(&key)).then(|| {
                let name = StepName {
                    phase: p.id.clone(),
                    step: s.id.clone(),
                    rollback: rolling_back,
                };
                (name, s.needs_go_ahead() || s.irreversible)
            })
        })
    })
}

/// Where a run stands, in words: `running deploy/canary (attempt 2)`, `waiting for alice: go-ahead
/// for deploy/cdn`, `rolled back`.
pub fn describe(pos: &Position, driver: Option<&str>, stale: bool) -> String {
    let whom = driver.unwrap_or("the driver");
    let mut text = match &pos.standing {
        Standing::Starting => "starting".to_string(),
        Standing::Running { step, attempt, .. } if *attempt > 1 => {
            format!("running {step} (attempt {attempt})")
        }
        Standing::Running { step, .. } => format!("running {step}"),
        Standing::Waiting {
            step,
            for_: WaitFor::GoAhead,
        } => format!("waiting for {whom}: go-ahead for {step}"),
        Standing::Waiting {
            step,
            for_: WaitFor::Decision,
        } => format!("{step} failed; waiting for {whom}: retry, skip or roll back"),
        Standing::Waiting {
            step,
            for_: WaitFor::Approvals,
        } => format!("{step} is waiting for approvals"),
        Standing::Held { triggers } => format!(
            "held: {} firing; waiting for {whom}: acknowledge or roll back",
            triggers.join(", ")
        ),
        Standing::Between { after: Some(step) } => format!("after {step}"),
        Standing::Between { after: None } => "started".to_string(),
        Standing::Finished { outcome, reason, .. } => match reason {
            Some(r) => format!("{} ({r})", outcome.words()),
            None => outcome.words().to_string(),
        },
    };
    if let Some(reason) = &pos.rollback {
        text = format!("rolling back ({reason}): {text}");
    }
    if stale {
        text = format!("driver gone (stale lock) — was {text}");
    }
    text
}
