//! The engine: runs a checked runbook step by step, takes commands from a front end (confirm,
//! skip, retry, note, acknowledge, roll back, abort, interrupt) and emits events, each written to
//! the journal before the run moves on and then passed to the front end.
//!
//! It knows nothing of terminals. The headless runner and the terminal UI are two front ends over
//! the same `Engine`, `Command` and `Update`. Every wait of the run goes through one place
//! (`watch::next`), which also hears the metrics poller, check triggers and trigger deadlines: a
//! firing trigger holds the run or becomes a `Stop::Rollback`, exactly like the operator's call.
//!
//! - `interface`: the options, commands and updates shared with the front ends.
//! - `step`: one step — its go-ahead, attempts, retries and failure handling.
//! - `watch`: the wait loop, trigger evaluation, holds, fault injection.
//! - `alerts`: polling the alerts of alert triggers; `poll`: the loop every trigger poll runs on,
//!   and what a check trigger runs.
//! - `http`: requests; commands are run by `crate::process`.

mod alerts;
pub mod http;
mod interface;
mod poll;
mod step;
mod store;
mod team;
mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::journal::{Event, Journal, Outcome, RollbackStatus, StepFinished, StepStatus};
use crate::metrics::triggers::Watched;
use crate::metrics::{Sample, simulated::Fault};
use crate::process;
pub use crate::process::Chunk;
use crate::runbook::{Phase, Runbook};
use crate::secrets::{Redactor, Secrets};
pub use interface::{Command, EngineOptions, Mode, OnFire, Rehearsal, StepRef, Update, Wait};
pub use step::log_file;
pub use team::TeamUpdate;

/// Why the run stops going forward.
#[derive(Debug, Clone, PartialEq)]
enum Stop {
    Failed(Option<String>),
    Aborted(Option<String>),
    Rollback(RollbackReason),
    Interrupted(String),
    Journal(String),
    /// The driver's operator handed the run over (to this user): stop here, finish nothing.
    HandedOver(String),
}

/// Who or what called for a rollback. Journaled as `rollback_started`'s `reason`: `trigger:ID`,
/// `step:PHASE/STEP` (its `on_failure`, or the operator's call on a failed step), `operator`.
#[derive(Debug, Clone, PartialEq)]
enum RollbackReason {
    Trigger(String),
    /// `phase/step`.
    Step(String),
    Operator,
    /// Read back from a journal in a form this version does not write: kept as it was.
    Other(String),
}

impl RollbackReason {
    /// The reason as a journal records it (a rollback that was under way when the run stopped).
    fn from_journal(text: &str) -> RollbackReason {
        if let Some(id) = text.strip_prefix("trigger:") {
            RollbackReason::Trigger(id.to_string())
        } else if let Some(step) = text.strip_prefix("step:") {
            RollbackReason::Step(step.to_string())
        } else if text == "operator" {
            RollbackReason::Operator
        } else {
            RollbackReason::Other(text.to_string())
        }
    }
}

impl std::fmt::Display for RollbackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RollbackReason::Trigger(id) => write!(f, "trigger:{id}"),
            RollbackReason::Step(step) => write!(f, "step:{step}"),
            RollbackReason::Operator => f.write_str("operator"),
            RollbackReason::Other(text) => f.write_str(text),
        }
    }
}

/// Journal and front end together: every event is on disk before anyone sees it.
struct Recorder {
    journal: Journal,
    updates: mpsc::Sender<Update>,
    /// Forward steps that have a `step_finished`, by (phase, step).
    finished: std::collections::HashSet<(String, String)>,
    /// Wakes the shared store's copy once a line is on disk.
    store_nudge: Option<std::sync::Arc<tokio::sync::Notify>>,
    /// `[[notify]]`: offered every event once it is journaled, and told of waits for an operator.
    notify: crate::notify::Notifier,
    rb: Arc<Runbook>,
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
        if let Some(n) = &self.store_nudge {
            n.notify_one();
        }
        self.notify.offer(&record);
        let _ = self.updates.send(Update::Event(record)).await;
        Ok(())
    }

    async fn tell(&self, update: Update) {
        if let Update::Waiting { step, why } = &update {
            let phase = &self.rb.phases_of(step.rollback)[step.phase];
            self.notify
                .waiting(&phase.id, &phase.steps[step.step].id, why.words());
        }
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
    unfinished: Option<(StepRef, u32, std::time::Instant)>,
    /// SIGHUP arrived: finish the step in flight, then stop.
    detached: bool,
    /// Metric samples, once the poller runs.
    samples: Option<mpsc::Receiver<Sample>>,
    /// Check trigger results: (trigger index, passed or why not).
    checks: (mpsc::Sender<CheckResult>, mpsc::Receiver<CheckResult>),
    check_tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Alert trigger readings: (trigger index, what its alerts say). Polled by `check_tasks` too.
    alerts: (mpsc::Sender<AlertResult>, mpsc::Receiver<AlertResult>),
    triggers: Vec<Watched>,
    /// The latest value of each metric, as on screen (for confirmations).
    latest: BTreeMap<String, Option<f64>>,
    fault: Fault,
    /// When the scheduled fault of a rehearsal is due.
    fault_due: Option<Instant>,
    /// The rollback has started: triggers no longer act.
    rolling_back: bool,
    /// For a rehearsal's figures: when a trigger first fired, when the rollback started.
    first_fired: Option<Instant>,
    rollback_began: Option<Instant>,
    team: team::Team,
    /// The operator called for the rollback (and why, when they said): for `rollback_started`.
    rollback_call: Option<Option<String>>,
    /// The shared store's lease and status, when there is a store (`attach_store`).
    store: Option<crate::store::Link>,
}

/// Starts the notifier of a run: what it journals reaches the front end as any event does.
fn start_notify(
    rb: &Arc<Runbook>,
    opts: &EngineOptions,
    journal: &Journal,
    secrets: &Secrets,
    redactor: &Redactor,
    updates: &mpsc::Sender<Update>,
) -> crate::notify::Notifier {
    if rb.notify.is_empty() {
        return crate::notify::Notifier::none();
    }
    let (shown, mut records) = mpsc::channel(UPDATE_QUEUE);
    let updates = updates.clone();
    tokio::spawn(async move {
        while let Some(r) = records.recv().await {
            if updates.send(Update::Event(r)).await.is_err() {
                break;
            }
        }
    });
    let run = crate::notify::run_info(
        rb,
        journal.run_dir(),
        &opts.operator,
        &opts.host,
        opts.mode.as_str(),
        opts.rehearsal.is_some(),
    );
    crate::notify::Notifier::start(crate::notify::Setup {
        runbook: rb.clone(),
        run,
        secrets: secrets.clone(),
        redactor: redactor.clone(),
        journal: journal.appender(),
        shown,
    })
}

/// A check trigger's result: its index, and whether it passed (or why not).
type CheckResult = (usize, Result<(), String>);

/// An alert trigger's poll: its index, and what its alerts say.
type AlertResult = (usize, crate::metrics::alerts::AlertReading);

pub(crate) use crate::duration::sleep_until_opt;

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
        let speed = opts.rehearsal.map_or(1.0, |r| r.speed);
        let given = opts
            .resume
            .as_ref()
            .map(|p| p.approvals.clone())
            .unwrap_or_default();
        // A resumed run watches every trigger afresh (nothing shown from the last session holds).
        let resumed = opts.mode == Mode::Resume;
        let triggers = rb
            .triggers
            .iter()
            .map(|t| Watched::new(t, speed))
            .map(|w| if resumed { w.resumed() } else { w })
            .collect();
        let notify = start_notify(&rb, &opts, &journal, &secrets, &redactor, &updates);
        Engine {
            rec: Recorder {
                journal,
                updates,
                finished: Default::default(),
                store_nudge: None,
                notify,
                rb: rb.clone(),
            },
            rb,
            opts,
            commands,
            secrets,
            redactor,
            env,
            http: std::sync::OnceLock::new(),
            unfinished: None,
            detached: false,
            samples: None,
            checks: mpsc::channel(16),
            check_tasks: Vec::new(),
            alerts: mpsc::channel(16),
            triggers,
            latest: BTreeMap::new(),
            fault: Fault::default(),
            fault_due: None,
            rolling_back: false,
            first_fired: None,
            rollback_began: None,
            team: team::Team::new(given),
            rollback_call: None,
            store: None,
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
            file: rb.absolute_file(),
            sha256: rb.sha256.clone(),
            operator: self.opts.operator.clone(),
            host: self.opts.host.clone(),
            mode: self.opts.mode.as_str().into(),
            vars: rb.vars.iter().cloned().collect(),
            pid: std::process::id(),
            plan: Some(Box::new(crate::journal::snapshot::PlanSnapshot::of(&rb))),
        };
        if let Err(Stop::Journal(e)) = self.rec.emit(started).await {
            self.rec.tell(Update::Message(e)).await;
            return Outcome::Failed;
        }
        let resumed_rollback = self.opts.resume.as_ref().and_then(|p| p.rollback.clone());
        let result = match self.start_watching().await {
            // The rollback had begun before the run stopped: it goes on where it was.
            Ok(()) if resumed_rollback.is_some() => {
                self.rolling_back = true;
                self.rollback_began = Some(Instant::now());
                self.stop_checks();
                Err(Stop::Rollback(RollbackReason::from_journal(
                    &resumed_rollback.unwrap_or_default(),
                )))
            }
            Ok(()) => self.run_phases(&rb.phases, false).await,
            // A trigger already firing at the first sample: the rollback starts before any step,
            // and every forward step is marked cancelled, as for any rollback.
            Err(stop @ Stop::Rollback(_)) => {
                let first = StepRef {
                    rollback: false,
                    phase: 0,
                    step: 0,
                };
                match self.cancel_rest(first, stop).await {
                    Ok(stop) | Err(stop) => Err(stop),
                }
            }
            Err(stop) => Err(stop),
        };
        let (outcome, reason) = match result {
            Ok(()) => (Outcome::Succeeded, None),
            Err(Stop::Failed(r)) => (Outcome::Failed, r),
            Err(Stop::Aborted(r)) => (Outcome::Aborted, r),
            Err(Stop::Interrupted(r)) => (Outcome::Interrupted, Some(r)),
            // Handed over: the new driver goes on from here; this session ends without a word more.
            Err(Stop::HandedOver(to)) => {
                self.handed_over(&to).await;
                return Outcome::Interrupted;
            }
            Err(Stop::Rollback(reason)) => match self.roll_back(reason).await {
                Ok(o) => o,
                Err(Stop::HandedOver(to)) => {
                    self.handed_over(&to).await;
                    return Outcome::Interrupted;
                }
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
        self.stop_watching();
        if let Err(Stop::Journal(e)) = self.finish(outcome, reason).await {
            self.rec.tell(Update::Message(e)).await;
        }
        self.finish_notify().await;
        outcome
    }

    /// Notifications still pending when the run ends get a short grace period (the operator is
    /// told when it is more than a moment), then are journaled as not sent.
    async fn finish_notify(&mut self) {
        let mut notify = std::mem::replace(&mut self.rec.notify, crate::notify::Notifier::none());
        let quiet = Duration::from_millis(300);
        let mut pending = notify.close().await;
        if pending > 0 {
            pending = notify.settle(quiet).await;
        }
        if pending > 0 {
            self.rec
                .tell(Update::Message(format!(
                    "waiting up to {}s for {pending} notification{} still being sent",
                    crate::notify::GRACE.as_secs(),
                    if pending == 1 { "" } else { "s" }
                )))
                .await;
        }
        notify.finish(crate::notify::GRACE - quiet).await;
    }

    /// The last events: a step still waiting when the run stopped, a rehearsal's figures, and
    /// `run_finished`.
    async fn finish(&mut self, outcome: Outcome, reason: Option<String>) -> Result<(), Stop> {
        if let Some((at, attempt, started)) = self.unfinished.take() {
            let status = if outcome == Outcome::Interrupted {
                StepStatus::Interrupted
            } else {
                StepStatus::Cancelled
            };
            self.finish_simple(at, attempt, status, started, None).await?;
        }
        if self.opts.rehearsal.is_some() {
            let ms = |d: Duration| d.as_millis() as u64;
            let fired_to_decision_ms = match (self.first_fired, self.rollback_began) {
                (Some(f), Some(r)) => Some(ms(r.saturating_duration_since(f))),
                _ => None,
            };
            let rollback_ms = self.rollback_began.map(|r| ms(r.elapsed()));
            self.rec
                .emit(Event::RehearsalFigures {
                    fired_to_decision_ms,
                    rollback_ms,
                })
                .await?;
        }
        let finished = Event::RunFinished {
            outcome,
            exit_code: outcome.exit_code(),
            reason,
        };
        self.rec.emit(finished).await
    }

    async fn run_phases(&mut self, phases: &[Phase], rollback: bool) -> Result<(), Stop> {
        for (pi, phase) in phases.iter().enumerate() {
            if !rollback {
                self.arm_phase(&phase.id).await?;
            }
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
                // A hang-up stops the forward plan after the step in flight; a rollback that has
                // begun goes on with its automated steps (a step that needs an operator stops it).
                if self.detached && !rollback {
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
        self.rolling_back = true;
        self.rollback_began = Some(Instant::now());
        self.stop_checks();
        self.rec
            .emit(Event::RollbackStarted {
                reason: reason.to_string(),
                operator: self.rollback_call.is_some().then(|| self.opts.operator.clone()),
                note: self.rollback_call.take().flatten(),
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
        self.emit_finished(at, attempt, StepStatus::Cancelled, took, None)
            .await
    }

    async fn roll_back(&mut self, reason: RollbackReason) -> Result<(Outcome, Option<String>), Stop> {
        let rb = self.rb.clone();
        let Some(procedure) = &rb.rollback else {
            let why =
                format!("a rollback was called for ({reason}), but this runbook has no [rollback] procedure");
            self.rec.tell(Update::Message(why.clone())).await;
            return Ok((Outcome::RollbackFailed, Some(why)));
        };
        let result = self.run_phases(&procedure.phases, true).await;
        let status = match &result {
            Ok(()) => RollbackStatus::Succeeded,
            Err(Stop::Interrupted(r)) => return Ok((Outcome::Interrupted, Some(r.clone()))),
            Err(Stop::Journal(e)) => return Err(Stop::Journal(e.clone())),
            Err(Stop::HandedOver(to)) => return Err(Stop::HandedOver(to.clone())),
            Err(_) => RollbackStatus::Failed,
        };
        self.rec.emit(Event::RollbackFinished { status }).await?;
        Ok(match result {
            Ok(()) => (Outcome::RolledBack, None),
            Err(Stop::Failed(r) | Stop::Aborted(r)) => (Outcome::RollbackFailed, r),
            Err(_) => (Outcome::RollbackFailed, None),
        })
    }

    fn names(&self, at: StepRef) -> (String, String) {
        let p = &self.rb.phases_of(at.rollback)[at.phase];
        (p.id.clone(), p.steps[at.step].id.clone())
    }

    async fn note(&mut self, text: String) -> Result<(), Stop> {
        let operator = self.opts.operator.clone();
        self.rec.emit(Event::Note { text, operator }).await
    }
}
