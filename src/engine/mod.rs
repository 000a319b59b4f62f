//! The engine: runs a checked runbook step by step, takes commands from a front end (confirm,
//! skip, retry, note, roll back, abort, interrupt) and emits events, each written to the journal
//! before the run moves on and then passed to the front end.
//!
//! It knows nothing of terminals. The headless runner and the terminal UI are two front ends over
//! the same `Engine`, `Command` and `Update`. Rollback triggers plug in as one more source the run
//! loop listens to: a firing trigger becomes a `Stop::Rollback` exactly like the operator's call.

pub mod http;
pub mod process;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::duration::format_duration;
use crate::journal::{Event, Journal, Outcome, Record, StepFinished, StepStatus};
use crate::runbook::{OnFailure, Phase, Runbook, Step, StepKind};
use crate::secrets::{Redactor, Secrets};
pub use process::Chunk;

/// Which kind of execution this is; recorded as `mode` in `run_started`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    Rehearse,
    Resume,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::Rehearse => "rehearse",
            Mode::Resume => "resume",
        }
    }
}

/// What makes a run a rehearsal: commands and requests are shown, not executed; metrics are
/// simulated; waits are divided by `speed`; a fault may be injected on a schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rehearsal {
    pub speed: f64,
    pub inject_fault_at: Option<Duration>,
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
    Confirm {
        by: Option<String>,
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
    /// The operator's call to roll back.
    Rollback,
    /// Stop the run (the step in flight is cancelled).
    Abort {
        reason: Option<String>,
    },
    /// SIGINT/SIGTERM: end the step in flight, record it `interrupted`, stop resumably.
    Interrupt,
    /// SIGHUP: let the step in flight finish, start nothing further, stop resumably.
    Detach,
}

/// Why the run is waiting for the operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    /// A manual step or a `confirm = true` step.
    GoAhead,
    /// A step failed with `on_failure = "ask"`: retry, skip or roll back.
    Failed {
        status: StepStatus,
        error: Option<String>,
    },
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
}

/// Settings of one execution.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub mode: Mode,
    /// `--yes`: every go-ahead is given automatically, recorded `by: "auto"`.
    pub auto_confirm: bool,
    pub operator: String,
    pub host: String,
}

/// Why the run stops going forward.
#[derive(Debug, Clone, PartialEq)]
enum Stop {
    Failed(Option<String>),
    Aborted(Option<String>),
    Rollback(String),
    Interrupted(String),
    Journal(String),
}

/// Journal and front end together: every event is on disk before anyone sees it.
struct Recorder {
    journal: Journal,
    updates: mpsc::Sender<Update>,
    /// Forward steps that have a `step_finished`, by (phase, step).
    finished: std::collections::HashSet<(String, String)>,
}

impl Recorder {
    async fn emit(&mut self, event: Event) -> Result<(), Stop> {
        if let Event::StepFinished(f) = &event
            && !f.rollback
        {
            self.finished.insert((f.phase.clone(), f.step.clone()));
        }
        let record = self.journal.append(event).map_err(|e| {
            Stop::Journal(format!(
                "cannot write the journal {}: {e}",
                self.journal.run_dir().display()
            ))
        })?;
        let _ = self.updates.send(Update::Event(record)).await;
        Ok(())
    }

    async fn tell(&self, update: Update) {
        let _ = self.updates.send(update).await;
    }
}

pub struct Engine {
    rb: Arc<Runbook>,
    opts: EngineOptions,
    rec: Recorder,
    commands: mpsc::Receiver<Command>,
    secrets: Secrets,
    redactor: Redactor,
    env: Vec<(String, String)>,
    http: std::sync::OnceLock<reqwest::Client>,
    /// The step whose `step_started` has no `step_finished` yet.
    unfinished: Option<(StepRef, u32, Instant)>,
    /// SIGHUP arrived: finish the step in flight, then stop.
    detached: bool,
}

/// How many updates may wait for a slow front end before a chatty step is slowed down.
pub const UPDATE_QUEUE: usize = 64;

impl Engine {
    pub fn new(
        rb: Arc<Runbook>,
        opts: EngineOptions,
        journal: Journal,
        secrets: Secrets,
        updates: mpsc::Sender<Update>,
        commands: mpsc::Receiver<Command>,
    ) -> Engine {
        let redactor = secrets.redactor();
        let mut env: Vec<(String, String)> = rb.vars.clone();
        env.extend(secrets.values.iter().cloned());
        env.push(("RUNBOOK_RUN_DIR".into(), journal.run_dir().display().to_string()));
        env.push(("RUNBOOK_MODE".into(), opts.mode.as_str().into()));
        env.push(("RUNBOOK_OPERATOR".into(), opts.operator.clone()));
        Engine {
            rb,
            opts,
            rec: Recorder {
                journal,
                updates,
                finished: Default::default(),
            },
            commands,
            secrets,
            redactor,
            env,
            http: std::sync::OnceLock::new(),
            unfinished: None,
            detached: false,
        }
    }

    pub fn run_dir(&self) -> PathBuf {
        self.rec.journal.run_dir().to_path_buf()
    }

    /// Runs the runbook to its end and returns the outcome; `run_finished` is the last event.
    pub async fn run(mut self) -> Outcome {
        let rb = self.rb.clone();
        let started = Event::RunStarted {
            runbook: rb.id.clone(),
            title: rb.title.clone(),
            file: rb.file.display().to_string(),
            sha256: rb.sha256.clone(),
            operator: self.opts.operator.clone(),
            host: self.opts.host.clone(),
            mode: self.opts.mode.as_str().into(),
            vars: rb.vars.iter().cloned().collect(),
            pid: std::process::id(),
        };
        if let Err(Stop::Journal(e)) = self.rec.emit(started).await {
            self.rec.tell(Update::Message(e)).await;
            return Outcome::Failed;
        }
        let (outcome, reason) = match self.run_phases(&rb.phases, false).await {
            Ok(()) => (Outcome::Succeeded, None),
            Err(Stop::Failed(r)) => (Outcome::Failed, r),
            Err(Stop::Aborted(r)) => (Outcome::Aborted, r),
            Err(Stop::Interrupted(r)) => (Outcome::Interrupted, Some(r)),
            Err(Stop::Rollback(reason)) => match self.roll_back(reason).await {
                Ok(o) => o,
                Err(Stop::Journal(e)) => {
                    self.rec.tell(Update::Message(e)).await;
                    return Outcome::Failed;
                }
                Err(_) => (Outcome::RollbackFailed, None),
            },
            Err(Stop::Journal(e)) => {
                self.rec.tell(Update::Message(e)).await;
                return Outcome::Failed;
            }
        };
        // A step still waiting when the run stopped (a manual step, say) gets its end recorded too.
        if let Some((at, attempt, started)) = self.unfinished.take() {
            let status = if outcome == Outcome::Interrupted {
                StepStatus::Interrupted
            } else {
                StepStatus::Cancelled
            };
            let (phase, step) = self.names(at);
            let fin = StepFinished {
                phase,
                step,
                attempt,
                rollback: at.rollback,
                status,
                duration_ms: started.elapsed().as_millis() as u64,
                ..Default::default()
            };
            if let Err(Stop::Journal(e)) = self.rec.emit(Event::StepFinished(Box::new(fin))).await {
                self.rec.tell(Update::Message(e)).await;
            }
        }
        let finished = Event::RunFinished {
            outcome,
            exit_code: outcome.exit_code(),
            reason,
        };
        if let Err(Stop::Journal(e)) = self.rec.emit(finished).await {
            self.rec.tell(Update::Message(e)).await;
        }
        outcome
    }

    async fn run_phases(&mut self, phases: &[Phase], rollback: bool) -> Result<(), Stop> {
        for (pi, phase) in phases.iter().enumerate() {
            for (si, step) in phase.steps.iter().enumerate() {
                let at = StepRef {
                    rollback,
                    phase: pi,
                    step: si,
                };
                if let Err(stop) = self.run_step(at, phase, step).await {
                    if let (Stop::Rollback(_), false) = (&stop, rollback) {
                        return Err(self.cancel_rest(at, stop).await?);
                    }
                    return Err(stop);
                }
                if self.detached {
                    return Err(Stop::Interrupted(
                        "the terminal hung up (SIGHUP); the step in flight finished".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Rolling back: the step in flight was cancelled; every forward step after it is marked so.
    async fn cancel_rest(&mut self, from: StepRef, stop: Stop) -> Result<Stop, Stop> {
        let Stop::Rollback(reason) = &stop else {
            return Ok(stop);
        };
        self.rec
            .emit(Event::RollbackStarted {
                reason: reason.clone(),
            })
            .await?;
        if let Some((at, attempt, started)) = self.unfinished.take() {
            self.finish_cancelled(at, attempt, started.elapsed()).await?;
        }
        let rb = self.rb.clone();
        for (pi, phase) in rb.phases.iter().enumerate().skip(from.phase) {
            for (si, step) in phase.steps.iter().enumerate() {
                // The step the rollback interrupted counts too, when it never got to start.
                let before = pi == from.phase && si < from.step;
                if before || self.rec.finished.contains(&(phase.id.clone(), step.id.clone())) {
                    continue;
                }
                self.finish_cancelled(
                    StepRef {
                        rollback: false,
                        phase: pi,
                        step: si,
                    },
                    0,
                    Duration::ZERO,
                )
                .await?;
            }
        }
        Ok(stop)
    }

    async fn finish_cancelled(&mut self, at: StepRef, attempt: u32, took: Duration) -> Result<(), Stop> {
        let (phase, step) = self.names(at);
        let fin = StepFinished {
            phase,
            step,
            attempt,
            rollback: at.rollback,
            status: StepStatus::Cancelled,
            duration_ms: took.as_millis() as u64,
            ..Default::default()
        };
        self.rec.emit(Event::StepFinished(Box::new(fin))).await
    }

    async fn roll_back(&mut self, reason: String) -> Result<(Outcome, Option<String>), Stop> {
        let rb = self.rb.clone();
        let Some(procedure) = &rb.rollback else {
            let why =
                format!("a rollback was called for ({reason}), but this runbook has no [rollback] procedure");
            self.rec.tell(Update::Message(why.clone())).await;
            return Ok((Outcome::RollbackFailed, Some(why)));
        };
        let result = self.run_phases(&procedure.phases, true).await;
        let status = match &result {
            Ok(()) => "succeeded",
            Err(Stop::Interrupted(r)) => return Ok((Outcome::Interrupted, Some(r.clone()))),
            Err(Stop::Journal(e)) => return Err(Stop::Journal(e.clone())),
            Err(_) => "failed",
        };
        self.rec
            .emit(Event::RollbackFinished {
                status: status.into(),
            })
            .await?;
        Ok(match result {
            Ok(()) => (Outcome::RolledBack, None),
            Err(Stop::Failed(r) | Stop::Aborted(r)) => (Outcome::RollbackFailed, r),
            Err(_) => (Outcome::RollbackFailed, None),
        })
    }

    fn names(&self, at: StepRef) -> (String, String) {
        let phases = if at.rollback {
            self.rb
                .rollback
                .as_ref()
                .map(|r| r.phases.as_slice())
                .unwrap_or(&[])
        } else {
            &self.rb.phases
        };
        let p = &phases[at.phase];
        (p.id.clone(), p.steps[at.step].id.clone())
    }

    /// The next command; notes are journaled on the way. A vanished front end means abort.
    async fn command(&mut self) -> Result<Command, Stop> {
        loop {
            match self.commands.recv().await {
                Some(Command::Note { text }) => self.note(text).await?,
                Some(c) => return Ok(c),
                None => {
                    return Ok(Command::Abort {
                        reason: Some("the front end went away".into()),
                    });
                }
            }
        }
    }

    async fn note(&mut self, text: String) -> Result<(), Stop> {
        let operator = self.opts.operator.clone();
        self.rec.emit(Event::Note { text, operator }).await
    }

    async fn run_step(&mut self, at: StepRef, phase: &Phase, step: &Step) -> Result<(), Stop> {
        let mut by = None;
        let manual = matches!(step.kind, StepKind::Manual(_));
        if step.needs_go_ahead() {
            let waited = Instant::now();
            if manual {
                self.started(at, 1).await?;
            }
            if self.opts.auto_confirm {
                by = Some("auto".to_string());
            } else {
                self.rec
                    .tell(Update::Waiting {
                        step: at,
                        why: Wait::GoAhead,
                    })
                    .await;
                loop {
                    match self.command().await? {
                        Command::Confirm { by: who } => {
                            by = Some(who.unwrap_or_else(|| self.opts.operator.clone()));
                            break;
                        }
                        Command::Skip { reason } => {
                            let attempt = u32::from(manual);
                            return self
                                .finish_simple(at, attempt, StepStatus::Skipped, waited, None, Some(reason))
                                .await;
                        }
                        Command::Retry | Command::Note { .. } => {}
                        Command::Rollback if at.rollback => {}
                        other => return Err(self.stop_for(other, at)),
                    }
                }
            }
            if manual {
                let metrics = Some(BTreeMap::new());
                let (phase_id, step_id) = (phase.id.clone(), step.id.clone());
                let fin = StepFinished {
                    phase: phase_id,
                    step: step_id,
                    attempt: 1,
                    rollback: at.rollback,
                    status: StepStatus::Confirmed,
                    duration_ms: waited.elapsed().as_millis() as u64,
                    by,
                    metrics,
                    ..Default::default()
                };
                self.unfinished = None;
                return self.rec.emit(Event::StepFinished(Box::new(fin))).await;
            }
        }
        let mut attempt = 1;
        loop {
            let status = self.attempt(at, phase, step, attempt, by.clone()).await?;
            if status.is_success() {
                return Ok(());
            }
            if attempt <= step.retries {
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
                    let until = tokio::time::Instant::now() + step.retry_delay;
                    loop {
                        let cmd = tokio::select! {
                            _ = tokio::time::sleep_until(until) => None,
                            c = self.command() => Some(c?),
                        };
                        match cmd {
                            None => break,
                            Some(Command::Retry) => break,
                            Some(Command::Skip { reason }) => {
                                return self
                                    .finish_simple(
                                        at,
                                        attempt - 1,
                                        StepStatus::Skipped,
                                        Instant::now(),
                                        None,
                                        Some(reason),
                                    )
                                    .await;
                            }
                            Some(Command::Confirm { .. } | Command::Note { .. }) => {}
                            Some(Command::Detach) => self.detached = true,
                            Some(Command::Rollback) if at.rollback => {}
                            Some(other) => return Err(self.stop_for(other, at)),
                        }
                    }
                }
                continue;
            }
            let step_name = format!("step:{}/{}", phase.id, step.id);
            match step.on_failure {
                OnFailure::Continue => return Ok(()),
                OnFailure::Rollback if !at.rollback => return Err(Stop::Rollback(step_name)),
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
                match self.command().await? {
                    Command::Retry => {
                        attempt += 1;
                        break;
                    }
                    Command::Skip { reason } => {
                        return self
                            .finish_simple(
                                at,
                                attempt,
                                StepStatus::Skipped,
                                Instant::now(),
                                None,
                                Some(reason),
                            )
                            .await;
                    }
                    Command::Rollback if !at.rollback => return Err(Stop::Rollback(step_name)),
                    Command::Rollback | Command::Confirm { .. } | Command::Note { .. } => {}
                    Command::Abort { reason } => {
                        return Err(Stop::Failed(Some(
                            reason.unwrap_or_else(|| format!("{} failed", &step_name[5..])),
                        )));
                    }
                    Command::Interrupt | Command::Detach => {
                        return Err(Stop::Interrupted(format!(
                            "interrupted while {} waited after failing",
                            &step_name[5..]
                        )));
                    }
                }
            }
        }
    }

    /// The stop a command means while nothing is running.
    fn stop_for(&mut self, cmd: Command, at: StepRef) -> Stop {
        match cmd {
            Command::Rollback if !at.rollback => Stop::Rollback("operator".into()),
            Command::Abort { reason } => Stop::Aborted(reason),
            Command::Detach => Stop::Interrupted("the terminal hung up (SIGHUP) while a step waited".into()),
            _ => Stop::Interrupted("interrupted by a signal".into()),
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
        self.unfinished = Some((at, attempt, Instant::now()));
        Ok(())
    }

    async fn finish_simple(
        &mut self,
        at: StepRef,
        attempt: u32,
        status: StepStatus,
        since: Instant,
        by: Option<String>,
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
            by,
            reason,
            ..Default::default()
        };
        self.unfinished = None;
        self.rec.emit(Event::StepFinished(Box::new(fin))).await
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
        let began = Instant::now();
        let prefix = if at.rollback { "rollback--" } else { "" };
        let log_rel = format!("logs/{prefix}{}--{}--{attempt}.log", phase.id, step.id);
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
        match &step.kind {
            StepKind::Run(command) => {
                fin.log = Some(log_rel);
                let mut env = self.env.clone();
                env.extend(step.env.iter().cloned());
                env.push(("RUNBOOK_PHASE".into(), phase.id.clone()));
                env.push(("RUNBOOK_STEP".into(), step.id.clone()));
                env.push(("RUNBOOK_ATTEMPT".into(), attempt.to_string()));
                let workdir = step.workdir.as_deref().unwrap_or(&self.rb.settings.workdir);
                let spec = process::CommandSpec {
                    shell: &self.rb.settings.shell,
                    command,
                    workdir,
                    env,
                    log: log_abs.clone(),
                };
                let tag: process::OutputSink = Box::new(move |chunk| Update::Output { step: at, chunk });
                match process::spawn(spec, self.redactor.clone(), self.rec.updates.clone(), tag) {
                    Err(e) => {
                        let msg = self.redactor.redact_str(&e.to_string());
                        let _ = std::fs::write(&log_abs, format!("runbook: {msg}\n"));
                        fin.status = StepStatus::Failed;
                        fin.error = Some(msg);
                    }
                    Ok(mut running) => {
                        let deadline = step.timeout.map(|t| tokio::time::Instant::now() + t);
                        let exit = loop {
                            enum Ev {
                                Exit(std::io::Result<process::Exit>),
                                Timeout,
                                Cmd(Option<Command>),
                            }
                            let ev = tokio::select! {
                                r = running.wait() => Ev::Exit(r),
                                _ = sleep_until_opt(deadline) => Ev::Timeout,
                                c = self.commands.recv() => Ev::Cmd(c),
                            };
                            match ev {
                                Ev::Exit(r) => {
                                    let r = r.map(|e| (e, StepStatus::Succeeded));
                                    break r;
                                }
                                Ev::Timeout => {
                                    let t = step.timeout.unwrap_or_default();
                                    fin.error = Some(format!("timed out after {}", format_duration(t)));
                                    break running.terminate(grace).await.map(|e| (e, StepStatus::TimedOut));
                                }
                                Ev::Cmd(Some(Command::Note { text })) => self.note(text).await?,
                                Ev::Cmd(Some(Command::Detach)) => self.detached = true,
                                Ev::Cmd(Some(
                                    Command::Confirm { .. } | Command::Skip { .. } | Command::Retry,
                                )) => {}
                                Ev::Cmd(Some(Command::Rollback)) if at.rollback => {}
                                Ev::Cmd(other) => {
                                    let cmd = other.unwrap_or(Command::Abort {
                                        reason: Some("the front end went away".into()),
                                    });
                                    let (status, s) = Self::cancel_for(cmd, at);
                                    stop = Some(s);
                                    break running.terminate(grace).await.map(|e| (e, status));
                                }
                            }
                        };
                        match exit {
                            Ok((e, status)) => {
                                fin.exit_code = Some(e.code);
                                fin.status = match status {
                                    StepStatus::Succeeded if e.code != 0 => StepStatus::Failed,
                                    s => s,
                                };
                                if fin.status == StepStatus::Failed && fin.error.is_none() {
                                    fin.error = Some(match e.signal {
                                        Some(sig) => format!("killed by signal {sig}"),
                                        None => format!("exit status {}", e.code),
                                    });
                                }
                            }
                            Err(e) => {
                                fin.status = StepStatus::Failed;
                                fin.error = Some(format!("waiting for the command: {e}"));
                            }
                        }
                        match running.finish(grace).await {
                            Ok(true) => {
                                self.rec
                                    .tell(Update::Message(format!(
                                        "{}/{}: ended processes the step left running in the background",
                                        phase.id, step.id
                                    )))
                                    .await
                            }
                            Ok(false) => {}
                            Err(e) => {
                                self.rec
                                    .tell(Update::Message(format!(
                                        "{}/{}: writing the log: {e}",
                                        phase.id, step.id
                                    )))
                                    .await
                            }
                        }
                    }
                }
            }
            StepKind::Http(spec) => {
                fin.log = Some(log_rel);
                let timeout = step.timeout.unwrap_or(http::DEFAULT_TIMEOUT);
                let client = self.http.get_or_init(http::client);
                let fut = http::execute(client, spec, &self.secrets, timeout);
                tokio::pin!(fut);
                let outcome = loop {
                    let ev = tokio::select! {
                        r = &mut fut => Ok(r),
                        c = self.commands.recv() => Err(c),
                    };
                    match ev {
                        Ok(r) => break Some(r),
                        Err(Some(Command::Note { text })) => {
                            let operator = self.opts.operator.clone();
                            self.rec.emit(Event::Note { text, operator }).await?;
                        }
                        Err(Some(Command::Detach)) => self.detached = true,
                        Err(Some(Command::Confirm { .. } | Command::Skip { .. } | Command::Retry)) => {}
                        Err(Some(Command::Rollback)) if at.rollback => {}
                        Err(other) => {
                            let cmd = other.unwrap_or(Command::Abort { reason: None });
                            let (status, s) = Self::cancel_for(cmd, at);
                            stop = Some(s);
                            fin.status = status;
                            break None;
                        }
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
                        if let Some(e) = &o.error {
                            fin.error = Some(self.redactor.redact_str(e));
                        }
                        o.transcript
                    }
                    None => "request cancelled\n".to_string(),
                };
                let text = self.redactor.redact_str(&transcript).into_bytes();
                let _ = std::fs::write(&log_abs, &text);
                self.rec
                    .tell(Update::Output {
                        step: at,
                        chunk: Chunk {
                            at: std::time::SystemTime::now(),
                            bytes: text,
                        },
                    })
                    .await;
            }
            StepKind::Watch(d) => {
                let until = tokio::time::Instant::now() + *d;
                fin.status = StepStatus::Succeeded;
                loop {
                    let cmd = tokio::select! {
                        _ = tokio::time::sleep_until(until) => break,
                        c = self.commands.recv() => c,
                    };
                    match cmd {
                        Some(Command::Note { text }) => self.note(text).await?,
                        Some(Command::Confirm { by }) => {
                            let who = by.unwrap_or_else(|| self.opts.operator.clone());
                            fin.reason = Some(format!(
                                "ended early after {} by {who}",
                                format_duration(began.elapsed())
                            ));
                            fin.by = Some(who);
                            break;
                        }
                        Some(Command::Detach) => self.detached = true,
                        Some(Command::Skip { .. } | Command::Retry) => {}
                        Some(Command::Rollback) if at.rollback => {}
                        other => {
                            let cmd = other.unwrap_or(Command::Abort { reason: None });
                            let (status, s) = Self::cancel_for(cmd, at);
                            fin.status = status;
                            stop = Some(s);
                            break;
                        }
                    }
                }
            }
            StepKind::Manual(_) => unreachable!("manual steps finish in run_step"),
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

    /// The status of a step cancelled by `cmd`, and the stop that follows.
    fn cancel_for(cmd: Command, at: StepRef) -> (StepStatus, Stop) {
        match cmd {
            Command::Rollback if !at.rollback => (StepStatus::Cancelled, Stop::Rollback("operator".into())),
            Command::Abort { reason } => (StepStatus::Cancelled, Stop::Aborted(reason)),
            _ => (
                StepStatus::Interrupted,
                Stop::Interrupted("interrupted by a signal".into()),
            ),
        }
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
