//! A watcher's state: the screen built from the run's journal as it grows, the step whose log is
//! followed, and what the driver answers to the watcher's requests. The event loop that feeds it
//! is `attach`'s.

use std::time::SystemTime;

use crate::control::{ApprovalWaiting, Request, Response};
use crate::engine::{Mode, StepRef, Update, Wait};
use crate::journal::{Event, Record};
use crate::runbook::StepKind;
use crate::runs::follow::Followed;
use crate::runs::source::Source;
use crate::runs::{Liveness, Standing, WaitFor};
use crate::tui::LOG_READ;
use crate::tui::state::{App, StepState};

/// The instant at which something journaled at `ts` happened (for clocks on screen).
pub(super) fn instant_of(ts: &str) -> Option<std::time::Instant> {
    let at = humantime::parse_rfc3339(ts).ok()?;
    let age = SystemTime::now().duration_since(at).unwrap_or_default();
    std::time::Instant::now().checked_sub(age)
}

/// The state of one watcher: the screen, the journal so far, and the step whose log is followed.
pub(super) struct Watcher {
    pub(super) app: App,
    pub(super) records: Vec<Record>,
    pub(super) following: Option<StepRef>,
    /// The log of the step that ended last, and that step: through the store, its last bytes
    /// may come after its end.
    pub(super) closed: Option<(String, StepRef)>,
    pub(super) source: Source,
    /// Events arrived since the driver was last asked about approvals.
    pub(super) moved: bool,
}

impl Watcher {
    /// Folds what changed into the screen, in order. The followed step's last output comes before
    /// its end.
    pub(super) async fn take(&mut self, changes: Vec<Followed>, live: bool) {
        let mut events = false;
        for c in changes {
            match c {
                Followed::Record(record) => {
                    events |= !matches!(record.event, Event::MetricsSampled { .. });
                    self.record(*record, live).await;
                }
                other => self.fold(other),
            }
        }
        if events {
            self.moved = true;
            self.standing();
        }
    }

    /// What changed other than a journal event.
    pub(super) fn fold(&mut self, change: Followed) {
        match change {
            Followed::Output(bytes) => self.output(bytes),
            Followed::LogOutput { log, bytes } => {
                if let Some((_, step)) = self.closed.as_ref().filter(|(l, _)| *l == log) {
                    let chunk = crate::engine::Chunk {
                        at: SystemTime::now(),
                        bytes,
                    };
                    self.app.apply(Update::Output { step: *step, chunk });
                }
            }
            Followed::BadLine(text) => self.app.note(text),
            Followed::DriverChanged => self.driver_changed(),
            Followed::StoreLost(why) => {
                let at = self.source.store().unwrap_or_default();
                if let Some(v) = self.app.watching.as_mut().and_then(|w| w.store.as_mut()) {
                    v.lost = Some(SystemTime::now());
                }
                self.app.note(format!(
                    "lost the store {at} ({why}): what is shown may be behind; reconnecting"
                ));
            }
            Followed::StoreBack => {
                let at = self.source.store().unwrap_or_default();
                if let Some(v) = self.app.watching.as_mut().and_then(|w| w.store.as_mut()) {
                    v.lost = None;
                }
                self.app.note(format!("the store {at} is back: caught up"));
                self.app.dirty = true;
            }
            Followed::Approvals(aw) => self.approvals(aw),
            Followed::Record(_) => {}
        }
    }

    /// Output read along with an event (a step's log started or stopped being followed).
    pub(super) fn fold_all(&mut self, changes: Vec<Followed>) {
        for c in changes {
            self.fold(c);
        }
    }

    /// Loads the log of the step the watcher selected, when it is not on screen yet.
    pub(super) async fn load_log(&mut self) {
        if let Some((at, attempt, rel)) = self.app.wanted_log() {
            let read = self.source.read_log(&rel, LOG_READ).await;
            self.app.log_loaded(at, attempt, read);
        }
    }

    pub(super) fn output(&mut self, bytes: Vec<u8>) {
        if let Some(step) = self.following {
            let chunk = crate::engine::Chunk {
                at: SystemTime::now(),
                bytes,
            };
            self.app.apply(Update::Output { step, chunk });
        }
    }

    pub(super) async fn record(&mut self, record: Record, live: bool) {
        let step_log = match &record.event {
            Event::StepStarted {
                phase,
                step,
                attempt,
                rollback,
            } => Some((*rollback, phase.clone(), step.clone(), *attempt, true)),
            Event::StepFinished(f) => Some((f.rollback, f.phase.clone(), f.step.clone(), f.attempt, false)),
            _ => None,
        };
        let ts = record.ts.clone();
        self.records.push(record.clone());
        let handover = matches!(record.event, Event::RunStarted { .. });
        if let Some((rollback, phase, step, attempt, false)) = &step_log
            && self
                .following
                .is_some_and(|at| self.app.name(at) == format!("{phase}/{step}") && at.rollback == *rollback)
        {
            // Its last output, before its end.
            let rest = self.source.stop_log().await;
            self.fold_all(rest);
            if let Some(at) = self.following.take() {
                self.closed = Some((crate::engine::log_file(*rollback, phase, step, *attempt), at));
            }
        }
        self.app.apply(Update::Event(record));
        if handover {
            self.driver_changed();
        }
        if let Some((rollback, phase, step, attempt, true)) = step_log
            && let Some(at) = self.app.find(&phase, &step, rollback)
            && matches!(self.app.step(at).kind, StepKind::Run(_) | StepKind::Http(_))
        {
            if let Some(since) = instant_of(&ts)
                && let StepState::Running { since: s, .. } = &mut view_mut(&mut self.app, at).state
            {
                *s = since;
            }
            if live {
                self.following = Some(at);
                let path = crate::engine::log_file(rollback, &phase, &step, attempt);
                let now = self.source.follow_log(&path, false).await;
                self.fold_all(now);
            }
        }
    }

    /// What the journal does not say outright: a step that waits for its go-ahead before it
    /// starts, a failed step waiting for a decision.
    pub(super) fn standing(&mut self) {
        let pos = crate::runs::standing(&self.records, Some(&self.app.rb));
        if let Standing::Waiting { step, for_ } = pos.standing
            && let Some(at) = self.app.find(&step.phase, &step.step, step.rollback)
            && self.app.waiting.as_ref().is_none_or(|(w, _)| *w != at)
        {
            let why = match for_ {
                // Never opens the driver's irreversible confirmation on a watcher's screen.
                WaitFor::GoAhead => Wait::GoAhead { irreversible: false },
                // Known from the driver's answer to `hello`, never from the journal.
                WaitFor::Approvals => return,
                WaitFor::Decision => Wait::Failed {
                    status: match &self.app.view(at).state {
                        StepState::Done { status, .. } => *status,
                        _ => crate::journal::StepStatus::Failed,
                    },
                    error: None,
                },
            };
            self.app.apply(Update::Waiting { step: at, why });
        }
    }

    /// The lock file (or the lease) changed, or a session started: read who drives now.
    pub(super) fn driver_changed(&mut self) {
        let driver = self.source.driver(&self.records);
        // Through the store, a lease that ran out is all a watcher learns of a lost driver.
        if let (Some(w), Some(d)) = (&self.app.watching, &driver)
            && w.store.is_some()
            && d.alive == Liveness::Gone
            && !w.driver_gone()
            && self.app.finished.is_none()
        {
            let text = format!(
                "the lease of {} ran out without a renewal: its runbook is gone or cut off from the store; to go on: runbook resume {}",
                d.who(),
                w.run
            );
            self.app.note(text);
        }
        if let Some(w) = &mut self.app.watching {
            if let Some(d) = &driver {
                self.app.operator = d.operator.clone();
                self.app.host = d.host.clone();
            }
            w.driver = driver;
        }
        self.app.dirty = true;
    }
}

fn view_mut(app: &mut App, at: StepRef) -> &mut crate::tui::state::StepView {
    let v = if at.rollback {
        &mut app.rollback_steps
    } else {
        &mut app.steps
    };
    &mut v[at.phase][at.step]
}

pub(super) fn mode_of(records: &[Record]) -> Mode {
    let modes: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::RunStarted { mode, .. } => Some(mode.as_str()),
            _ => None,
        })
        .collect();
    match modes.as_slice() {
        [] => Mode::Run,
        [first, rest @ ..] if *first == "rehearse" || rest.contains(&"rehearse") => Mode::Rehearse,
        [_, rest @ ..] if !rest.is_empty() => Mode::Resume,
        _ => Mode::Run,
    }
}

impl Watcher {
    /// The driver's answer to a request of this watcher.
    pub(super) fn answer(&mut self, request: Request, answer: Result<Response, String>) {
        match (request, answer) {
            (Request::Hello, Ok(r)) => {
                let waiting = r.driver.map(|d| d.waiting).unwrap_or_default();
                if let Some(aw) = waiting.into_iter().next() {
                    self.approvals(aw);
                }
            }
            // Asked on its own: nothing to say when it gets no answer.
            (Request::Hello, Err(_)) => {}
            // The journal's `note` event shows it, as the driver recorded it.
            (Request::Note { .. }, Ok(r)) if r.ok => {}
            (_, Ok(r)) if r.ok => self.app.note(r.text().to_string()),
            (_, Ok(r)) => self.app.note(format!("refused: {}", r.text())),
            (request, Err(e)) => self.app.note(format!("{} not sent: {e}", request.op())),
        }
    }

    /// A step waits for approvals, as the driver says (`hello`, or its lease row in the store):
    /// shown as on the driver's screen. When the wait ends, the journal says what came of it.
    fn approvals(&mut self, aw: ApprovalWaiting) {
        let (phase, step) = aw.step.split_once('/').unwrap_or(("", &aw.step));
        if let Some(at) = self.app.find(phase, step, aw.rollback)
            && self.app.waiting.as_ref() != Some(&(at, Wait::Approval(aw.clone())))
        {
            self.app.apply(Update::Waiting {
                step: at,
                why: Wait::Approval(aw),
            });
        }
    }

    /// Whether the driver is to be asked (`hello`) whether a step waits for approvals: on this
    /// host, where its control socket answers; through the store its lease row says so unasked.
    pub(super) fn asks_hello(&self) -> bool {
        self.source.store().is_none()
    }

    /// Whether any step of the runbook needs approvals (then the driver is asked about them).
    pub(super) fn approvals_matter(&self) -> bool {
        self.app.finished.is_none()
            && [false, true].iter().any(|&rb| {
                self.app
                    .phases(rb)
                    .iter()
                    .any(|p| p.steps.iter().any(|s| s.approval.is_some()))
            })
    }

    /// A step that needs approvals waits for its go-ahead: once the driver gives it, it waits
    /// for approvals, and nothing is journaled about that.
    pub(super) fn approval_soon(&self) -> bool {
        self.app.finished.is_none()
            && matches!(&self.app.waiting, Some((at, Wait::GoAhead { .. })) if self.app.step(*at).approval.is_some())
    }
}
