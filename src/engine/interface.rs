//! What a front end and the engine say to each other: the options a run starts with (`EngineOptions`,
//! `Mode`, `Rehearsal`, `OnFire`), the commands a front end sends (`Command`) and the updates it
//! receives (`Update`, `Wait`). The engine's own workings stay in its other modules.

use std::time::Duration;

use super::TeamUpdate;
use crate::journal::{Record, StepStatus};
use crate::metrics::SourceOptions;
use crate::process::Chunk;

/// Which kind of execution this is; recorded as `mode` in `run_started`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Mode {
    Run,
    Rehearse,
    Resume,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What makes a run a rehearsal: commands and requests are shown, not executed; metrics are
/// simulated; waits are divided by `speed`; a fault may be injected on a schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rehearsal {
    pub speed: f64,
    pub inject_fault_at: Option<Duration>,
}

/// What a firing trigger does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFire {
    /// Start no new step until the operator acknowledges it or rolls back (the terminal UI).
    Hold,
    /// Start the rollback (headless: nobody is there to choose).
    RollBack,
}

/// A step's place in the runbook: forward phases, or the rollback procedure's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StepRef {
    pub rollback: bool,
    pub phase: usize,
    pub step: usize,
}

/// What a front end asks of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Go-ahead for the waiting manual or `confirm = true` step; ends a running `watch` early.
    /// `step` is the step the operator was shown: a go-ahead meant for a step that no longer
    /// waits (or no longer runs) is refused, never carried over to the next one. An irreversible
    /// step's go-ahead must name it.
    Confirm {
        by: Option<String>,
        step: Option<StepRef>,
    },
    /// Skip the waiting or failed step; the reason is journaled.
    Skip {
        reason: String,
    },
    /// Try the failed step again.
    Retry,
    Note {
        text: String,
    },
    /// Acknowledge every firing trigger: the run may go on (recorded).
    Acknowledge,
    /// Raise a trigger by hand (any trigger; manual ones only this way), with a reason.
    RaiseTrigger {
        trigger: String,
        reason: String,
    },
    /// Drive the simulated metrics over their thresholds (rehearsals; simulated metrics only).
    InjectFault,
    /// The operator's call to roll back.
    Rollback,
    /// The operator's call to roll back, with their words for why (journaled in
    /// `rollback_started`); otherwise exactly `Rollback`.
    RollbackWithNote {
        note: String,
    },
    /// For a step that was in flight when an earlier session stopped: record it as done without
    /// running it again (the operator checked it), with a reason.
    MarkDone {
        reason: String,
    },
    /// Stop the run (the step in flight is cancelled).
    Abort {
        reason: Option<String>,
    },
    /// SIGINT/SIGTERM: end the step in flight, record it `interrupted`, stop resumably.
    Interrupt,
    /// SIGHUP: let the step in flight finish, start nothing further, stop resumably.
    Detach,
    /// A request from the control socket (another operator: a note, an approval, a takeover).
    Team(crate::control::Asked),
    /// The driver's operator answers a takeover request: hand the run over, or not.
    Handover {
        accept: bool,
    },
}

/// Why the run is waiting for the operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    /// A manual step or a `confirm = true` step; or, with a person at the controls, an
    /// `irreversible = true` step (its go-ahead must name it: `Command::Confirm { step: Some(..) }`).
    GoAhead { irreversible: bool },
    /// A step failed with `on_failure = "ask"`: retry, skip or roll back.
    Failed {
        status: StepStatus,
        error: Option<String>,
    },
    /// Triggers are firing: acknowledge them, or roll back.
    Trigger { triggers: Vec<String> },
    /// Resuming: this step was in flight when the run stopped. Retry it, mark it done or skip it
    /// (with a reason), or roll back.
    Interrupted,
    /// After its go-ahead, the step waits for other operators' approvals (SPEC §8).
    Approval(crate::control::ApprovalWaiting),
}

impl Wait {
    /// Why the run waits, in a few words (the `waiting` notification's `why`).
    pub fn words(&self) -> &'static str {
        match self {
            Wait::GoAhead { irreversible: false } => "go-ahead",
            Wait::GoAhead { irreversible: true } => "go-ahead for an irreversible step",
            Wait::Failed { .. } => "failed step",
            Wait::Trigger { .. } => "firing trigger",
            Wait::Interrupted => "interrupted step",
            Wait::Approval(_) => "approval by another operator",
        }
    }
}

/// What the engine tells a front end.
#[derive(Debug)]
pub enum Update {
    /// An event, as journaled.
    Event(Record),
    /// Output of a running step: whole lines, secrets masked.
    Output {
        step: StepRef,
        chunk: Chunk,
    },
    Waiting {
        step: StepRef,
        why: Wait,
    },
    /// A remark for the operator that is not an event (a retry delay, leftover processes ended).
    Message(String),
    /// How far behind the shared store is (SPEC §9): for the header and the headless lines.
    Store(crate::store::Status),
    /// Operators as a team: a takeover request, a hand-over.
    Team(TeamUpdate),
}

/// Settings of one execution.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub mode: Mode,
    /// `--yes`: every go-ahead is given automatically, recorded `by: "auto"`.
    pub auto_confirm: bool,
    /// A person is at the controls (the terminal UI, or headless with a terminal on stdin): an
    /// `irreversible = true` step never starts by itself; it waits for a go-ahead that names it.
    pub ask_irreversible: bool,
    pub operator: String,
    pub host: String,
    pub on_fire: OnFire,
    pub rehearsal: Option<Rehearsal>,
    pub sources: SourceOptions,
    /// Resuming: where the run stood.
    pub resume: Option<crate::journal::resume::ResumePlan>,
}
