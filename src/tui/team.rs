//! The terminal UI's part of operators as a team: the hand-over dialog (another operator ran
//! `runbook takeover`: `y` hands the run over, `n` keeps it) and what the screen keeps of it.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::text::{Line, Span};

use super::keys::{Dialog, Effect};
use super::state::App;
use super::ui::theme::Theme;
use crate::engine::{Command, TeamUpdate};

impl App {
    /// Folds a team update in.
    pub fn team(&mut self, update: TeamUpdate) {
        match update {
            TeamUpdate::TakeoverAsked { by, from, reason } => {
                self.note(format!("{by} asks to take the run over (from {from}): {reason}"));
                self.bell = true;
                let dialog = Dialog::Handover { by, from, reason };
                // Never on top of something being typed: a `y` in a note must not hand the run
                // over. It shows once that dialog is closed.
                if self.dialogs.is_empty() {
                    self.dialogs.push(dialog);
                } else {
                    self.dialogs.insert(0, dialog);
                }
            }
            TeamUpdate::TakeoverWithdrawn { by, why } => {
                self.dialogs
                    .retain(|d| !matches!(d, Dialog::Handover { by: b, .. } if *b == by));
                self.note(why);
            }
            TeamUpdate::HandedOver { to } => {
                self.note(format!("handed over to {to}"));
                self.handed_over = Some(to);
                self.quit_when_done = true;
            }
        }
    }
}

/// A key in the hand-over dialog: `y` hands over, `n` or `Esc` keeps the run; anything else
/// leaves the question open.
pub fn on_key(app: &mut App, by: String, from: String, reason: String, key: KeyEvent) -> Vec<Effect> {
    match key.code {
        KeyCode::Char('y') | KeyCode::Char('Y') => {
            app.note(format!("handing the run over to {by}…"));
            vec![Effect::Send(Command::Handover { accept: true })]
        }
        KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
            vec![Effect::Send(Command::Handover { accept: false })]
        }
        _ => {
            app.dialogs.push(Dialog::Handover { by, from, reason });
            Vec::new()
        }
    }
}

/// The dialog's lines: who asks, from where, why, and what each answer does.
pub fn lines<'a>(app: &App, by: &str, from: &str, reason: &str, theme: &Theme) -> Vec<Line<'a>> {
    let running = match app.running() {
        Some(at) => format!(
            " {} is running: it goes on, and {by} follows it to its end.",
            app.name(at)
        ),
        None => String::new(),
    };
    vec![
        Line::from(format!("{by} asks to take over driving this run.")),
        Line::from(format!("From: {from}")),
        Line::from(format!("Why:  {reason}")),
        Line::from(""),
        Line::from(format!(
            "y: {by} drives from here, exactly where the run stands (journaled as a handover); this screen closes.{running}"
        )),
        Line::from(""),
        Line::from(Span::styled(
            format!("y: hand over to {by}   n or Esc: keep driving"),
            theme.warn(),
        )),
    ]
}
