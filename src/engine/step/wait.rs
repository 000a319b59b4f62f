//! Waiting for an operator: the go-ahead of manual and `confirm = true` steps, the decision on a
//! step interrupted by the last stop, the hold while a trigger fires, and what is refused meanwhile.

use super::*;

impl Engine {
    /// Resuming: the step was in flight when the run stopped. Returns who decided to run it again,
    /// or `None` when it was settled without running (marked done, or skipped).
    pub(super) async fn decide_interrupted(
        &mut self,
        at: StepRef,
        phase: &Phase,
        step: &Step,
        earlier: u32,
    ) -> Result<Option<String>, Stop> {
        if self.opts.auto_confirm {
            self.rec
                .tell(Update::Message(format!(
                    "{}/{} was in flight when the run stopped: running it again (--yes)",
                    phase.id, step.id
                )))
                .await;
            return Ok(Some("auto".into()));
        }
        self.rec
            .tell(Update::Waiting {
                step: at,
                why: Wait::Interrupted,
            })
            .await;
        let since = std::time::Instant::now();
        loop {
            match self.next::<()>(None, None).await? {
                Input::Command(Command::Confirm { step: Some(s), .. }) if s != at => {
                    self.refuse_stale(s, at).await;
                }
                Input::Command(Command::Retry | Command::Confirm { .. }) if self.holding() => {
                    self.refuse_while_firing(at, "run it again").await;
                }
                Input::Command(Command::Retry | Command::Confirm { .. }) => {
                    return Ok(Some(self.opts.operator.clone()));
                }
                Input::Command(Command::MarkDone { reason }) => {
                    let (phase, step) = (phase.id.clone(), step.id.clone());
                    let fin = StepFinished {
                        phase,
                        step,
                        attempt: earlier,
                        rollback: at.rollback,
                        status: StepStatus::Confirmed,
                        duration_ms: since.elapsed().as_millis() as u64,
                        by: Some(self.opts.operator.clone()),
                        metrics: Some(self.latest.clone()),
                        reason: Some(format!("marked done after the interruption: {reason}")),
                        ..Default::default()
                    };
                    self.rec.emit(Event::StepFinished(Box::new(fin))).await?;
                    return Ok(None);
                }
                Input::Command(Command::Skip { reason }) => {
                    self.finish_simple(at, earlier, StepStatus::Skipped, since, Some(reason))
                        .await?;
                    return Ok(None);
                }
                Input::Command(Command::Rollback) if !at.rollback => {
                    return Err(Stop::Rollback(RollbackReason::Step(format!(
                        "{}/{}",
                        phase.id, step.id
                    ))));
                }
                Input::Command(Command::Rollback) => {}
                Input::Command(other) => return Err(self.stop_for(other, at)),
                Input::Stop(s) => return Err(s),
                Input::Fired | Input::Changed | Input::Deadline | Input::Work(()) => {}
            }
        }
    }

    /// Waits for the go-ahead of the step at `at`. A go-ahead counts only when it is for this
    /// step and nothing fires at that moment: one given while a trigger fires is refused (with
    /// what to do instead), never kept and carried out after the acknowledgement. An
    /// irreversible step's go-ahead must name it.
    pub(super) async fn go_ahead(&mut self, at: StepRef, irreversible: bool) -> Result<GoAhead, Stop> {
        let ask = || Update::Waiting {
            step: at,
            why: Wait::GoAhead { irreversible },
        };
        self.rec.tell(ask()).await;
        // A go-ahead was refused while a trigger fired: once nothing fires, the step asks again.
        let mut refused = false;
        loop {
            match self.next::<()>(None, None).await? {
                Input::Command(Command::Confirm { step: Some(s), .. }) if s != at => {
                    self.refuse_stale(s, at).await;
                }
                Input::Command(Command::Confirm { step: None, .. }) if irreversible => {
                    let name = self.name_of(at);
                    self.rec
                        .tell(Update::Message(format!(
                            "{name} is irreversible: its go-ahead must name it (the confirmation, y); nothing started"
                        )))
                        .await;
                }
                Input::Command(Command::Confirm { .. }) if self.holding() => {
                    self.refuse_while_firing(at, "confirm").await;
                    refused = true;
                }
                Input::Command(Command::Confirm { by: who, .. }) => {
                    return Ok(GoAhead::Given(who.unwrap_or_else(|| self.opts.operator.clone())));
                }
                Input::Command(Command::Skip { reason }) => return Ok(GoAhead::Skipped(reason)),
                Input::Command(Command::Retry) => {}
                Input::Command(Command::Rollback) if at.rollback => {}
                Input::Command(other) => return Err(self.stop_for(other, at)),
                Input::Stop(s) => return Err(s),
                Input::Changed if refused && !self.holding() => {
                    refused = false;
                    self.rec.tell(ask()).await;
                }
                // A trigger that fires now: the banner shows it; a go-ahead waits until it is
                // acknowledged (or the run rolls back).
                Input::Fired | Input::Changed | Input::Deadline | Input::Work(()) => {}
            }
        }
    }

    /// Whether a firing trigger holds the run (it does not once the rollback runs).
    pub(super) fn holding(&self) -> bool {
        !self.rolling_back && !self.firing().is_empty()
    }

    /// A go-ahead given while a trigger fires: refused, and the step asks again.
    pub(super) async fn refuse_while_firing(&mut self, at: StepRef, what: &str) {
        let name = self.name_of(at);
        let firing = self.firing().join(", ");
        self.rec
            .tell(Update::Message(format!(
                "trigger {firing} is firing: nothing started and the go-ahead is not kept; \
                 acknowledge it (a) or roll back (R) first, then {what} {name} again"
            )))
            .await;
    }

    /// A go-ahead meant for another step than the one waiting now.
    pub(super) async fn refuse_stale(&mut self, meant: StepRef, at: StepRef) {
        let (meant, now) = (self.name_of(meant), self.name_of(at));
        self.rec
            .tell(Update::Message(format!(
                "that go-ahead was for {meant} (no longer waiting): nothing started; {now} is next"
            )))
            .await;
    }

    pub(super) fn name_of(&self, at: StepRef) -> String {
        let (phase, step) = self.names(at);
        format!("{phase}/{step}")
    }

    /// The stop a command means while nothing is running.
    pub(in crate::engine) fn stop_for(&mut self, cmd: Command, at: StepRef) -> Stop {
        match cmd {
            Command::Rollback if !at.rollback => Stop::Rollback(self.rollback_reason()),
            Command::Abort { reason } => Stop::Aborted(reason),
            Command::Detach => Stop::Interrupted("the terminal hung up (SIGHUP) while a step waited".into()),
            _ => Stop::Interrupted("interrupted by a signal".into()),
        }
    }

    /// The status of a step in flight that `cmd` cancels, and the stop that follows; `None` for
    /// commands that leave it running.
    pub(super) fn cancel_for(&mut self, cmd: Command, at: StepRef) -> Option<(StepStatus, Stop)> {
        match cmd {
            Command::Rollback if at.rollback => None,
            Command::Rollback => Some((StepStatus::Cancelled, Stop::Rollback(self.rollback_reason()))),
            Command::Abort { reason } => Some((StepStatus::Cancelled, Stop::Aborted(reason))),
            Command::Interrupt => Some((
                StepStatus::Interrupted,
                Stop::Interrupted("interrupted by a signal".into()),
            )),
            Command::Detach => {
                self.detached = true;
                None
            }
            _ => None,
        }
    }
}
