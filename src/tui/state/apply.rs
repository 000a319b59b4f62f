//! Folding the engine's updates into the screen: each event moves the steps, triggers and messages
//! it concerns. No I/O here either.

use std::time::{Duration, Instant};

use super::{App, AttemptEnd, DATA_LOST, HISTORY, StepState, TriggerState};
use crate::engine::{StepRef, Update, Wait};
use crate::journal::{Event, StepStatus};
use crate::runbook::StepKind;

impl App {
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
                    self.dialogs.push(crate::tui::dialog::Dialog::Irreversible(step));
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
            Event::RollbackStarted {
                reason,
                operator,
                note,
            } => {
                let words = self.rollback_words(&reason, operator.as_deref(), note.as_deref());
                self.note(format!("rollback started: {words}"));
                self.rollback_reason = Some(words);
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
            | Event::StoreLeaseUnconfirmed { .. }
            | Event::StoreLeaseLost { .. }
            | Event::StoreLeaseRenewed { .. }
            | Event::StoreFenced { .. }) => {
                match e {
                    Event::StoreLeaseUnconfirmed { .. } | Event::StoreLeaseLost { .. } => {
                        self.lease_hold = true
                    }
                    Event::StoreLeaseRenewed { .. } | Event::StoreFenced { .. } => self.lease_hold = false,
                    _ => {}
                }
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
                // A session's lease is its own.
                self.lease_hold = false;
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
