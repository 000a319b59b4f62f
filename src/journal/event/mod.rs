//! The vocabulary of the journal: every event a run records (field names are the contract of SPEC
//! §4), a step's status, a run's outcome. `mask` masks secrets in an event before it is written.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod mask;

/// Everything that matters after a crash. Field names are the contract of SPEC §4.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        runbook: String,
        title: String,
        file: String,
        sha256: String,
        operator: String,
        host: String,
        mode: String,
        vars: BTreeMap<String, String>,
        pid: u32,
        /// The runbook as this session saw it (titles after `${}`, kinds, units, thresholds), so
        /// that a reader needs no runbook file. Absent from journals written before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan: Option<Box<super::snapshot::PlanSnapshot>>,
    },
    StepStarted {
        phase: String,
        step: String,
        attempt: u32,
        rollback: bool,
    },
    StepFinished(Box<StepFinished>),
    Note {
        text: String,
        operator: String,
    },
    /// One poll of every metric: the values (`null` when there was none) and, per metric, why not.
    MetricsSampled {
        values: BTreeMap<String, Option<f64>>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        errors: BTreeMap<String, String>,
    },
    /// A metric trigger's threshold is breached; it fires when the breach has lasted `for`.
    TriggerPending {
        trigger: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
    },
    TriggerFired {
        trigger: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
        /// Why, for a trigger raised by the operator or a failing check.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// An alert trigger's firing alert: every label it has.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        labels: Option<BTreeMap<String, String>>,
    },
    TriggerCleared {
        trigger: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
    },
    TriggerAcknowledged {
        trigger: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<String>,
    },
    /// The trigger's metric has no data, or its source failed: never taken as healthy.
    TriggerUnknown {
        trigger: String,
        error: String,
    },
    /// A simulated fault was injected (rehearsals, or `!` where metrics are simulated).
    FaultInjected {
        by: String,
    },
    /// A file of the run (a step's log) could not be written: it is incomplete from here on.
    WriteFailed {
        file: String,
        error: String,
    },
    /// The shared store cannot be written: what it lacked then, since when, and why. The run goes
    /// on; the store catches up from the local files (SPEC §9).
    StoreBehind {
        since: String,
        events: u64,
        bytes: u64,
        error: String,
    },
    /// The store has everything written locally again, after being behind this long.
    StoreCaughtUp {
        behind_ms: u64,
    },
    /// The store has not confirmed this driver's lease since `since` (renewals unanswered): it
    /// may hold there until `expires`, but no new step starts until it is renewed (SPEC §9).
    StoreLeaseUnconfirmed {
        since: String,
        expires: String,
    },
    /// This driver's lease in the store expired before it could be renewed: no new step starts.
    StoreLeaseLost {
        expired: String,
    },
    /// The lease was renewed after it had been lost (nobody else took the run meanwhile).
    StoreLeaseRenewed {
        epoch: i64,
    },
    /// A newer driver holds the run's lease: this one starts nothing more.
    StoreFenced {
        by: String,
        epoch: i64,
    },
    RollbackStarted {
        reason: String,
        /// Who decided it, when an operator did (absent for a trigger's own or a step's
        /// `on_failure = "rollback"`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operator: Option<String>,
        /// The operator's words, when they gave any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    RollbackFinished {
        status: RollbackStatus,
    },
    /// A rehearsal's figures, journaled just before `run_finished`.
    RehearsalFigures {
        /// From the first trigger firing to the decision to roll back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fired_to_decision_ms: Option<u64>,
        /// From `rollback_started` to `rollback_finished`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rollback_ms: Option<u64>,
    },
    /// An operator other than the driver approved a step that waits for approvals (SPEC §8):
    /// who (the Unix user the kernel named), from where, and the metric values at that moment.
    Approval {
        phase: String,
        step: String,
        rollback: bool,
        operator: String,
        from: crate::control::Origin,
        metrics: BTreeMap<String, Option<f64>>,
        /// A rehearsal's approval: nobody approved, the rehearsal played it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        simulated: bool,
    },
    /// The run changed hands: `from` stopped driving it, `to` drives it from here.
    Handover {
        from: String,
        to: String,
        reason: String,
        /// Where the new driver is.
        at: crate::control::Origin,
        /// The driver's operator agreed (`true`), or the driver was gone (`false`).
        consent: bool,
    },
    RunFinished {
        outcome: Outcome,
        exit_code: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A `[[notify]]` target took the notification of event `on` (an HTTP 2xx) at this attempt.
    NotifySent {
        target: String,
        on: String,
        status: u16,
        attempt: u32,
    },
    /// A notification that was not delivered: the last attempt's HTTP status (none when there was
    /// no answer) and error. `attempt` 0: it was never tried (the run ended first).
    NotifyFailed {
        target: String,
        on: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        attempt: u32,
        error: String,
    },
    /// A rehearsal sends nothing: what would have been sent, secrets masked.
    NotifyRehearsed {
        target: String,
        on: String,
        method: String,
        url: String,
        body: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct StepFinished {
    pub phase: String,
    pub step: String,
    /// From 1; 0 for a step that was cancelled before any attempt started.
    pub attempt: u32,
    pub rollback: bool,
    pub status: StepStatus,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Who gave the go-ahead: an operator's name, or "auto" under `--yes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Metric values on screen when a step was confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<BTreeMap<String, Option<f64>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What went wrong, in words (timeout, HTTP error, unexpected status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    #[default]
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
    Confirmed,
    Cancelled,
    Interrupted,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the step counts as done for the run going on.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded | StepStatus::Confirmed | StepStatus::Skipped
        )
    }
}

/// How the rollback procedure ended (`rollback_finished`'s `status`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, strum::IntoStaticStr, strum::Display)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RollbackStatus {
    Succeeded,
    Failed,
}

/// How a run ended, with its exit status (SPEC §1).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Aborted,
    RolledBack,
    RollbackFailed,
    Interrupted,
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Succeeded => 0,
            Outcome::Failed | Outcome::Aborted => 1,
            Outcome::RolledBack => 3,
            Outcome::RollbackFailed => 4,
            Outcome::Interrupted => 130,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// As people read it: "rolled back", "rollback failed".
    pub fn words(self) -> &'static str {
        match self {
            Outcome::RolledBack => "rolled back",
            Outcome::RollbackFailed => "rollback failed",
            other => other.as_str(),
        }
    }
}

impl Event {
    /// A notification's outcome in words, for the screen and the report; `None` for other events.
    pub fn notify_words(&self) -> Option<String> {
        Some(match self {
            Event::NotifySent {
                target,
                on,
                status,
                attempt,
            } => format!("notified {target} of {on} (HTTP {status}, attempt {attempt})"),
            Event::NotifyFailed {
                target,
                on,
                attempt: 0,
                error,
                ..
            } => format!("notify {target} NOT SENT for {on}: {error}"),
            Event::NotifyFailed {
                target,
                on,
                attempt,
                error,
                ..
            } => format!("notify {target} FAILED for {on} (attempt {attempt}): {error}"),
            Event::NotifyRehearsed {
                target,
                on,
                method,
                url,
                body,
            } => {
                let body: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
                let shown = match body.char_indices().nth(160) {
                    Some((i, _)) => format!("{}…", &body[..i]),
                    None => body,
                };
                format!("rehearsal, not sent: would notify {target} of {on}: {method} {url} {shown}")
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Record;
    use super::*;

    #[test]
    fn events_serialize_with_the_spec_names() {
        let r = Record {
            ts: "2026-01-01T00:00:00.000Z".into(),
            event: Event::StepStarted {
                phase: "p".into(),
                step: "s".into(),
                attempt: 1,
                rollback: false,
            },
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"ts":"2026-01-01T00:00:00.000Z","event":"step_started","phase":"p","step":"s","attempt":1,"rollback":false}"#
        );
        let f = Event::StepFinished(Box::new(StepFinished {
            phase: "p".into(),
            step: "s".into(),
            attempt: 2,
            status: StepStatus::TimedOut,
            duration_ms: 5,
            exit_code: Some(143),
            ..Default::default()
        }));
        let s = serde_json::to_string(&f).unwrap();
        assert_eq!(
            s,
            r#"{"event":"step_finished","phase":"p","step":"s","attempt":2,"rollback":false,"status":"timed_out","duration_ms":5,"exit_code":143}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&s).unwrap(), f);
    }

    #[test]
    fn statuses_read_as_the_journal_writes_them() {
        fn json(v: &impl Serialize) -> String {
            serde_json::to_string(v).unwrap()
        }
        for s in [
            StepStatus::Succeeded,
            StepStatus::Failed,
            StepStatus::TimedOut,
            StepStatus::Skipped,
            StepStatus::Confirmed,
            StepStatus::Cancelled,
            StepStatus::Interrupted,
        ] {
            assert_eq!(json(&s), format!("\"{}\"", s.as_str()));
        }
        for o in [
            Outcome::Succeeded,
            Outcome::Failed,
            Outcome::Aborted,
            Outcome::RolledBack,
            Outcome::RollbackFailed,
            Outcome::Interrupted,
        ] {
            assert_eq!(json(&o), format!("\"{}\"", o.as_str()));
        }
        assert_eq!(Outcome::RolledBack.as_str(), "rolled_back");
        assert_eq!(StepStatus::TimedOut.as_str(), "timed_out");
        let e = Event::RollbackFinished {
            status: RollbackStatus::Succeeded,
        };
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(line, r#"{"event":"rollback_finished","status":"succeeded"}"#);
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
        assert_eq!(RollbackStatus::Failed.to_string(), "failed");
    }
}
