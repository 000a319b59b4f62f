//! The terminal UI's state: everything on screen, built from the engine's updates. No I/O here:
//! `apply` folds an update in, and the render functions read `&App`.
//!
//! Memory is bounded: each step keeps the tail of its output (its log file has everything), and
//! each metric a fixed number of samples for its sparkline.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::engine::{Mode, StepRef, Update, Wait};
use crate::journal::{Event, Outcome, StepStatus};
use crate::metrics::SourceKind;
use crate::runbook::{Phase, Runbook, Step, StepKind};

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

/// The output of one step attempt, bounded.
#[derive(Debug, Default, Clone)]
pub struct LogView {
    pub lines: VecDeque<(SystemTime, String)>,
    /// Lines that no longer fit and were dropped from the screen (the log file has them).
    pub dropped: u64,
    /// A line without its newline yet, as it arrived.
    partial: String,
    /// That line as shown: its last state (after the last `\r`), cleaned, with when it changed.
    pub pending: Option<(SystemTime, String)>,
    /// Read back from the log file (an earlier attempt): its lines have no times.
    pub from_file: bool,
}

/// Tab stops every 8 columns, as a terminal has them.
const TAB: usize = 8;

/// One line as the screen shows it: its last state if it was redrawn with `\r` (a progress line),
/// terminal escapes and control characters removed, tabs expanded.
pub fn shown_line(raw: &str) -> String {
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let last = raw.rsplit('\r').next().unwrap_or(raw);
    let clean = crate::text::clean(last.as_bytes());
    if !clean.contains('\t') {
        return clean.into_owned();
    }
    let mut out = String::with_capacity(clean.len() + TAB);
    let mut col = 0;
    for c in clean.chars() {
        if c == '\t' {
            let n = TAB - col % TAB;
            out.extend(std::iter::repeat_n(' ', n));
            col += n;
        } else {
            out.push(c);
            col += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        }
    }
    out
}

impl LogView {
    /// An earlier attempt's output, read back from its log file.
    pub fn from_file(bytes: &[u8]) -> LogView {
        let mut log = LogView {
            from_file: true,
            ..LogView::default()
        };
        log.push_chunk(SystemTime::UNIX_EPOCH, bytes);
        log
    }

    /// Lines on screen, the unfinished one included.
    pub fn len(&self) -> usize {
        self.lines.len() + usize::from(self.pending.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Line `i` (0 is the oldest kept) and when it arrived.
    pub fn line(&self, i: usize) -> (SystemTime, &str) {
        match self.lines.get(i) {
            Some((at, text)) => (*at, text),
            None => {
                let (at, text) = self.pending.as_ref().expect("a line in range");
                (*at, text)
            }
        }
    }

    fn set_pending(&mut self, at: SystemTime) {
        self.pending = (!self.partial.is_empty()).then(|| (at, shown_line(&self.partial)));
    }

    /// Output that later output pushes off the screen anyway: counted, not kept.
    pub fn skip_chunk(&mut self, at: SystemTime, bytes: &[u8]) {
        let lines = memchr::memchr_iter(b'\n', bytes).count();
        match memchr::memrchr(b'\n', bytes) {
            Some(last) => {
                self.dropped += lines as u64;
                self.partial = String::from_utf8_lossy(&bytes[last + 1..]).into_owned();
            }
            None => self.partial.push_str(&String::from_utf8_lossy(bytes)),
        }
        self.set_pending(at);
    }

    pub fn push_chunk(&mut self, at: SystemTime, bytes: &[u8]) {
        self.push_chunk_lines(at, bytes);
        self.set_pending(at);
    }

    fn push_chunk_lines(&mut self, at: SystemTime, bytes: &[u8]) {
        // Only the last LOG_LINES lines of a big chunk can stay on screen: count the rest.
        let bytes = match memchr::memrchr_iter(b'\n', bytes).nth(LOG_LINES) {
            Some(cut) => {
                self.skip_chunk(at, &bytes[..=cut]);
                &bytes[cut + 1..]
            }
            None => bytes,
        };
        let text = String::from_utf8_lossy(bytes);
        let mut rest: &str = &text;
        if !self.partial.is_empty() {
            let mut joined = std::mem::take(&mut self.partial);
            match rest.find('\n') {
                Some(i) => {
                    joined.push_str(&rest[..i]);
                    self.push_line(at, &joined);
                    rest = &rest[i + 1..];
                }
                None => {
                    joined.push_str(rest);
                    self.partial = joined;
                    return;
                }
            }
        }
        let complete = rest.ends_with('\n');
        let body = rest.strip_suffix('\n').unwrap_or(rest);
        let mut lines = body.split('\n').peekable();
        while let Some(line) = lines.next() {
            if lines.peek().is_none() && !complete {
                self.partial = line.to_string();
            } else {
                self.push_line(at, line);
            }
        }
    }

    fn push_line(&mut self, at: SystemTime, line: &str) {
        if self.lines.len() == LOG_LINES {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back((at, shown_line(line)));
    }
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

    fn find(&self, phase: &str, step: &str, rollback: bool) -> Option<StepRef> {
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

    /// Folds one update from the engine into the screen.
    pub fn apply(&mut self, update: Update) {
        self.dirty = true;
        match update {
            Update::Output { step, chunk } => {
                let held = self.hold_view(step);
                self.logs
                    .entry(step)
                    .or_default()
                    .push_chunk(chunk.at, &chunk.bytes);
                self.keep_view(step, held);
            }
            Update::Waiting { step, why } => {
                // A failed step stays `Done` (failed): that it waits for a decision is
                // `self.waiting`, which goes away when the run moves on or rolls back.
                if let Some(v) = self.view_mut(step)
                    && matches!(why, Wait::GoAhead { .. } | Wait::Interrupted | Wait::Approval(_))
                {
                    v.state = StepState::Waiting(why.clone());
                }
                let irreversible = matches!(why, Wait::GoAhead { irreversible: true });
                self.waiting = Some((step, why));
                self.move_to(step);
                // An irreversible step reached opens its confirmation by itself (SPEC §5), unless
                // the operator is in another dialog (typing a note, say): then it waits for Enter.
                // Only `y` in it starts the step; a key typed ahead (Enter) does nothing there.
                if irreversible && self.dialogs.is_empty() {
                    self.selected = step;
                    self.dialogs.push(super::dialog::Dialog::Irreversible(step));
                }
            }
            Update::Message(m) => self.note(m),
            Update::Event(record) => self.event(record.event),
            Update::Store(status) => self.store_behind = status.behind,
            Update::Team(t) => self.team(t),
        }
    }

    fn move_to(&mut self, at: StepRef) {
        self.current = Some(at);
        if self.follow {
            if self.selected != at {
                self.attempt_shown = None;
            }
            self.selected = at;
            self.log_from_end();
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::StepStarted {
                phase,
                step,
                attempt,
                rollback,
            } => {
                if !rollback {
                    self.arm(&phase);
                }
                let Some(at) = self.find(&phase, &step, rollback) else {
                    return;
                };
                self.waiting = None;
                // A manual step starts by waiting for the operator; any other step starts running.
                let manual = matches!(self.step(at).kind, StepKind::Manual(_));
                if let Some(v) = self.view_mut(at) {
                    v.attempts = v.attempts.max(attempt);
                    v.state = if manual {
                        // The engine's `Waiting` that follows says whether it is irreversible.
                        StepState::Waiting(Wait::GoAhead { irreversible: false })
                    } else {
                        StepState::Running {
                            since: Instant::now(),
                            attempt,
                        }
                    };
                }
                if attempt > 1 {
                    // A new attempt's output replaces the last one's on screen; the last one's
                    // stays reachable (`[`).
                    if let Some(log) = self.logs.remove(&at) {
                        self.earlier_logs.insert((at, attempt - 1), log);
                    }
                    if self.selected == at && self.attempt_shown.is_some() {
                        self.attempt_shown = None;
                        self.log_from_end();
                    }
                }
                self.move_to(at);
            }
            Event::StepFinished(f) => {
                let Some(at) = self.find(&f.phase, &f.step, f.rollback) else {
                    return;
                };
                if self.waiting.as_ref().is_some_and(|(w, _)| *w == at) {
                    self.waiting = None;
                }
                let note = f.error.clone().or(f.reason.clone());
                if let Some(v) = self.view_mut(at) {
                    v.last_error = note.clone();
                    v.code = f
                        .exit_code
                        .map(|c| format!("exit {c}"))
                        .or(f.http_status.map(|h| format!("HTTP {h}")));
                    v.log_path = f.log.clone();
                    v.attempts = v.attempts.max(f.attempt);
                    v.ends.retain(|e| e.attempt != f.attempt);
                    v.ends.push(AttemptEnd {
                        attempt: f.attempt,
                        status: f.status,
                        took: Duration::from_millis(f.duration_ms),
                        code: v.code.clone(),
                        error: note.clone(),
                        log: f.log.clone(),
                    });
                    v.state = StepState::Done {
                        status: f.status,
                        took: Duration::from_millis(f.duration_ms),
                        attempt: f.attempt,
                        note,
                    };
                }
                if f.status == StepStatus::Failed || f.status == StepStatus::TimedOut {
                    self.move_to(at);
                }
            }
            Event::MetricsSampled { values, errors } => {
                for m in &mut self.metrics {
                    let v = values.get(&m.id).copied().flatten();
                    if m.history.len() == HISTORY {
                        m.history.pop_front();
                    }
                    m.history.push_back(v);
                    m.last = v;
                    m.error = errors.get(&m.id).cloned();
                }
                // A firing trigger whose data came back no longer says it was lost.
                for (t, spec) in self.triggers.iter_mut().zip(&self.rb.triggers) {
                    if let crate::runbook::TriggerKind::Metric { metric, .. } = &spec.kind
                        && values.get(metric).copied().flatten().is_some()
                        && t.reason.as_deref().is_some_and(|r| r.starts_with(DATA_LOST))
                    {
                        t.reason = None;
                    }
                }
            }
            Event::TriggerPending { trigger, value } => {
                self.trigger(&trigger, TriggerState::Pending, value, None)
            }
            Event::TriggerFired {
                trigger,
                value,
                reason,
                ..
            } => {
                self.bell = true;
                self.trigger(&trigger, TriggerState::Firing, value, reason);
            }
            Event::TriggerCleared { trigger, value } => self.trigger(&trigger, TriggerState::Ok, value, None),
            Event::TriggerAcknowledged { trigger, value, .. } => {
                self.trigger(&trigger, TriggerState::Acknowledged, value, None)
            }
            Event::TriggerUnknown { trigger, error } => {
                self.trigger(&trigger, TriggerState::Unknown, None, Some(error))
            }
            Event::FaultInjected { by } => {
                self.fault_injected = true;
                self.note(format!(
                    "fault injected ({by}): the simulated metrics rise past their thresholds"
                ));
            }
            Event::RollbackStarted { reason, .. } => {
                self.rollback_reason = Some(reason);
                self.waiting = None;
            }
            Event::RollbackFinished { status } => self.note(format!("rollback {status}")),
            Event::RehearsalFigures {
                fired_to_decision_ms,
                rollback_ms,
            } => {
                self.rehearsal_figures = Some((fired_to_decision_ms, rollback_ms));
            }
            Event::RunFinished { outcome, reason, .. } => {
                self.finished = Some((outcome, reason));
                self.waiting = None;
            }
            Event::Note { text, operator } => self.note(format!("note by {operator}: {text}")),
            Event::Approval { .. } | Event::Handover { .. } => {
                self.note(crate::journal::team::describe(&event).unwrap_or_default())
            }
            Event::WriteFailed { file, error } => self.note(format!("cannot write {file}: {error}")),
            ref e @ (Event::StoreBehind { .. }
            | Event::StoreCaughtUp { .. }
            | Event::StoreLeaseLost { .. }
            | Event::StoreLeaseRenewed { .. }
            | Event::StoreFenced { .. }) => {
                if let Some(text) = crate::store::describe(e) {
                    self.note(text);
                }
            }
            // Only what needs the operator's eye: a failure, or what a rehearsal would send.
            Event::NotifySent { .. } => {}
            e @ (Event::NotifyFailed { .. } | Event::NotifyRehearsed { .. }) => {
                self.note(e.notify_words().unwrap_or_default())
            }
            Event::RunStarted { mode, .. } => {
                if mode == crate::engine::Mode::Resume.as_str() {
                    self.resumed();
                }
            }
        }
    }

    /// A resumed run watches every trigger afresh: what the last session showed (pending with a
    /// countdown, firing) no longer holds. Until the engine's first reading of each, they show
    /// as not yet sampled (manual triggers have nothing to sample: ok).
    fn resumed(&mut self) {
        for (t, spec) in self.triggers.iter_mut().zip(&self.rb.triggers) {
            if t.state == TriggerState::Disarmed {
                continue;
            }
            t.state = match spec.kind {
                crate::runbook::TriggerKind::Manual => TriggerState::Ok,
                _ => TriggerState::NotYetSampled,
            };
            t.since = None;
            t.value = None;
            t.reason = None;
            t.kept_window = None;
        }
    }

    fn trigger(&mut self, id: &str, state: TriggerState, value: Option<f64>, reason: Option<String>) {
        // Triggers armed from a phase show as watched from their first transition on.
        for t in &mut self.triggers {
            if t.id != id {
                continue;
            }
            let now = Instant::now();
            let no_data = reason.as_deref() == Some(crate::metrics::NO_DATA);
            use TriggerState::{Acknowledged, Firing, Pending, Unknown};
            match (t.state, state) {
                // Data lost while firing or acknowledged: the trigger stays as it is (SPEC §7).
                (Firing | Acknowledged, Unknown) => {
                    t.reason = reason.as_ref().map(|r| format!("{DATA_LOST}{r}"));
                    continue;
                }
                // A failed query keeps a pending window; an empty answer ends it.
                (Pending, Unknown) if !no_data => t.kept_window = t.since,
                (Unknown, Pending) => {}
                _ => t.kept_window = None,
            }
            t.since = match state {
                Pending => t.kept_window.take().or(Some(now)),
                _ => Some(now),
            };
            t.state = state;
            if value.is_some() {
                t.value = value;
            }
            t.reason = reason.clone();
        }
    }

    /// Marks triggers armed from `phase` as watched (the engine arms them when the phase starts).
    pub fn arm(&mut self, phase: &str) {
        for (t, spec) in self.triggers.iter_mut().zip(&self.rb.triggers) {
            if t.state == TriggerState::Disarmed && spec.armed_from.as_deref() == Some(phase) {
                t.state = TriggerState::Ok;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_keep_a_bounded_tail_and_join_split_lines() {
        let mut log = LogView::default();
        let t = SystemTime::UNIX_EPOCH;
        log.push_chunk(t, b"one\ntw");
        log.push_chunk(t, b"o\nthree\n");
        let lines: Vec<&str> = log.lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(lines, ["one", "two", "three"]);
        let many: String = (0..LOG_LINES + 10).map(|i| format!("{i}\n")).collect();
        log.push_chunk(t, many.as_bytes());
        assert_eq!(log.lines.len(), LOG_LINES);
        assert_eq!(log.dropped, 13);
        assert_eq!(log.lines.back().unwrap().1, (LOG_LINES + 9).to_string());
        assert_eq!(log.lines.front().unwrap().1, "10");
        // A chunk only counted keeps its unfinished line for the next one.
        log.skip_chunk(t, b"a\nb\npart");
        log.push_chunk(t, b"ial\n");
        // 2 counted lines, and the oldest line pushed off by "partial".
        assert_eq!(log.dropped, 16);
        assert_eq!(log.lines.back().unwrap().1, "partial");
    }
}
