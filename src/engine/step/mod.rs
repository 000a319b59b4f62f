//! One step: the hold while a trigger fires, the go-ahead of manual and `confirm = true` steps,
//! each attempt (a command, a request, a watch — or, in a rehearsal, what would have been done),
//! retries, and what a failure leads to.
//!
//! - this file: a step from start to end (`run_step`), its journaled start, its log paths;
//! - `wait`: waiting for an operator (a go-ahead, a decision on an interrupted step) and the
//!   commands refused meanwhile;
//! - `attempt`: one attempt of an automated step, and how its end is judged;
//! - `adopt`: following a command that outlived the `runbook` that started it (resuming).

mod adopt;
mod attempt;
mod wait;

use std::pin::pin;

use super::watch::Input;
use super::*;
use crate::duration::format_duration;
use crate::process::monitor::{self, Ended};
use crate::runbook::{OnFailure, Step, StepKind};

impl Engine {
    pub(super) async fn run_step(&mut self, at: StepRef, phase: &Phase, step: &Step) -> Result<(), Stop> {
        let key = (at.rollback, phase.id.clone(), step.id.clone());
        let (resumed_done, earlier, interrupted, in_flight) = match &self.opts.resume {
            Some(plan) => (
                plan.done.contains(&key),
                plan.attempts.get(&key).copied().unwrap_or(0),
                plan.interrupted.as_ref() == Some(&key),
                plan.in_flight.as_ref() == Some(&key),
            ),
            None => (false, 0, false, false),
        };
        if resumed_done {
            return Ok(());
        }
        // A command still running under its monitor (or that ended while nobody watched) is
        // followed to its end, never started a second time.
        let mut adopted = if in_flight && earlier > 0 {
            self.adopt(at, phase, step, earlier).await?
        } else {
            None
        };
        if adopted.is_none() {
            self.hold(at).await?;
        }
        let mut by = None;
        if interrupted && adopted.is_none() {
            match self.decide_interrupted(at, phase, step, earlier).await? {
                Some(who) => by = Some(who),
                None => return Ok(()),
            }
        }
        let manual = matches!(step.kind, StepKind::Manual(_));
        let irreversible = step.irreversible && self.opts.ask_irreversible;
        // "Run it again" after an interruption is not an irreversible step's confirmation: that
        // one names the step and says the rollback cannot undo it (only --yes gives both).
        let needs_go_ahead = adopted.is_none()
            && ((step.needs_go_ahead() && by.is_none()) || (irreversible && by.as_deref() != Some("auto")));
        // After a hang-up nobody is there to give it: a rollback that goes on stops here.
        if needs_go_ahead && self.detached && !self.opts.auto_confirm {
            return Err(Stop::Interrupted(format!(
                "the terminal hung up (SIGHUP); {}/{} needs an operator",
                phase.id, step.id
            )));
        }
        if needs_go_ahead {
            let waited = std::time::Instant::now();
            if manual {
                self.started(at, earlier + 1).await?;
            }
            if self.opts.auto_confirm {
                by = Some("auto".to_string());
            } else {
                match self.go_ahead(at, irreversible).await? {
                    GoAhead::Given(who) => by = Some(who),
                    GoAhead::Skipped(reason) => {
                        let attempt = u32::from(manual);
                        return self
                            .finish_simple(at, attempt, StepStatus::Skipped, waited, Some(reason))
                            .await;
                    }
                }
            }
            if let Some(reason) = self.await_approvals(at, phase, step).await? {
                let attempt = u32::from(manual);
                return self
                    .finish_simple(at, attempt, StepStatus::Skipped, waited, Some(reason))
                    .await;
            }
            if step.approval.is_some() {
                self.hold(at).await?;
            }
            if manual {
                let fin = StepFinished {
                    phase: phase.id.clone(),
                    step: step.id.clone(),
                    attempt: earlier + 1,
                    rollback: at.rollback,
                    status: StepStatus::Confirmed,
                    duration_ms: waited.elapsed().as_millis() as u64,
                    by,
                    metrics: Some(self.latest.clone()),
                    ..Default::default()
                };
                self.unfinished = None;
                return self.rec.emit(Event::StepFinished(Box::new(fin))).await;
            }
            // No hold here: a go-ahead counts only when nothing fires (`go_ahead`), so the step
            // starts now or not at all.
        } else if adopted.is_none() && step.approval.is_some() {
            let waited = std::time::Instant::now();
            if let Some(reason) = self.await_approvals(at, phase, step).await? {
                return self
                    .finish_simple(at, 0, StepStatus::Skipped, waited, Some(reason))
                    .await;
            }
            // The last approval may come while a trigger fires: nothing starts until it is
            // acknowledged (or the run rolls back).
            self.hold(at).await?;
        }
        // Retries count from this session's first attempt: an adopted one is that attempt.
        let base = if adopted.is_some() { earlier - 1 } else { earlier };
        let mut attempt = base + 1;
        loop {
            let status = match adopted.take() {
                Some(status) => status,
                None => {
                    // The shared store's lease: a driver that lost it starts nothing (SPEC §9).
                    self.lease_gate(at).await?;
                    self.attempt(at, phase, step, attempt, by.clone()).await?
                }
            };
            if status.is_success() {
                return Ok(());
            }
            if attempt - base <= step.retries {
                attempt += 1;
                if !step.retry_delay.is_zero() {
                    self.rec
                        .tell(Update::Message(format!(
                            "{}/{}: retrying in {} (attempt {attempt} of {})",
                            phase.id,
                            step.id,
                            format_duration(step.retry_delay),
                            step.retries + 1
                        )))
                        .await;
                    let until = Instant::now() + step.retry_delay;
                    loop {
                        match self.next::<()>(None, Some(until)).await? {
                            Input::Deadline | Input::Command(Command::Retry) => break,
                            Input::Command(Command::Skip { reason }) => {
                                let now = std::time::Instant::now();
                                return self
                                    .finish_simple(at, attempt - 1, StepStatus::Skipped, now, Some(reason))
                                    .await;
                            }
                            Input::Command(Command::Detach) => self.detached = true,
                            Input::Command(Command::Confirm { .. }) => {}
                            Input::Command(Command::Rollback) if at.rollback => {}
                            Input::Command(other) => return Err(self.stop_for(other, at)),
                            Input::Stop(s) => return Err(s),
                            Input::Fired | Input::Changed | Input::Work(()) => {}
                        }
                    }
                }
                self.hold(at).await?;
                continue;
            }
            let step_name = format!("{}/{}", phase.id, step.id);
            match step.on_failure {
                OnFailure::Continue => return Ok(()),
                OnFailure::Rollback if !at.rollback => {
                    return Err(Stop::Rollback(RollbackReason::Step(step_name)));
                }
                _ => {}
            }
            if self.detached {
                return Err(Stop::Interrupted(
                    "the terminal hung up (SIGHUP) after a step failed".into(),
                ));
            }
            self.rec
                .tell(Update::Waiting {
                    step: at,
                    why: Wait::Failed { status, error: None },
                })
                .await;
            loop {
                match self.next::<()>(None, None).await? {
                    Input::Command(Command::Retry) if self.holding() => {
                        self.refuse_while_firing(at, "retry").await;
                    }
                    Input::Command(Command::Retry) => {
                        attempt += 1;
                        break;
                    }
                    Input::Command(Command::Skip { reason }) => {
                        let now = std::time::Instant::now();
                        return self
                            .finish_simple(at, attempt, StepStatus::Skipped, now, Some(reason))
                            .await;
                    }
                    Input::Command(Command::Rollback) if !at.rollback => {
                        let reason = match self.firing().first() {
                            Some(id) => RollbackReason::Trigger(id.to_string()),
                            None => RollbackReason::Step(step_name),
                        };
                        return Err(Stop::Rollback(reason));
                    }
                    Input::Command(Command::Abort { reason }) => {
                        return Err(Stop::Failed(Some(
                            reason.unwrap_or_else(|| format!("{step_name} failed")),
                        )));
                    }
                    Input::Command(Command::Interrupt | Command::Detach) => {
                        return Err(Stop::Interrupted(format!(
                            "interrupted while {step_name} waited after failing"
                        )));
                    }
                    Input::Command(_) => {}
                    Input::Stop(s) => return Err(s),
                    Input::Fired | Input::Changed | Input::Deadline | Input::Work(()) => {}
                }
            }
            self.hold(at).await?;
        }
    }

    pub(super) async fn started(&mut self, at: StepRef, attempt: u32) -> Result<(), Stop> {
        let (phase, step) = self.names(at);
        self.rec
            .emit(Event::StepStarted {
                phase,
                step,
                attempt,
                rollback: at.rollback,
            })
            .await?;
        self.unfinished = Some((at, attempt, std::time::Instant::now()));
        Ok(())
    }

    pub(super) async fn finish_simple(
        &mut self,
        at: StepRef,
        attempt: u32,
        status: StepStatus,
        since: std::time::Instant,
        reason: Option<String>,
    ) -> Result<(), Stop> {
        self.unfinished = None;
        self.emit_finished(at, attempt, status, since.elapsed(), reason)
            .await
    }

    /// Records a step's end: its status and time, and for an operator's decision (a reason given),
    /// whose it was.
    pub(super) async fn emit_finished(
        &mut self,
        at: StepRef,
        attempt: u32,
        status: StepStatus,
        took: std::time::Duration,
        reason: Option<String>,
    ) -> Result<(), Stop> {
        let (phase, step) = self.names(at);
        let fin = StepFinished {
            phase,
            step,
            attempt,
            rollback: at.rollback,
            status,
            duration_ms: took.as_millis() as u64,
            // A skip or a step marked done is the operator's decision: say whose.
            by: reason.is_some().then(|| self.opts.operator.clone()),
            reason,
            ..Default::default()
        };
        self.rec.emit(Event::StepFinished(Box::new(fin))).await
    }

    /// Where a step's command sends its output besides its log: the front end, tagged with the
    /// step; a log that cannot be written as a message.
    pub(super) fn sink(&self, at: StepRef) -> process::Sink<Update> {
        process::Sink {
            tx: self.rec.updates.clone(),
            output: Box::new(move |chunk| Update::Output { step: at, chunk }),
            remark: Update::Message,
        }
    }

    /// Sends text to the front end as the step's output and writes it to its log.
    pub(super) async fn show(&mut self, at: StepRef, log: &std::path::Path, text: &str) {
        let bytes = self.redactor.redact_str(text).into_bytes();
        let _ = crate::journal::create_private_file(log).and_then(|mut f| {
            use std::io::Write as _;
            f.write_all(&bytes)
        });
        self.rec
            .tell(Update::Output {
                step: at,
                chunk: Chunk {
                    at: std::time::SystemTime::now(),
                    bytes,
                },
            })
            .await;
    }
}

/// A step attempt's log, relative to the run folder.
fn log_name(at: StepRef, phase: &Phase, step: &Step, attempt: u32) -> String {
    log_file(at.rollback, &phase.id, &step.id, attempt)
}

/// The log of attempt `attempt` of step `step` of phase `phase`, relative to the run folder (the
/// terminal UI reads an earlier attempt's output back from it).
pub fn log_file(rollback: bool, phase: &str, step: &str, attempt: u32) -> String {
    let prefix = if rollback { "rollback--" } else { "" };
    format!("logs/{prefix}{phase}--{step}--{attempt}.log")
}

/// A step attempt's status file, beside its log (`logs/<step>--<attempt>.status`).
pub(super) fn status_path(log: &std::path::Path) -> std::path::PathBuf {
    log.with_extension("status")
}

/// How a go-ahead wait ended.
enum GoAhead {
    /// Given, by whom.
    Given(String),
    /// Skipped, with the reason.
    Skipped(String),
}

/// "trigger x" for a stop caused by a trigger.
fn trigger_of(stop: &Stop) -> String {
    match stop {
        Stop::Rollback(RollbackReason::Trigger(t)) => format!("trigger {t}"),
        Stop::Rollback(r) => r.to_string(),
        other => format!("{other:?}"),
    }
}
