//! The terminal UI's part of operators as a team: the hand-over dialog (another operator ran
//! `runbook takeover`: `y` hands the run over, `n` keeps it) and what the screen keeps of it.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::text::{Line, Span};

use super::dialog::Dialog;
use super::keys::Effect;
use super::state::App;
use super::ui::theme::Theme;
use crate::engine::{Command, TeamUpdate};

impl App {
    /// Folds a team update in.
    pub fn team(&mut self, update: TeamUpdate) {
        match update {
            TeamUpdate::TakeoverAsked {
                by,
                from,
                reason,
                across_hosts,
            } => {
                self.note(format!("{by} asks to take the run over (from {from}): {reason}"));
                self.bell = true;
                let dialog = Dialog::Handover {
                    by,
                    from,
                    reason,
                    across_hosts,
                };
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
pub fn on_key(
    app: &mut App,
    (by, from, reason, across_hosts): (String, String, String, bool),
    key: KeyEvent,
) -> Vec<Effect> {
    match key.code {
        KeyCode::Char('y') | KeyCode::Char('Y') => {
            app.note(format!("handing the run over to {by}…"));
            vec![Effect::Send(Command::Handover { accept: true })]
        }
        KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
            vec![Effect::Send(Command::Handover { accept: false })]
        }
        _ => {
            app.dialogs.push(Dialog::Handover {
                by,
                from,
                reason,
                across_hosts,
            });
            Vec::new()
        }
    }
}

/// The dialog's lines: who asks, from where, why, and what each answer does.
pub fn lines<'a>(
    app: &App,
    (by, from, reason, across_hosts): (&str, &str, &str, bool),
    theme: &Theme,
) -> Vec<Line<'a>> {
    let running = match app.running() {
        // Another host cannot follow a command running here: it ends here first.
        Some(at) if across_hosts => format!(
            " {} is running here: it goes on, and the run is handed over once it has ended.",
            app.name(at)
        ),
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
            "y: {by} drives from here, exactly where the run stands (journaled as a handover); this screen then watches the run.{running}"
        )),
        Line::from(""),
        Line::from(Span::styled(
            format!("y: hand over to {by}   n or Esc: keep driving"),
            theme.warn(),
        )),
    ]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::tui::keys::on_key;

    fn app() -> App {
        let text = "[runbook]\ntitle = \"t\"\n[[phase]]\ntitle = \"p\"\n[[phase.step]]\ntitle = \"s\"\nrun = \"true\"\n";
        let rb = crate::runbook::parse::parse_str(std::path::Path::new("t.toml"), text, &[]).unwrap();
        App::new(Arc::new(rb), crate::engine::Mode::Run, &[], "/runs/r1".into())
    }

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    fn asked() -> TeamUpdate {
        TeamUpdate::TakeoverAsked {
            by: "bob".into(),
            from: "pts/3 on bastion, pid 42".into(),
            reason: "end of shift".into(),
            across_hosts: false,
        }
    }

    fn sent(effects: &[Effect]) -> Vec<Command> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Send(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn y_hands_over_n_keeps_the_run_and_other_keys_leave_the_question_open() {
        let mut a = app();
        a.team(asked());
        assert!(matches!(a.dialogs.last(), Some(Dialog::Handover { by, .. }) if by == "bob"));
        assert!(sent(&on_key(&mut a, key('x'))).is_empty());
        assert!(matches!(a.dialogs.last(), Some(Dialog::Handover { .. })));
        assert_eq!(
            sent(&on_key(&mut a, key('n'))),
            [Command::Handover { accept: false }]
        );
        assert!(a.dialogs.is_empty());
        a.team(asked());
        assert_eq!(
            sent(&on_key(&mut a, key('y'))),
            [Command::Handover { accept: true }]
        );
        a.team(TeamUpdate::HandedOver { to: "bob".into() });
        assert_eq!(a.handed_over.as_deref(), Some("bob"));
        assert!(a.quit_when_done);
    }

    #[test]
    fn a_y_typed_in_a_note_never_hands_the_run_over() {
        let mut a = app();
        on_key(&mut a, key('n'));
        a.team(asked());
        // The note keeps the keyboard: typing "yes" writes it, and hands nothing over.
        for c in "yes".chars() {
            assert!(sent(&on_key(&mut a, key(c))).is_empty());
        }
        let saved = sent(&on_key(&mut a, KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
        assert_eq!(saved, [Command::Note { text: "yes".into() }]);
        // Then the question shows.
        assert!(matches!(a.dialogs.last(), Some(Dialog::Handover { .. })));
    }
}
