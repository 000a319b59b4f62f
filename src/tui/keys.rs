//! Keys and dialogs: what each key does, as a pure function of the state. Dialogs are a stack;
//! the one on top consumes a key first. Nothing here does I/O: the effects are carried out by the
//! event loop.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;

use super::state::{App, Focus, Pane, StepState};
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
}

/// What a text box is for.
#[derive(Debug, Clone, PartialEq)]
pub enum TextPurpose {
    /// Why the step that waited when the box opened is skipped.
    Skip(StepRef),
    /// Why the interrupted step that waited when the box opened is done.
    MarkDone(StepRef),
    Note,
    Raise(String),
    Search,
}

pub enum Dialog {
    Help,
    /// `R`: what the rollback will do; `y` starts it.
    Rollback,
    /// `q`: what quitting does to the run; `y` quits.
    Quit,
    /// Enter on a running watch: end it early?
    EndWatch(StepRef),
    /// Enter on an irreversible step waiting for its go-ahead: it names the step and says the
    /// rollback cannot undo it; only `y` starts it.
    Irreversible(StepRef),
    Text {
        purpose: TextPurpose,
        area: Box<TextArea<'static>>,
    },
    /// `t`: which trigger to raise.
    PickTrigger {
        selected: usize,
    },
    /// A watcher's question (`runbook attach`): its keys and lines are `watching`'s.
    Watcher(super::watching::Ask),
    /// Another operator asks to take the run over (`runbook takeover`): `y` hands it over.
    Handover {
        by: String,
        from: String,
        reason: String,
    },
}

impl Dialog {
    fn text(purpose: TextPurpose, initial: &str) -> Dialog {
        let mut area = TextArea::new(vec![initial.to_string()]);
        area.move_cursor(ratatui_textarea::CursorMove::End);
        Dialog::Text {
            purpose,
            area: Box::new(area),
        }
    }
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
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('z') {
        return vec![Effect::Suspend];
    }
    if let Some(top) = app.dialogs.pop() {
        return on_dialog_key(app, top, key);
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let ctrl_c = ctrl && key.code == KeyCode::Char('c');
    match key.code {
        _ if ctrl_c => return quit(app),
        KeyCode::Char('q') => return quit(app),
        KeyCode::Char('?') => app.dialogs.push(Dialog::Help),
        KeyCode::Enter => match waiting(app).map(|(at, w)| (at, w.clone())) {
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
        },
        KeyCode::Char('d') => match waiting(app) {
            Some((at, Wait::Interrupted)) => {
                if in_view(app, at, "d again marks it done") {
                    app.dialogs.push(Dialog::text(TextPurpose::MarkDone(at), ""));
                }
            }
            _ => app.note("d marks done a step that was in flight when an earlier session stopped"),
        },
        KeyCode::Char('s') => match waiting(app) {
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
        KeyCode::Char('r') => match waiting(app) {
            Some((at, Wait::Failed { .. } | Wait::Interrupted)) => {
                if in_view(app, at, "r again runs it again") && !held_by_trigger(app, "retry") {
                    return vec![Effect::Send(Command::Retry)];
                }
            }
            _ => app.note("nothing to retry: r retries a failed step"),
        },
        KeyCode::Char('R') => {
            if app.finished.is_none() && app.rollback_reason.is_none() {
                app.dialogs.push(Dialog::Rollback);
            } else {
                app.note("the rollback cannot be started now (already rolling back, or the run has ended)");
            }
        }
        KeyCode::Char('a') => {
            if app.firing().is_empty() {
                app.note("no trigger is firing");
            } else {
                return vec![Effect::Send(Command::Acknowledge)];
            }
        }
        KeyCode::Char('t') => {
            if app.triggers.is_empty() {
                app.note("this runbook has no triggers");
            } else {
                app.dialogs.push(Dialog::PickTrigger { selected: 0 });
            }
        }
        KeyCode::Char('!') => {
            if simulated(app) {
                return vec![Effect::Send(Command::InjectFault)];
            }
            app.note("no metric is simulated here: ! injects a fault only into simulated metrics");
        }
        KeyCode::Char('/') => {
            let last = app.search.clone().unwrap_or_default();
            app.dialogs.push(Dialog::text(TextPurpose::Search, &last));
        }
        KeyCode::Char('n') | KeyCode::Char('p') if ctrl => next_match(app, key.code == KeyCode::Char('p')),
        KeyCode::Char('n') => app.dialogs.push(Dialog::text(TextPurpose::Note, "")),
        KeyCode::Tab | KeyCode::BackTab => {
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
        KeyCode::Up | KeyCode::Char('k') => match app.focus {
            Focus::Steps => select_step(app, -1),
            Focus::Log => ui::log::scroll_by(app, 1),
        },
        KeyCode::Down | KeyCode::Char('j') => match app.focus {
            Focus::Steps => select_step(app, 1),
            Focus::Log => ui::log::scroll_by(app, -1),
        },
        KeyCode::Left | KeyCode::Char('h') | KeyCode::Right | KeyCode::Char('l') => {
            let back = matches!(key.code, KeyCode::Left | KeyCode::Char('h'));
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
        KeyCode::PageUp => ui::log::page_up(app),
        KeyCode::PageDown | KeyCode::Char(' ') => ui::log::page_down(app),
        KeyCode::Home | KeyCode::Char('g') => ui::log::home(app),
        KeyCode::End | KeyCode::Char('f') | KeyCode::Char('G') => {
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
        KeyCode::Char('w') => {
            app.wrap = !app.wrap;
            app.log_hscroll = 0;
        }
        KeyCode::Char('z') => {
            app.zoom = match app.zoom {
                Some(_) => None,
                None => Some(pane(app.focus)),
            };
        }
        KeyCode::Char('m') => {
            app.zoom = match app.zoom {
                Some(Pane::Metrics) => None,
                _ => Some(Pane::Metrics),
            };
        }
        KeyCode::Char('[') | KeyCode::Char(']') => {
            let attempts = app.view(app.selected).attempts;
            let now = app.shown_attempt();
            let next = if key.code == KeyCode::Char('[') {
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
        KeyCode::Esc => {
            if app.search.is_some() {
                app.search = None;
                app.search_at = None;
            } else {
                app.zoom = None;
            }
        }
        _ => app.dirty = false,
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

fn on_dialog_key(app: &mut App, dialog: Dialog, key: KeyEvent) -> Vec<Effect> {
    let yes = matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y'));
    let no = matches!(key.code, KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc);
    match dialog {
        Dialog::Help => {
            // Any key closes the help.
        }
        Dialog::Rollback => {
            if yes {
                return vec![Effect::Send(Command::Rollback)];
            }
            if !no {
                app.dialogs.push(Dialog::Rollback);
            }
        }
        Dialog::Quit => {
            if yes {
                if app.finished.is_some() {
                    return vec![Effect::Quit];
                }
                app.quit_when_done = true;
                let reason = Some(format!("quit by {}", app.operator));
                return vec![Effect::Send(Command::Abort { reason })];
            }
            if !no {
                app.dialogs.push(Dialog::Quit);
            }
        }
        Dialog::EndWatch(at) => {
            if yes {
                if app.running() != Some(at) {
                    app.note(format!("{} is no longer running: nothing to end", app.name(at)));
                    return Vec::new();
                }
                return vec![Effect::Send(Command::Confirm {
                    by: None,
                    step: Some(at),
                })];
            }
            if !no {
                app.dialogs.push(Dialog::EndWatch(at));
            }
        }
        Dialog::Irreversible(at) => {
            if yes {
                let still = matches!(app.waiting, Some((w, Wait::GoAhead { irreversible: true })) if w == at);
                if !still {
                    app.note(format!(
                        "{} no longer waits for its go-ahead: nothing started",
                        app.name(at)
                    ));
                    return Vec::new();
                }
                if held_by_trigger(app, "confirm") {
                    return Vec::new();
                }
                return vec![Effect::Send(Command::Confirm {
                    by: None,
                    step: Some(at),
                })];
            }
            if !no {
                app.dialogs.push(Dialog::Irreversible(at));
            }
        }
        Dialog::Handover { by, from, reason } => return super::team::on_key(app, by, from, reason, key),
        // `watching::on_key` answers it before it gets here.
        Dialog::Watcher(_) => {}
        Dialog::PickTrigger { selected } => match key.code {
            KeyCode::Esc => {}
            KeyCode::Up | KeyCode::Char('k') => app.dialogs.push(Dialog::PickTrigger {
                selected: selected.saturating_sub(1),
            }),
            KeyCode::Down | KeyCode::Char('j') => {
                let max = app.triggers.len().saturating_sub(1);
                app.dialogs.push(Dialog::PickTrigger {
                    selected: (selected + 1).min(max),
                })
            }
            KeyCode::Enter => {
                let id = app.triggers[selected].id.clone();
                app.dialogs.push(Dialog::text(TextPurpose::Raise(id), ""));
            }
            _ => app.dialogs.push(Dialog::PickTrigger { selected }),
        },
        Dialog::Text { purpose, mut area } => match key.code {
            KeyCode::Esc => {}
            KeyCode::Enter => {
                let text = area.lines().join(" ").trim().to_string();
                if text.is_empty() && purpose != TextPurpose::Search {
                    // A skip, a note and a trigger need words; keep the box open, and say so.
                    let what = match purpose {
                        TextPurpose::Skip(_) => "a skip needs a reason",
                        TextPurpose::MarkDone(_) => "marking it done needs a reason",
                        TextPurpose::Raise(_) => "raising a trigger needs a reason",
                        _ => "a note needs some text",
                    };
                    app.note(format!("{what}: type it, then Enter (Esc cancels)"));
                    app.dialogs.push(Dialog::Text { purpose, area });
                    return Vec::new();
                }
                // The box was opened for a step: if that step no longer waits, nothing happens.
                if let TextPurpose::Skip(at) | TextPurpose::MarkDone(at) = purpose
                    && app.waiting.as_ref().is_none_or(|(w, _)| *w != at)
                {
                    app.note(format!("{} no longer waits: nothing was done", app.name(at)));
                    return Vec::new();
                }
                return match purpose {
                    TextPurpose::Skip(_) => vec![Effect::Send(Command::Skip { reason: text })],
                    TextPurpose::MarkDone(_) => vec![Effect::Send(Command::MarkDone { reason: text })],
                    TextPurpose::Note => vec![Effect::Send(Command::Note { text })],
                    TextPurpose::Raise(trigger) => {
                        vec![Effect::Send(Command::RaiseTrigger {
                            trigger,
                            reason: text,
                        })]
                    }
                    TextPurpose::Search => {
                        search(app, &text);
                        Vec::new()
                    }
                };
            }
            // Ctrl-U clears the box, as in a shell.
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                app.dialogs.push(Dialog::text(purpose, ""));
            }
            _ => {
                area.input(key);
                app.dialogs.push(Dialog::Text { purpose, area });
            }
        },
    }
    Vec::new()
}

/// Searches the log for `text`: the newest match at or above the bottom of the view first (a log
/// is read from its end), then Ctrl-P and Ctrl-N go up and down.
fn search(app: &mut App, text: &str) {
    app.search_at = None;
    if text.is_empty() {
        app.search = None;
        return;
    }
    app.search = Some(text.to_string());
    next_match(app, true);
}

/// Goes to the next match down (or up), around the end of the log when there is none further.
fn next_match(app: &mut App, up: bool) {
    let Some(query) = app.search.clone() else {
        app.note("no search: / searches the log");
        return;
    };
    let hits = ui::log::matching_lines(app);
    let Some(len) = app.shown_log().map(|l| l.len()) else {
        app.note(format!("\"{query}\" not found: this step has no output"));
        return;
    };
    if hits.is_empty() {
        app.note(format!("\"{query}\" not found in this log"));
        return;
    }
    // From the match last gone to, or (a new search) from just below the view.
    let from = app.search_at.unwrap_or(len - app.log_scroll.min(len));
    let found = if up {
        hits.iter().rev().find(|&&i| i < from).copied()
    } else {
        // A new search starts below the view; a next match is below the last one.
        let first = from + usize::from(app.search_at.is_some());
        hits.iter().find(|&&i| i >= first).copied()
    };
    let line = match found {
        Some(i) => i,
        None => {
            app.note(if up {
                "search went past the start of the log: on from its end"
            } else {
                "search went past the end of the log: on from its start"
            });
            if up { hits[hits.len() - 1] } else { hits[0] }
        }
    };
    app.search_at = Some(line);
    app.follow = false;
    ui::log::show_line(app, line);
}

/// Whether the step is one a key can act on right now, for the hints line.
pub fn hints(app: &App) -> Vec<(&'static str, &'static str)> {
    let mut h: Vec<(&str, &str)> = Vec::new();
    if app.finished.is_some() {
        h.push(("q", "quit"));
        h.push(("?", "keys"));
        reading_hints(app, &mut h);
        return h;
    }
    // While a trigger fires no go-ahead is taken: the keys that give one are not offered.
    let held = !app.firing().is_empty() && app.rollback_reason.is_none();
    match waiting(app) {
        Some((at, Wait::GoAhead { irreversible })) => {
            let enter = match (app.selected == at, irreversible) {
                (false, _) => "show waiting step",
                (true, true) => "review (irreversible)",
                (true, false) => "confirm",
            };
            if !held {
                h.push(("Enter", enter));
            }
            h.push(("s", "skip"));
        }
        Some((_, Wait::Failed { .. })) => {
            if !held {
                h.push(("r", "retry"));
            }
            h.push(("s", "skip"));
        }
        Some((_, Wait::Trigger { .. })) => h.push(("a", "acknowledge")),
        Some((_, Wait::Approval(_))) => h.push(("s", "skip")),
        Some((_, Wait::Interrupted)) => {
            h.push(("r", "run again"));
            h.push(("d", "mark done"));
            h.push(("s", "skip"));
        }
        None => {
            if let Some(at) = app.running()
                && matches!(app.step(at).kind, StepKind::Watch(_))
            {
                h.push(("Enter", "end watch"));
            }
        }
    }
    if !app.firing().is_empty() && app.rollback_reason.is_none() && !h.contains(&("a", "acknowledge")) {
        h.push(("a", "acknowledge"));
    }
    if app.rollback_reason.is_none() {
        h.push(("R", "ROLL BACK"));
    }
    h.push(("n", "note"));
    h.push(("?", "keys"));
    h.push(("q", "quit"));
    reading_hints(app, &mut h);
    h
}

/// The keys that read the run (search, attempts, zoom): offered while it runs and after it ended.
fn reading_hints(app: &App, h: &mut Vec<(&'static str, &'static str)>) {
    if app.search.is_some() {
        h.push(("^P ^N", "prev/next match"));
    } else if matches!(app.view(app.selected).state, StepState::Running { .. })
        || app.shown_log().is_some_and(|l| !l.is_empty())
    {
        h.push(("/", "search"));
    }
    if app.view(app.selected).attempts > 1 {
        h.push(("[ ]", "attempts"));
    }
    if app.zoom.is_some() {
        h.push(("Esc", "unzoom"));
    } else {
        h.push(("z", "zoom"));
    }
}
