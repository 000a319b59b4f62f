//! One step: the hold while a trigger fires, the go-ahead of manual and `confirm = true` steps,
//! each attempt (a command, a request, a watch — or, in a rehearsal, what would have been done),
//! retries, and what a failure leads to.

use std::pin::pin;

use super::monitor::{self, Ended};
use super::watch::Input;
use super::*;
use crate::duration::format_duration;
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
                None => self.attempt(at, phase, step, attempt, by.clone()).await?,
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
                    return Err(Stop::Rollback(format!("step:{step_name}")));
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
                            Some(id) => format!("trigger:{id}"),
                            None => format!("step:{step_name}"),
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

    /// Resuming: the step was in flight when the run stopped. Returns who decided to run it again,
    /// or `None` when it was settled without running (marked done, or skipped).
    async fn decide_interrupted(
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
                    return Err(Stop::Rollback(format!("step:{}/{}", phase.id, step.id)));
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
    async fn go_ahead(&mut self, at: StepRef, irreversible: bool) -> Result<GoAhead, Stop> {
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
    fn holding(&self) -> bool {
        !self.rolling_back && !self.firing().is_empty()
    }

    /// A go-ahead given while a trigger fires: refused, and the step asks again.
    async fn refuse_while_firing(&mut self, at: StepRef, what: &str) {
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
    async fn refuse_stale(&mut self, meant: StepRef, at: StepRef) {
        let (meant, now) = (self.name_of(meant), self.name_of(at));
        self.rec
            .tell(Update::Message(format!(
                "that go-ahead was for {meant} (no longer waiting): nothing started; {now} is next"
            )))
            .await;
    }

    fn name_of(&self, at: StepRef) -> String {
        let (phase, step) = self.names(at);
        format!("{phase}/{step}")
    }

    /// The stop a command means while nothing is running.
    pub(super) fn stop_for(&mut self, cmd: Command, at: StepRef) -> Stop {
        match cmd {
            Command::Rollback if !at.rollback => Stop::Rollback(self.rollback_reason()),
            Command::Abort { reason } => Stop::Aborted(reason),
            Command::Detach => Stop::Interrupted("the terminal hung up (SIGHUP) while a step waited".into()),
            _ => Stop::Interrupted("interrupted by a signal".into()),
        }
    }

    /// The status of a step in flight that `cmd` cancels, and the stop that follows; `None` for
    /// commands that leave it running.
    fn cancel_for(&mut self, cmd: Command, at: StepRef) -> Option<(StepStatus, Stop)> {
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

    async fn started(&mut self, at: StepRef, attempt: u32) -> Result<(), Stop> {
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
        let (phase, step) = self.names(at);
        let fin = StepFinished {
            phase,
            step,
            attempt,
            rollback: at.rollback,
            status,
            duration_ms: since.elapsed().as_millis() as u64,
            reason,
            ..Default::default()
        };
        self.unfinished = None;
        self.rec.emit(Event::StepFinished(Box::new(fin))).await
    }

    /// Sends text to the front end as the step's output and writes it to its log.
    async fn show(&mut self, at: StepRef, log: &std::path::Path, text: &str) {
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

    /// Resuming: the attempt that was in flight when the last `runbook` stopped ran under a
    /// monitor. If the monitor recorded its end, that is journaled; if it still runs, it is
    /// followed to its end (its log shown as it grows). Returns the attempt's status, or `None`
    /// when there is no monitor to ask (the operator decides, as before).
    async fn adopt(
        &mut self,
        at: StepRef,
        phase: &Phase,
        step: &Step,
        attempt: u32,
    ) -> Result<Option<StepStatus>, Stop> {
        if !matches!(step.kind, StepKind::Run(_)) || self.opts.rehearsal.is_some() {
            return Ok(None);
        }
        let log_rel = log_name(at, phase, step, attempt);
        let log_abs = self.rec.journal.run_dir().join(&log_rel);
        let status_file = status_path(&log_abs);
        let Some(record) = monitor::read_status(&status_file) else {
            return Ok(None);
        };
        // Ended because the last `runbook` asked (an interruption): that is the operator's call.
        if record.ended.as_ref().is_some_and(|e| e.terminated) {
            return Ok(None);
        }
        let mut fin = StepFinished {
            phase: phase.id.clone(),
            step: step.id.clone(),
            attempt,
            rollback: at.rollback,
            log: Some(log_rel),
            ..Default::default()
        };
        let name = format!("{}/{}", phase.id, step.id);
        let stop = if let Some(ended) = record.ended {
            self.rec
                .tell(Update::Message(format!(
                    "{name} ended while no runbook was running (exit {}); recording its result, not running it again",
                    ended.exit_code
                )))
                .await;
            fin.reason = Some("ended while runbook was not running; result read from its monitor".into());
            self.judge(Ok(ended), None, step, &mut fin).await
        } else {
            let tag: process::OutputSink = Box::new(move |chunk| Update::Output { step: at, chunk });
            let Some(running) = process::adopt(&status_file, &log_abs, self.rec.updates.clone(), tag) else {
                return Ok(None);
            };
            self.rec
                .tell(Update::Message(format!(
                    "{name} is still running (its monitor, pid {}, kept it going): following it to its end, not starting it again",
                    record.monitor_pid
                )))
                .await;
            let began = std::time::Instant::now();
            self.unfinished = Some((at, attempt, began));
            let stop = self.follow(at, running, step, &mut fin).await;
            fin.reason = Some("followed to its end after runbook was restarted".into());
            stop
        };
        if let Some(s @ Stop::HandedOver(_)) = stop {
            return Err(s);
        }
        let status = fin.status;
        self.unfinished = None;
        self.rec.emit(Event::StepFinished(Box::new(fin))).await?;
        match stop {
            Some(s) => Err(s),
            None => Ok(Some(status)),
        }
    }

    /// Follows a step's command under its monitor to its end, and fills in how it ended. A stop
    /// (rollback, abort, signal) asks the monitor to end it; a journal that cannot be written
    /// never does: the step runs to its own end, and the stop comes after it. Returns the stop.
    pub(super) async fn follow(
        &mut self,
        at: StepRef,
        mut running: process::RunningCommand,
        step: &Step,
        fin: &mut StepFinished,
    ) -> Option<Stop> {
        let mut stop = None;
        let mut cancelled = None;
        let ended = loop {
            let input = {
                let wait = pin!(running.wait());
                self.next(Some(wait), None).await
            };
            match input {
                Ok(Input::Work(r)) => break r,
                // Handed over: the command runs on under its monitor; the new driver follows it.
                Ok(Input::Stop(s @ Stop::HandedOver(_))) => {
                    running.release();
                    return Some(s);
                }
                Ok(Input::Stop(s)) => {
                    stop.get_or_insert(s);
                    cancelled.get_or_insert(StepStatus::Cancelled);
                    running.terminate();
                }
                Ok(Input::Command(c)) => {
                    if let Some((status, s)) = self.cancel_for(c, at) {
                        stop.get_or_insert(s);
                        cancelled.get_or_insert(status);
                        running.terminate();
                    }
                }
                // The step in flight runs to its end; the hold comes before the next one.
                Ok(Input::Fired | Input::Changed | Input::Deadline) => {}
                // The journal cannot be written: said once; the step goes on to its end (the
                // operator can still stop it), and the stop comes after it.
                Err(journal) => {
                    if !matches!(stop, Some(Stop::Journal(_))) {
                        if let Stop::Journal(why) = &journal {
                            self.rec
                                .tell(Update::Message(format!(
                                    "{why}; the step in flight goes on to its end, nothing further will start"
                                )))
                                .await;
                        }
                        stop = Some(journal);
                    }
                }
            }
        };
        if let Some(s) = self.judge(ended, cancelled, step, fin).await {
            stop.get_or_insert(s);
        }
        stop
    }

    /// How a step's command ended, into its `step_finished`. A log that could not be written is
    /// journaled (where the journal still can be), and returns the stop that follows: no new
    /// step starts.
    async fn judge(
        &mut self,
        ended: Result<Ended, String>,
        cancelled: Option<StepStatus>,
        step: &Step,
        fin: &mut StepFinished,
    ) -> Option<Stop> {
        let (phase, step_id) = (fin.phase.clone(), fin.step.clone());
        let e = match ended {
            Err(why) => {
                fin.status = cancelled.unwrap_or(StepStatus::Failed);
                fin.error = Some(why);
                return None;
            }
            Ok(Ended {
                start_error: Some(why),
                ..
            }) => {
                fin.status = StepStatus::Failed;
                fin.error = Some(why);
                return None;
            }
            Ok(e) => e,
        };
        fin.exit_code = Some(e.exit_code);
        // As the monitor measured it: for a step adopted on resume, from its real start.
        fin.duration_ms = e.duration_ms;
        fin.status = if e.terminated {
            cancelled.unwrap_or(StepStatus::Cancelled)
        } else if e.timed_out {
            let t = step.timeout.unwrap_or_default();
            fin.error = Some(format!("timed out after {}", format_duration(t)));
            StepStatus::TimedOut
        } else if e.exit_code == 0 {
            StepStatus::Succeeded
        } else {
            fin.error = Some(match e.signal {
                Some(sig) => format!("killed by signal {sig}"),
                None => format!("exit status {}", e.exit_code),
            });
            StepStatus::Failed
        };
        if e.leftovers {
            self.rec
                .tell(Update::Message(format!(
                    "{phase}/{step_id}: ended processes the step left running in the background"
                )))
                .await;
        }
        let why = e.log_error?;
        let file = fin.log.clone().unwrap_or_default();
        let _ = self
            .rec
            .emit(Event::WriteFailed {
                file,
                error: why.clone(),
            })
            .await;
        Some(Stop::Failed(Some(format!(
            "the log of {phase}/{step_id} could not be written ({why}); nothing further was started"
        ))))
    }

    /// One attempt of an automated step: `step_started`, the work, `step_finished`.
    async fn attempt(
        &mut self,
        at: StepRef,
        phase: &Phase,
        step: &Step,
        attempt: u32,
        by: Option<String>,
    ) -> Result<StepStatus, Stop> {
        self.started(at, attempt).await?;
        let began = std::time::Instant::now();
        let log_rel = log_name(at, phase, step, attempt);
        let log_abs = self.rec.journal.run_dir().join(&log_rel);
        let mut fin = StepFinished {
            phase: phase.id.clone(),
            step: step.id.clone(),
            attempt,
            rollback: at.rollback,
            by,
            ..Default::default()
        };
        let mut stop = None;
        let grace = self.rb.settings.kill_grace;
        let speed = self.opts.rehearsal.map(|r| r.speed);
        match (&step.kind, speed) {
            (StepKind::Run(_) | StepKind::Http(_), Some(speed)) => {
                // A rehearsal shows what would be done and does none of it.
                fin.log = Some(log_rel);
                let what = match &step.kind {
                    StepKind::Run(cmd) => format!("[rehearsal] not run: $ {cmd}\n"),
                    StepKind::Http(h) => format!("[rehearsal] not sent: {} {}\n", h.method, h.url),
                    _ => String::new(),
                };
                self.show(at, &log_abs, &what).await;
                let until = Instant::now() + Duration::from_secs_f64(0.5 / speed);
                fin.status = StepStatus::Succeeded;
                loop {
                    match self.next::<()>(None, Some(until)).await? {
                        Input::Deadline => break,
                        Input::Stop(s) => {
                            (fin.status, stop) = (StepStatus::Cancelled, Some(s));
                            break;
                        }
                        Input::Command(c) => {
                            if let Some((status, s)) = self.cancel_for(c, at) {
                                (fin.status, stop) = (status, Some(s));
                                break;
                            }
                        }
                        Input::Fired | Input::Changed | Input::Work(()) => {}
                    }
                }
            }
            (StepKind::Run(command), None) => {
                fin.log = Some(log_rel);
                let mut env = self.env.clone();
                env.extend(step.env.iter().cloned());
                env.push(("RUNBOOK_PHASE".into(), phase.id.clone()));
                env.push(("RUNBOOK_STEP".into(), step.id.clone()));
                env.push(("RUNBOOK_ATTEMPT".into(), attempt.to_string()));
                let workdir = step
                    .workdir
                    .clone()
                    .unwrap_or_else(|| self.rb.settings.workdir.clone());
                let spec = process::CommandSpec {
                    shell: &self.rb.settings.shell,
                    command,
                    workdir: &workdir,
                    env,
                    log: log_abs.clone(),
                    status: status_path(&log_abs),
                    timeout: step.timeout,
                    grace,
                    label: format!("{}/{}", phase.id, step.id),
                };
                let tag: process::OutputSink = Box::new(move |chunk| Update::Output { step: at, chunk });
                match process::spawn(spec, &self.redactor, self.rec.updates.clone(), tag).await {
                    Err(e) => {
                        let msg = self.redactor.redact_str(&e.to_string());
                        let _ = crate::journal::create_private_file(&log_abs).and_then(|mut f| {
                            std::io::Write::write_all(&mut f, format!("runbook: {msg}\n").as_bytes())
                        });
                        fin.status = StepStatus::Failed;
                        fin.error = Some(msg);
                    }
                    Ok(running) => stop = self.follow(at, running, step, &mut fin).await,
                }
            }
            (StepKind::Http(spec), None) => {
                fin.log = Some(log_rel);
                let timeout = step.timeout.unwrap_or(http::DEFAULT_TIMEOUT);
                let client = self.http.get_or_init(http::client).clone();
                let (spec, secrets) = (spec.clone(), self.secrets.clone());
                let mut request =
                    Box::pin(async move { http::execute(&client, &spec, &secrets, timeout).await });
                let outcome = loop {
                    match self.next(Some(request.as_mut()), None).await? {
                        Input::Work(r) => break Some(r),
                        Input::Stop(s) => {
                            (fin.status, stop) = (StepStatus::Cancelled, Some(s));
                            break None;
                        }
                        Input::Command(c) => {
                            if let Some((status, s)) = self.cancel_for(c, at) {
                                (fin.status, stop) = (status, Some(s));
                                break None;
                            }
                        }
                        Input::Fired | Input::Changed | Input::Deadline => {}
                    }
                };
                let transcript = match outcome {
                    Some(o) => {
                        fin.http_status = o.status;
                        fin.status = match (&o.error, o.timed_out) {
                            (None, _) => StepStatus::Succeeded,
                            (Some(_), true) => StepStatus::TimedOut,
                            (Some(_), false) => StepStatus::Failed,
                        };
                        fin.error = o.error.as_deref().map(|e| self.redactor.redact_str(e));
                        o.transcript
                    }
                    None => "request cancelled\n".to_string(),
                };
                self.show(at, &log_abs, &transcript).await;
            }
            (StepKind::Watch(d), _) => {
                let d = Duration::from_secs_f64(d.as_secs_f64() / speed.unwrap_or(1.0));
                let until = Instant::now() + d;
                fin.status = StepStatus::Succeeded;
                loop {
                    match self.next::<()>(None, Some(until)).await? {
                        Input::Deadline => break,
                        Input::Command(Command::Confirm { step: Some(s), .. }) if s != at => {
                            self.refuse_stale(s, at).await;
                        }
                        Input::Command(Command::Confirm { by, .. }) => {
                            let who = by.unwrap_or_else(|| self.opts.operator.clone());
                            fin.reason = Some(format!(
                                "ended early after {} by {who}",
                                format_duration(began.elapsed())
                            ));
                            fin.by = Some(who);
                            break;
                        }
                        Input::Command(c) => {
                            if let Some((status, s)) = self.cancel_for(c, at) {
                                (fin.status, stop) = (status, Some(s));
                                break;
                            }
                        }
                        Input::Stop(s) => {
                            fin.status = StepStatus::Failed;
                            fin.error = Some(format!("{} fired during the watch", trigger_of(&s)));
                            stop = Some(s);
                            break;
                        }
                        Input::Fired => {
                            fin.status = StepStatus::Failed;
                            let firing = self.firing().join(", ");
                            fin.error = Some(format!("trigger {firing} fired during the watch"));
                            break;
                        }
                        Input::Changed | Input::Work(()) => {}
                    }
                }
            }
            (StepKind::Manual(_), _) => unreachable!("manual steps finish in run_step"),
        }
        // Handed over mid-step: it stays unfinished in the journal, for the new driver to follow.
        if let Some(s @ Stop::HandedOver(_)) = stop {
            return Err(s);
        }
        fin.duration_ms = began.elapsed().as_millis() as u64;
        let status = fin.status;
        self.unfinished = None;
        self.rec.emit(Event::StepFinished(Box::new(fin))).await?;
        match stop {
            Some(s) => Err(s),
            None => Ok(status),
        }
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
        Stop::Rollback(r) => r
            .strip_prefix("trigger:")
            .map_or_else(|| r.clone(), |t| format!("trigger {t}")),
        other => format!("{other:?}"),
    }
}
