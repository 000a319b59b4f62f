//! The screen of a watcher (`runbook attach`): who drives, and what the keys of a watcher do. A
//! key that would change the run (a go-ahead, skip, retry, roll back, acknowledge, raise a
//! trigger) does nothing but say who can do it; reading keys work as for the driver; `n` writes a
//! note that the driver journals with the watcher's name.
//!
//! The key table of the driver (`keys`) stays the driver's; this module is consulted first when
//! `App::watching` is set.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::keys::{self, Effect};
use super::state::App;
use crate::runs::{Driver, Liveness};

/// What the screen knows about being a watcher.
#[derive(Debug, Clone)]
pub struct Watching {
    /// The run's id, as `runbook ls` shows it (for the commands the screen suggests).
    pub run: String,
    /// Who drives it, from its lock file.
    pub driver: Option<Driver>,
    /// The run has ended: nothing more will come.
    pub ended: bool,
}

impl Watching {
    /// The driver's name, or "nobody".
    pub fn driver_name(&self) -> &str {
        self.driver.as_ref().map_or("nobody", |d| d.operator.as_str())
    }

    pub fn driver_gone(&self) -> bool {
        self.driver.as_ref().is_none_or(|d| d.alive == Liveness::Gone)
    }

    /// The header's badge: ` WATCHING · alice@bastion drives `.
    pub fn badge(&self) -> String {
        let who = match &self.driver {
            Some(d) => format!("{}@{}", d.operator, d.host),
            None => "nobody".into(),
        };
        if self.ended {
            format!(" WATCHING · ended · {who} drove ")
        } else if self.driver_gone() {
            format!(" WATCHING · {who} is GONE ")
        } else {
            format!(" WATCHING · {who} drives ")
        }
    }

    /// Why a watcher's key that would change the run does nothing, and what to do instead.
    pub fn refusal(&self, what: &str) -> String {
        let takeover = format!("runbook takeover {} --reason …", self.run);
        if self.ended {
            format!("the run has ended: nobody can {what} now")
        } else if self.driver_gone() {
            format!(
                "{} (driving) is gone: to {what}, first {takeover}",
                self.driver_name()
            )
        } else {
            format!(
                "only {} (driving) can {what} — ask, or: {takeover}",
                self.driver_name()
            )
        }
    }
}

/// What a key that would change the run would have done, in words.
fn change(app: &App, key: &KeyEvent) -> Option<&'static str> {
    let running_watch = app
        .running()
        .is_some_and(|at| matches!(app.step(at).kind, crate::runbook::StepKind::Watch(_)));
    Some(match key.code {
        KeyCode::Enter if app.waiting.is_some() => "confirm",
        KeyCode::Enter if running_watch => "end the watch",
        KeyCode::Enter => return None,
        KeyCode::Char('s') => "skip a step",
        KeyCode::Char('r') => "retry a step",
        KeyCode::Char('d') => "mark a step done",
        KeyCode::Char('R') => "roll back",
        KeyCode::Char('y') => "start what a dialog asks",
        KeyCode::Char('a') => "acknowledge a trigger",
        KeyCode::Char('t') => "raise a trigger",
        KeyCode::Char('!') => "inject a fault",
        _ => return None,
    })
}

/// Handles a key on a watcher's screen.
pub fn on_key(app: &mut App, key: KeyEvent) -> Vec<Effect> {
    let Some(watching) = app.watching.clone() else {
        return keys::on_key(app, key);
    };
    app.dirty = true;
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if app.dialogs.is_empty() {
        // Leaving changes nothing for the run: no question asked.
        if key.code == KeyCode::Char('q') || (ctrl && key.code == KeyCode::Char('c')) {
            return vec![Effect::Quit];
        }
        if !ctrl && let Some(what) = change(app, &key) {
            app.note(watching.refusal(what));
            return Vec::new();
        }
        if key.code == KeyCode::Char('n') && !ctrl && watching.ended {
            app.note(watching.refusal("take a note"));
            return Vec::new();
        }
    }
    // Whatever a dialog would still send, only a note leaves a watcher's screen.
    keys::on_key(app, key)
        .into_iter()
        .filter(|e| match e {
            Effect::Send(crate::engine::Command::Note { .. }) | Effect::Quit | Effect::Suspend => true,
            Effect::Send(_) => {
                app.note(watching.refusal("do that"));
                false
            }
        })
        .collect()
}

/// The key hints of a watcher's screen.
pub fn hints(app: &App) -> Vec<(&'static str, &'static str)> {
    let mut h = Vec::new();
    if app.watching.as_ref().is_some_and(|w| !w.ended) {
        h.push(("n", "note to the driver"));
    }
    h.push(("?", "keys"));
    h.push(("q", "quit"));
    // The reading keys are the driver's (search, attempts, zoom).
    h.extend(
        keys::hints(app)
            .into_iter()
            .filter(|(k, _)| matches!(*k, "/" | "^P ^N" | "[ ]" | "z" | "Esc")),
    );
    h
}
