//! The terminal UI's state: everything on screen, built from the engine's updates. No I/O here:
//! `apply` folds an update in, and the render functions read `&App`.
//!
//! Memory is bounded: each step keeps the tail of its output (its log file has everything), and
//! each metric a fixed number of samples for its sparkline.
//!
//! - `log`: one step attempt's output, bounded.
//! - `apply`: folding the engine's updates in.
//! - `rollback`: why a rollback runs, in words.

mod apply;
mod log;
mod rollback;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::engine::{Mode, StepRef, Update, Wait};
use crate::journal::{Outcome, StepStatus};
use crate::metrics::SourceKind;
use crate::runbook::{Phase, Runbook, Step, StepKind};
pub use log::{LogView, shown_line};

/// Lines of output kept per step attempt on screen.
pub const LOG_LINES: usize = 2000;
/// Samples kept per metric, for its sparkline.
pub const HISTORY: usize = 120;
/// Remarks kept (retry delays, leftover processes, metric problems).
pub const MESSAGES: usize = 50;

/// Where a step stands, as the screen shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum StepState {
    Pending,
    /// Waiting for the operator (a go-ahead, or a decision after a failure).
    Waiting(Wait),
    Running {
        since: Instant,
        attempt: u32,
    },
    Done {
        status: StepStatus,
        took: Duration,
        attempt: u32,
        note: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct StepView {
    pub state: StepState,
    /// Why the last attempt failed (or how it was settled), kept while the step waits for a decision.
    pub last_error: Option<String>,
    /// Exit code or HTTP status of the last attempt.
    pub code: Option<String>,
    pub log_path: Option<String>,
    /// The highest attempt started (0: never started).
    pub attempts: u32,
    /// How each attempt ended, oldest first.
    pub ends: Vec<AttemptEnd>,
}

/// How one attempt of a step ended.
#[derive(Debug, Clone)]
pub struct AttemptEnd {
    pub attempt: u32,
    pub status: StepStatus,
    pub took: Duration,
    /// Exit code or HTTP status.
    pub code: Option<String>,
    /// Why it failed, or how it was settled.
    pub error: Option<String>,
    /// Its log, relative to the run folder.
    pub log: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MetricView {
    pub id: String,
    pub title: String,
    pub unit: crate::runbook::Unit,
    pub source: SourceKind,
    pub history: VecDeque<Option<f64>>,
    pub last: Option<f64>,
    pub error: Option<String>,
    /// The thresholds of the triggers that watch it.
    pub thresholds: Vec<crate::runbook::Threshold>,
}

/// How a firing trigger's lost data is shown, until the data comes back.
const DATA_LOST: &str = "data lost: ";

/// Where a trigger stands, as the screen shows it: the engine's states (`metrics::triggers`), as
/// its events report them, plus `NotYetSampled` after a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerState {
    /// Not watched yet: its `armed_from` phase has not started.
    Disarmed,
    /// Resumed: what the last session showed no longer holds, and no reading came yet.
    NotYetSampled,
    Ok,
    Pending,
    Firing,
    Acknowledged,
    Unknown,
}

impl TriggerState {
    /// The words on screen.
    pub fn label(self) -> &'static str {
        match self {
            TriggerState::Disarmed => "disarmed",
            TriggerState::NotYetSampled => "not yet sampled",
            TriggerState::Ok => "ok",
            TriggerState::Pending => "pending",
            TriggerState::Firing => "firing",
            TriggerState::Acknowledged => "acknowledged",
            TriggerState::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TriggerView {
    pub id: String,
    pub title: String,
    pub state: TriggerState,
    pub since: Option<Instant>,
    pub value: Option<f64>,
    pub reason: Option<String>,
    /// For pending triggers: how long the breach must last.
    pub window: Option<Duration>,
    /// Shown unknown after a failed query while pending: when the window it keeps began.
    pub kept_window: Option<Instant>,
}

/// Which pane has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Steps,
    Log,
}

/// A pane that can take the whole screen (`z`, `m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Steps,
    Log,
    /// Metrics and triggers.
    Metrics,
}

/// The whole screen's state.
pub struct App {
    pub rb: Arc<Runbook>,
    pub mode: Mode,
    pub operator: String,
    pub host: String,
    pub started: Instant,
    pub run_dir: String,
    /// The run's id in the shared store, when it is shared through one: another host names it
    /// so (`runbook approve ID STEP`).
    pub shared_id: Option<String>,
    pub steps: Vec<Vec<StepView>>,
    pub rollback_steps: Vec<Vec<StepView>>,
    pub logs: HashMap<StepRef, LogView>,
    pub metrics: Vec<MetricView>,
    pub triggers: Vec<TriggerView>,
    /// The step the engine is on.
    pub current: Option<StepRef>,
    /// The step the operator looks at (follows `current` unless moved).
    pub selected: StepRef,
    pub follow: bool,
    pub waiting: Option<(StepRef, Wait)>,
    pub messages: VecDeque<(SystemTime, String)>,
    /// Why the rollback runs, in words (`called by alice: …`, `trigger error-rate … fired`).
    pub rollback_reason: Option<String>,
    pub finished: Option<(Outcome, Option<String>)>,
    pub focus: Focus,
    /// The pane that takes the whole screen, if one does.
    pub zoom: Option<Pane>,
    /// The terminal's size (columns, rows), for what a key does that depends on it (a page).
    pub screen: (u16, u16),
    /// Lines scrolled up from the bottom of the log (0 = following its end).
    pub log_scroll: usize,
    /// Long log lines wrap (`w`); otherwise they are cut and `log_hscroll` scrolls sideways.
    pub wrap: bool,
    /// Columns scrolled to the right in the log when lines do not wrap.
    pub log_hscroll: usize,
    /// What the log is searched for.
    pub search: Option<String>,
    /// The line of the log the search last went to.
    pub search_at: Option<usize>,
    /// The attempt of the selected step whose log is shown (`None`: the latest).
    pub attempt_shown: Option<u32>,
    /// Earlier attempts' output: kept from this session, or read back from their log files.
    pub earlier_logs: HashMap<(StepRef, u32), LogView>,
    pub fault_injected: bool,
    /// Set when something on screen changed since the last frame.
    pub dirty: bool,
    /// How far behind the shared store is, while it cannot be written (SPEC §9).
    pub store_behind: Option<crate::store::link::Behind>,
    /// The store has not confirmed this driver's lease (or it expired): no new step starts.
    pub lease_hold: bool,
    /// A trigger fired since the last frame: ring the bell once.
    pub bell: bool,
    pub rehearsal_figures: Option<(Option<u64>, Option<u64>)>,
    /// Open dialogs; the last one is on top and gets the keys first.
    pub dialogs: Vec<super::dialog::Dialog>,
    /// The operator asked to quit: leave once the run has stopped.
    pub quit_when_done: bool,
    /// A rehearsal's speed-up (watches are divided by it).
    pub speed: f64,
    /// Set on a watcher's screen (`runbook attach`): read-only, with who drives.
    pub watching: Option<super::watching::Watching>,
    /// The run was handed over to this operator: this screen no longer drives it.
    pub handed_over: Option<String>,
    /// The terminal reports the mouse wheel (`M`; off at start, so that selecting text works).
    pub mouse: bool,
}

fn views(phases: &[Phase]) -> Vec<Vec<StepView>> {
    phases
        .iter()
        .map(|p| {
            p.steps
                .iter()
                .map(|_| StepView {
                    state: StepState::Pending,
                    last_error: None,
                    code: None,
                    log_path: None,
                    attempts: 0,
                    ends: Vec::new(),
                })
                .collect()
        })
        .collect()
}

impl App {
    pub fn new(rb: Arc<Runbook>, mode: Mode, sources: &[SourceKind], run_dir: String) -> App {
        let metrics = rb
            .metric
            .iter()
            .zip(
                sources
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(SourceKind::Simulated)),
            )
            .map(|(m, source)| MetricView {
                id: m.id.clone(),
                title: m.title.clone(),
                unit: m.unit,
                source,
                history: VecDeque::with_capacity(HISTORY),
                last: None,
                error: None,
                thresholds: rb
                    .triggers
                    .iter()
                    .filter_map(|t| match &t.kind {
                        crate::runbook::TriggerKind::Metric {
                            metric, threshold, ..
                        } if metric == &m.id => Some(*threshold),
                        _ => None,
                    })
                    .collect(),
            })
            .collect();
        let triggers = rb
            .triggers
            .iter()
            .map(|t| TriggerView {
                id: t.id.clone(),
                title: t.title.clone(),
                state: if t.armed_from.is_some() {
                    TriggerState::Disarmed
                } else {
                    TriggerState::Ok
                },
                since: None,
                value: None,
                reason: None,
                window: match &t.kind {
                    crate::runbook::TriggerKind::Metric { for_, .. } => Some(*for_),
                    _ => None,
                },
                kept_window: None,
            })
            .collect();
        App {
            steps: views(&rb.phases),
            rollback_steps: views(rb.phases_of(true)),
            rb,
            mode,
            operator: crate::identity::operator(),
            host: crate::identity::host(),
            started: Instant::now(),
            run_dir,
            shared_id: None,
            logs: HashMap::new(),
            metrics,
            triggers,
            current: None,
            selected: StepRef {
                rollback: false,
                phase: 0,
                step: 0,
            },
            follow: true,
            waiting: None,
            messages: VecDeque::new(),
            rollback_reason: None,
            finished: None,
            focus: Focus::Steps,
            zoom: None,
            screen: (80, 24),
            log_scroll: 0,
            wrap: true,
            log_hscroll: 0,
            search: None,
            search_at: None,
            attempt_shown: None,
            earlier_logs: HashMap::new(),
            fault_injected: false,
            dirty: true,
            store_behind: None,
            lease_hold: false,
            bell: false,
            rehearsal_figures: None,
            dialogs: Vec::new(),
            quit_when_done: false,
            speed: 1.0,
            watching: None,
            handed_over: None,
            mouse: false,
        }
    }

    pub fn phases(&self, rollback: bool) -> &[Phase] {
        self.rb.phases_of(rollback)
    }

    pub fn step(&self, at: StepRef) -> &Step {
        &self.phases(at.rollback)[at.phase].steps[at.step]
    }

    pub fn view(&self, at: StepRef) -> &StepView {
        let v = if at.rollback {
            &self.rollback_steps
        } else {
            &self.steps
        };
        &v[at.phase][at.step]
    }

    fn view_mut(&mut self, at: StepRef) -> Option<&mut StepView> {
        let v = if at.rollback {
            &mut self.rollback_steps
        } else {
            &mut self.steps
        };
        v.get_mut(at.phase)?.get_mut(at.step)
    }

    pub fn name(&self, at: StepRef) -> String {
        let p = &self.phases(at.rollback)[at.phase];
        format!("{}/{}", p.id, p.steps[at.step].id)
    }

    /// Where a step named in an event or a journal is on screen.
    pub fn find(&self, phase: &str, step: &str, rollback: bool) -> Option<StepRef> {
        let phases = self.phases(rollback);
        let pi = phases.iter().position(|p| p.id == phase)?;
        let si = phases[pi].steps.iter().position(|s| s.id == step)?;
        Some(StepRef {
            rollback,
            phase: pi,
            step: si,
        })
    }

    /// Firing triggers (not acknowledged).
    pub fn firing(&self) -> Vec<&TriggerView> {
        self.triggers
            .iter()
            .filter(|t| t.state == TriggerState::Firing)
            .collect()
    }

    /// The run is about to roll back by itself: the firing trigger whose `auto_rollback` runs out
    /// first, and when. Nothing while the rollback runs or after the run ended. The engine counts
    /// from the moment the trigger fired; so does this (the moment its event arrived).
    pub fn auto_rollback(&self) -> Option<(&TriggerView, Instant)> {
        (0..self.triggers.len())
            .filter_map(|i| Some((&self.triggers[i], self.auto_rollback_at(i)?)))
            .min_by_key(|(_, at)| *at)
    }

    /// When trigger `i` rolls back by itself, while it fires and has an `auto_rollback`.
    pub fn auto_rollback_at(&self, i: usize) -> Option<Instant> {
        let (t, spec) = (self.triggers.get(i)?, self.rb.triggers.get(i)?);
        if t.state != TriggerState::Firing || self.rollback_reason.is_some() || self.finished.is_some() {
            return None;
        }
        Some(t.since? + spec.auto_rollback?.div_f64(self.speed))
    }

    /// A running `watch` that will pass by itself, and when.
    pub fn watch_passes(&self) -> Option<(StepRef, Instant)> {
        let at = self.running()?;
        let (StepKind::Watch(d), StepState::Running { since, .. }) =
            (&self.step(at).kind, &self.view(at).state)
        else {
            return None;
        };
        Some((at, *since + d.div_f64(self.speed)))
    }

    /// The step in flight, if one runs.
    pub fn running(&self) -> Option<StepRef> {
        let at = self.current?;
        matches!(self.view(at).state, StepState::Running { .. }).then_some(at)
    }

    pub fn note(&mut self, text: impl Into<String>) {
        if self.messages.len() == MESSAGES {
            self.messages.pop_front();
        }
        self.messages.push_back((SystemTime::now(), text.into()));
        self.dirty = true;
    }

    /// Folds a batch of updates in. Output that later output of the same step in the batch pushes
    /// off the screen anyway is only counted, not split into lines: a flood costs little.
    pub fn apply_batch(&mut self, batch: Vec<Update>) {
        let mut after: HashMap<StepRef, usize> = HashMap::new();
        let mut superseded = vec![false; batch.len()];
        for (i, u) in batch.iter().enumerate().rev() {
            if let Update::Output { step, chunk } = u {
                let n = after.entry(*step).or_default();
                superseded[i] = *n >= LOG_LINES;
                *n += memchr::memchr_iter(b'\n', &chunk.bytes).count();
            }
        }
        for (u, skip) in batch.into_iter().zip(superseded) {
            match u {
                Update::Output { step, chunk } if skip => {
                    self.dirty = true;
                    let held = self.hold_view(step);
                    self.logs
                        .entry(step)
                        .or_default()
                        .skip_chunk(chunk.at, &chunk.bytes);
                    self.keep_view(step, held);
                }
                u => self.apply(u),
            }
        }
    }

    /// Where the log on screen stands before output arrives for `step`: while the operator reads
    /// it scrolled up, new output must not move the lines under their eyes.
    fn hold_view(&self, step: StepRef) -> Option<(usize, u64)> {
        let log = self.logs.get(&step)?;
        (step == self.selected && self.attempt_shown.is_none() && self.log_scroll > 0)
            .then(|| (log.len(), log.dropped))
    }

    fn keep_view(&mut self, step: StepRef, held: Option<(usize, u64)>) {
        let (Some((len, dropped)), Some(log)) = (held, self.logs.get(&step)) else {
            return;
        };
        let added = (log.len() + (log.dropped - dropped) as usize).saturating_sub(len);
        self.log_scroll = (self.log_scroll + added).min(log.len().saturating_sub(1));
    }

    /// The attempt of the selected step whose log is on screen (0: it never started).
    pub fn shown_attempt(&self) -> u32 {
        let latest = self.view(self.selected).attempts;
        self.attempt_shown.unwrap_or(latest).min(latest)
    }

    /// The log on screen: the selected step's, of the attempt shown.
    pub fn shown_log(&self) -> Option<&LogView> {
        let at = self.selected;
        let attempt = self.shown_attempt();
        if attempt == self.view(at).attempts
            && let Some(log) = self.logs.get(&at)
        {
            return Some(log);
        }
        self.earlier_logs.get(&(at, attempt))
    }

    /// A log the screen should show but does not have: an earlier attempt, or one from an earlier
    /// session (resumed). Its path is relative to the run folder; the event loop reads it and
    /// hands it to `log_loaded`.
    pub fn wanted_log(&self) -> Option<(StepRef, u32, String)> {
        let at = self.selected;
        let attempt = self.shown_attempt();
        let step = self.step(at);
        if attempt == 0
            || !matches!(step.kind, StepKind::Run(_) | StepKind::Http(_))
            || self.shown_log().is_some()
        {
            return None;
        }
        // The latest attempt running in this session: its output arrives live.
        if attempt == self.view(at).attempts && matches!(self.view(at).state, StepState::Running { .. }) {
            return None;
        }
        let phase = &self.phases(at.rollback)[at.phase];
        let path = crate::engine::log_file(at.rollback, &phase.id, &step.id, attempt);
        Some((at, attempt, path))
    }

    /// An attempt's log file read back (or why it could not be).
    pub fn log_loaded(&mut self, at: StepRef, attempt: u32, read: Result<Vec<u8>, String>) {
        let log = match read {
            Ok(bytes) => LogView::from_file(&bytes),
            Err(e) => {
                let mut log = LogView::from_file(b"");
                log.lines.push_back((SystemTime::UNIX_EPOCH, e));
                log
            }
        };
        self.earlier_logs.insert((at, attempt), log);
        self.dirty = true;
    }

    /// Another step (or attempt) on screen: its log is read from its end, from the first column.
    pub fn log_from_end(&mut self) {
        self.log_scroll = 0;
        self.log_hscroll = 0;
        self.search_at = None;
    }
}
