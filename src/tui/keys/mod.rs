//! What each key does, as a pure function of the state: `on_key` looks the key up in the key
//! table (`bindings`) and carries out its action, or hands the key to the dialog on top (dialogs
//! are a stack; the one on top consumes a key first). Nothing here does I/O: the effects are
//! carried out by the event loop. A key for an open dialog goes to `in_dialog`; searching the log is
//! `search`'s.

use crossterm::event::KeyEvent;

mod in_dialog;
mod search;

use in_dialog::on_dialog_key;
use search::next_match;

use super::bindings::{self, Action};
use super::dialog::{Dialog, TextPurpose};
use super::state::{App, Focus, Pane};
use super::ui;
use crate::engine::{Command, StepRef, Wait};
use crate::metrics::SourceKind;
use crate::runbook::StepKind;

/// What a key asks the event loop to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send(Command),
    /// Leave the UI (the run has ended).
    Quit,
    /// Ctrl-Z: give the terminal back and stop until `fg`.
    Suspend,
    /// Turn the terminal's mouse reports on (the wheel) or off.
    Mouse(bool),
}

/// The step keys act on: the one waiting for the operator, if any.
fn waiting(app: &App) -> Option<(StepRef, &Wait)> {
    app.waiting.as_ref().map(|(at, w)| (*at, w))
}

/// A key acts on a step only when it is on screen (selected: its instruction shown under the
/// list). Otherwise the first press brings it into view, says so, and does nothing else.
fn in_view(app: &mut App, at: StepRef, again: &str) -> bool {
    if app.selected == at {
        return true;
    }
    app.follow = true;
    app.selected = at;
    app.attempt_shown = None;
    app.log_from_end();
    let name = app.name(at);
    app.note(format!("{name} is on screen now: {again}"));
    false
}

/// While a trigger fires (and the run has not started rolling back), no go-ahead is taken.
fn held_by_trigger(app: &mut App, what: &str) -> bool {
    if app.firing().is_empty() || app.rollback_reason.is_some() {
        return false;
    }
    // Short enough for the remark line at 80 columns.
    app.note(format!(
        "trigger firing: a (acknowledge) or R first, then {what} again"
    ));
    true
}

fn simulated(app: &App) -> bool {
    app.mode == crate::engine::Mode::Rehearse || app.metrics.iter().any(|m| m.source == SourceKind::Simulated)
}

/// Handles one key. Returns what the event loop must do.
pub fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    app.dirty = true;
    let action = bindings::action(key);
    // Ctrl-Z works over any dialog.
    if action == Some(Action::Suspend) {
        return vec![Effect::Suspend];
    }
    if let Some(top) = app.dialogs.pop() {
        return on_dialog_key(app, top, key);
    }
    match action {
        Some(action) => act(app, action),
        None => {
            app.dirty = false;
            Vec::new()
        }
    }
}

/// Carries out one action of the key table on the main screen.
fn act(app: &mut App, action: Action) -> Vec<Effect> {
    match action {
        Action::Suspend => return vec![Effect::Suspend],
        Action::Quit => return quit(app),
        Action::Help => app.dialogs.push(Dialog::Help { scroll: 0 }),
        Action::Mouse => {
            app.mouse = !app.mouse;
            app.note(if app.mouse {
                "mouse on: the wheel scrolls the pane under it; Shift-drag selects text; M: off"
            } else {
                "mouse off: the terminal selects text as always; M: the wheel scrolls again"
            });
            return vec![Effect::Mouse(app.mouse)];
        }
        Action::GoAhead => return go_ahead(app),
        Action::MarkDone => match waiting(app) {
            Some((at, Wait::Interrupted)) => {
                if in_view(app, at, "d again marks it done") {
                    app.dialogs.push(Dialog::text(TextPurpose::MarkDone(at), ""));
                }
            }
            _ => app.note("d marks done a step that was in flight when an earlier session stopped"),
        },
        Action::Skip => match waiting(app) {
            Some((
                at,
                Wait::GoAhead { .. } | Wait::Failed { .. } | Wait::Interrupted | Wait::Approval(_),
            )) => {
                if in_view(app, at, "s again skips it") {
                    app.dialogs.push(Dialog::text(TextPurpose::Skip(at), ""));
                }
            }
            _ => app.note("nothing to skip: s skips a step that waits for you or has failed"),
        },
        Action::Retry => match waiting(app) {
            Some((at, Wait::Failed { .. } | Wait::Interrupted)) => {
                if in_view(app, at, "r again runs it again") && !held_by_trigger(app, "retry") {
                    return vec![Effect::Send(Command::Retry)];
                }
            }
            _ => app.note("nothing to retry: r retries a failed step"),
        },
        Action::Rollback => {
            if app.finished.is_none() && app.rollback_reason.is_none() {
                app.dialogs.push(Dialog::Rollback);
            } else {
                app.note("the rollback cannot be started now (already rolling back, or the run has ended)");
            }
        }
        Action::Acknowledge => {
            if app.firing().is_empty() {
                app.note("no trigger is firing");
            } else {
                return vec![Effect::Send(Command::Acknowledge)];
            }
        }
        Action::RaiseTrigger => {
            if app.triggers.is_empty() {
                app.note("this runbook has no triggers");
            } else {
                app.dialogs.push(Dialog::PickTrigger { selected: 0 });
            }
        }
        Action::InjectFault => {
            if simulated(app) {
                return vec![Effect::Send(Command::InjectFault)];
            }
            app.note("no metric is simulated here: ! injects a fault only into simulated metrics");
        }
        Action::Search => {
            let last = app.search.clone().unwrap_or_default();
            app.dialogs.push(Dialog::text(TextPurpose::Search, &last));
        }
        Action::PreviousMatch => next_match(app, true),
        Action::NextMatch => next_match(app, false),
        Action::Note => app.dialogs.push(Dialog::text(TextPurpose::Note, "")),
        Action::SwitchFocus => {
            app.focus = if app.focus == Focus::Steps {
                Focus::Log
            } else {
                Focus::Steps
            };
            // A zoomed pane gives the whole screen to the pane that has the keyboard.
            if matches!(app.zoom, Some(Pane::Steps | Pane::Log)) {
                app.zoom = Some(pane(app.focus));
            }
        }
        Action::Up => match app.focus {
            Focus::Steps => select_step(app, -1),
            Focus::Log => ui::log::scroll_by(app, 1),
        },
        Action::Down => match app.focus {
            Focus::Steps => select_step(app, 1),
            Focus::Log => ui::log::scroll_by(app, -1),
        },
        Action::Left | Action::Right => {
            let back = action == Action::Left;
            match app.focus {
                Focus::Steps => select_phase(app, if back { -1 } else { 1 }),
                Focus::Log if app.wrap => {
                    app.note("log lines wrap: w cuts them instead, then ← → scroll sideways");
                }
                Focus::Log => {
                    let by = ui::log::half_width(app);
                    app.log_hscroll = if back {
                        app.log_hscroll.saturating_sub(by)
                    } else {
                        app.log_hscroll + by
                    };
                }
            }
        }
        Action::PageUp => ui::log::page_up(app),
        Action::PageDown => ui::log::page_down(app),
        Action::Home => ui::log::home(app),
        Action::Follow => {
            app.follow = true;
            app.log_scroll = 0;
            if let Some(c) = app.current
                && app.selected != c
            {
                app.selected = c;
                app.attempt_shown = None;
                app.log_from_end();
            }
            app.attempt_shown = None;
        }
        Action::Wrap => {
            app.wrap = !app.wrap;
            app.log_hscroll = 0;
        }
        Action::Zoom => {
            app.zoom = match app.zoom {
                Some(_) => None,
                None => Some(pane(app.focus)),
            };
        }
        Action::Metrics => {
            app.zoom = match app.zoom {
                Some(Pane::Metrics) => None,
                _ => Some(Pane::Metrics),
            };
        }
        Action::EarlierAttempt | Action::LaterAttempt => {
            let attempts = app.view(app.selected).attempts;
            let now = app.shown_attempt();
            let next = if action == Action::EarlierAttempt {
                now.saturating_sub(1).max(1)
            } else {
                (now + 1).min(attempts)
            };
            if attempts < 2 {
                app.note("this step has run once (or not at all): [ and ] show its other attempts");
            } else if next != now {
                app.attempt_shown = (next != attempts).then_some(next);
                app.log_from_end();
            }
        }
        Action::Escape => {
            if app.search.is_some() {
                app.search = None;
                app.search_at = None;
            } else {
                app.zoom = None;
            }
        }
    }
    Vec::new()
}

/// The mouse wheel (reported only while the operator turned the mouse on, `M`): it scrolls the
/// pane under the pointer — the help when it is open, the log, or the list of steps — three
/// lines a notch, as terminals scroll. Other mouse reports do nothing.
pub fn on_mouse(app: &mut App, mouse: crossterm::event::MouseEvent) {
    use crossterm::event::MouseEventKind;
    let up = match mouse.kind {
        MouseEventKind::ScrollUp => true,
        MouseEventKind::ScrollDown => false,
        _ => return,
    };
    app.dirty = true;
    if let Some(&Dialog::Help { scroll }) = app.dialogs.last() {
        let max = ui::dialogs::help_scroll_max(app);
        let scroll = if up {
            scroll.saturating_sub(3)
        } else {
            (scroll + 3).min(max)
        };
        app.dialogs.pop();
        app.dialogs.push(Dialog::Help { scroll });
        return;
    }
    if !app.dialogs.is_empty() {
        return;
    }
    let at = ratatui::layout::Position::new(mouse.column, mouse.row);
    let screen = ratatui::layout::Rect::new(0, 0, app.screen.0, app.screen.1);
    let areas = ui::layout(app, screen);
    if areas.log.is_some_and(|r| r.contains(at)) {
        ui::log::scroll_by(app, if up { 3 } else { -3 });
    } else if areas.steps.is_some_and(|r| r.contains(at)) {
        select_step(app, if up { -1 } else { 1 });
    }
}

/// Enter: the waiting step's go-ahead, or ending a running watch early.
fn go_ahead(app: &mut App) -> Vec<Effect> {
    match waiting(app).map(|(at, w)| (at, w.clone())) {
        Some((at, Wait::GoAhead { irreversible })) => {
            if !in_view(app, at, "Enter again confirms it") || held_by_trigger(app, "confirm") {
                return Vec::new();
            }
            if irreversible {
                app.dialogs.push(Dialog::Irreversible(at));
                return Vec::new();
            }
            return vec![Effect::Send(Command::Confirm {
                by: None,
                step: Some(at),
            })];
        }
        Some((_, Wait::Trigger { .. })) => {
            held_by_trigger(app, "confirm");
        }
        // Four eyes: the driver's own key never approves.
        Some((_, Wait::Approval(_))) => {
            app.note("Enter does not approve: another operator must (four eyes; see the log pane)")
        }
        _ => {
            if let Some(at) = app.running()
                && matches!(app.step(at).kind, StepKind::Watch(_))
                && in_view(app, at, "Enter again ends the watch early")
            {
                app.dialogs.push(Dialog::EndWatch(at));
            }
        }
    }
    Vec::new()
}

fn quit(app: &mut App) -> Vec<Effect> {
    if app.finished.is_some() {
        return vec![Effect::Quit];
    }
    app.dialogs.push(Dialog::Quit);
    Vec::new()
}

/// The pane that has the keyboard, as one that can be zoomed.
fn pane(focus: Focus) -> Pane {
    match focus {
        Focus::Steps => Pane::Steps,
        Focus::Log => Pane::Log,
    }
}

fn select_step(app: &mut App, delta: isize) {
    app.follow = false;
    app.attempt_shown = None;
    app.log_from_end();
    let n = app.phases(app.selected.rollback)[app.selected.phase].steps.len();
    if n == 0 {
        return;
    }
    let s = app.selected.step as isize + delta;
    app.selected.step = s.clamp(0, n as isize - 1) as usize;
}

fn select_phase(app: &mut App, delta: isize) {
    app.follow = false;
    app.attempt_shown = None;
    app.log_from_end();
    // Forward phases, then the rollback's, as one list.
    let forward = app.rb.phases.len();
    let back = app.phases(true).len();
    let index = if app.selected.rollback {
        forward + app.selected.phase
    } else {
        app.selected.phase
    } as isize;
    let next = (index + delta).clamp(0, (forward + back) as isize - 1) as usize;
    app.selected = if next < forward {
        StepRef {
            rollback: false,
            phase: next,
            step: 0,
        }
    } else {
        StepRef {
            rollback: true,
            phase: next - forward,
            step: 0,
        }
    };
}
