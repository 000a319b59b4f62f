//! What a key does in the dialog on top of the stack: the yes/no questions (rollback, quit, end a
//! watch, an irreversible step), the help's scrolling, picking a trigger, and the text boxes
//! (reasons, notes, search). `on_key` hands a key here when a dialog is open.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::search::search;
use super::{Effect, held_by_trigger};
use crate::engine::{Command, Wait};
use crate::tui::bindings::{self, Action};
use crate::tui::dialog::{Dialog, TextPurpose};
use crate::tui::state::App;
use crate::tui::ui;

/// A key for the dialog on top, taken off the stack: a dialog that stays is pushed back.
pub(super) fn on_dialog_key(app: &mut App, dialog: Dialog, key: KeyEvent) -> Vec<Effect> {
    let yes = matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y'));
    let no = matches!(key.code, KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc);
    match dialog {
        Dialog::Help { scroll } => {
            // The help scrolls with the keys that scroll a log; any other key closes it.
            let max = ui::dialogs::help_scroll_max(app);
            let page = ui::dialogs::help_page(app);
            let scroll = match bindings::action(key) {
                Some(Action::Up) => Some(scroll.saturating_sub(1)),
                Some(Action::Down) => Some(scroll + 1),
                Some(Action::PageUp) => Some(scroll.saturating_sub(page)),
                Some(Action::PageDown) => Some(scroll + page),
                Some(Action::Home) => Some(0),
                Some(Action::Follow) => Some(max),
                _ => None,
            };
            if let Some(scroll) = scroll {
                app.dialogs.push(Dialog::Help {
                    scroll: scroll.min(max),
                });
            }
        }
        Dialog::Rollback => {
            if yes {
                return vec![Effect::Send(Command::Rollback)];
            }
            if key.code == KeyCode::Char('w') {
                app.dialogs.push(Dialog::text(TextPurpose::Rollback, ""));
                return Vec::new();
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
        Dialog::Handover {
            by,
            from,
            reason,
            across_hosts,
        } => return crate::tui::team::on_key(app, (by, from, reason, across_hosts), key),
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
            // Back to the rollback dialog, which still asks.
            KeyCode::Esc if purpose == TextPurpose::Rollback => app.dialogs.push(Dialog::Rollback),
            KeyCode::Esc => {}
            KeyCode::Enter if purpose == TextPurpose::Rollback => {
                if app.finished.is_some() || app.rollback_reason.is_some() {
                    app.note(
                        "the rollback cannot be started now (already rolling back, or the run has ended)",
                    );
                    return Vec::new();
                }
                let note = area.lines().join(" ").trim().to_string();
                return vec![Effect::Send(if note.is_empty() {
                    Command::Rollback
                } else {
                    Command::RollbackWithNote { note }
                })];
            }
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
                    TextPurpose::Rollback => Vec::new(),
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
