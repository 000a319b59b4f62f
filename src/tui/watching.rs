//! The screen of a watcher (`runbook attach`): who drives, and what the keys of a watcher do. A
//! key that would change the run (a go-ahead, skip, retry, roll back, acknowledge, raise a
//! trigger) does nothing but say who can do it; reading keys work as for the driver; `n` writes a
//! note and `A` approves the step that waits for approvals (after a confirmation that names it):
//! both are requests to the driver, who journals them with the watcher's name. Watched through
//! the shared store from another host, the badge says so (and when the store cannot be reached);
//! notes and approvals then go through the store.
//!
//! The key table of the driver (`keys`) stays the driver's; this module is consulted first when
//! `App::watching` is set.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::text::{Line, Span};

use super::dialog::Dialog;
use super::keys::{self, Effect};
use super::state::App;
use super::ui::theme::Theme;
use crate::control::Request;
use crate::engine::{StepRef, Wait};
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
    /// This watcher's Unix user (what the driver will journal).
    pub me: String,
    /// Watched through the shared store (from another host), not the run's folder.
    pub store: Option<ViaStore>,
}

/// A run watched through the shared store.
#[derive(Debug, Clone, PartialEq)]
pub struct ViaStore {
    /// `user@host:port/db`.
    pub at: String,
    /// Since when the store cannot be reached: what the screen shows may be behind.
    pub lost: Option<std::time::SystemTime>,
}

/// What a watcher's key asks the event loop to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    /// Ctrl-Z.
    Suspend,
    /// The terminal's mouse reports on (the wheel) or off.
    Mouse(bool),
    /// A request to the driver, over its control socket.
    Ask(Request),
}

/// A watcher's question on screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask {
    /// `A`: approve this step? `y` sends the approval.
    Approve { at: StepRef, step: String },
}

impl Watching {
    /// The driver's name, or "nobody".
    pub fn driver_name(&self) -> &str {
        self.driver.as_ref().map_or("nobody", |d| d.operator.as_str())
    }

    pub fn driver_gone(&self) -> bool {
        self.driver.as_ref().is_none_or(|d| d.alive == Liveness::Gone)
    }

    /// The header's badge: ` WATCHING · alice@bastion drives `, ` WATCHING via store · …`.
    pub fn badge(&self) -> String {
        self.badges().swap_remove(0)
    }

    /// The longest badge that fits in `room` columns (else the shortest): the driver's host,
    /// then their name give way; "via store" and STORE LOST never do.
    pub fn badge_within(&self, room: usize) -> String {
        use unicode_width::UnicodeWidthStr as _;
        let mut all = self.badges();
        match all.iter().position(|b| b.width() <= room) {
            Some(i) => all.swap_remove(i),
            None => all.pop().unwrap_or_default(),
        }
    }

    /// The badge's wordings, longest first.
    fn badges(&self) -> Vec<String> {
        let (op, who) = match &self.driver {
            Some(d) => (d.operator.clone(), format!("{}@{}", d.operator, d.host)),
            None => ("nobody".into(), "nobody".into()),
        };
        let via = if self.store.is_some() { " via store" } else { "" };
        if let Some(since) = self.store.as_ref().and_then(|s| s.lost) {
            let at = crate::text::clock(since);
            let at = at.get(..8).unwrap_or(&at);
            return vec![
                format!(" WATCHING via store · STORE LOST {at} · reconnecting "),
                format!(" WATCHING via store · STORE LOST {at} "),
                format!(" STORE LOST {at} "),
            ];
        }
        if self.ended {
            vec![
                format!(" WATCHING{via} · ended · {who} drove "),
                format!(" WATCHING{via} · ended "),
            ]
        } else if self.driver_gone() {
            vec![
                format!(" WATCHING{via} · {who} is GONE "),
                format!(" WATCHING{via} · {op} is GONE "),
                format!(" WATCHING{via} · GONE "),
            ]
        } else {
            vec![
                format!(" WATCHING{via} · {who} drives "),
                format!(" WATCHING{via} · {op} drives "),
                format!(" WATCHING{via} · {who} "),
                format!(" WATCHING{via} "),
            ]
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

/// Every key of a watcher's screen, for `?`.
pub const HELP: &[(&str, &str)] = &[
    ("n", "a note: the driver journals it with your Unix user"),
    (
        "A",
        "approve the step that waits for approvals (asks first, naming it)",
    ),
    (
        "Enter s r R a",
        "the driver's alone (so are d t !): each says who drives, and how to take over",
    ),
    (
        "↑ ↓ ← → Tab",
        "select a step, a phase; move between the steps and the log",
    ),
    ("PgUp PgDn g f", "scroll the log; follow the run again"),
    ("/ ^P ^N", "search the log"),
    ("[ ]  w  z  m", "earlier attempts, wrap, zoom, metrics"),
    ("q", "leave (the run goes on: nothing changes for the driver)"),
];

/// What a key that would change the run would have done, in words.
fn change(app: &App, key: &KeyEvent) -> Option<&'static str> {
    let running_watch = app
        .running()
        .is_some_and(|at| matches!(app.step(at).kind, crate::runbook::StepKind::Watch(_)));
    let approval = matches!(app.waiting, Some((_, Wait::Approval(_))));
    Some(match key.code {
        KeyCode::Enter if approval => "give the go-ahead (an approval is A)",
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

/// The step that waits for approvals now, if one does.
fn awaiting_approval(app: &App) -> Option<(StepRef, &crate::control::ApprovalWaiting)> {
    match &app.waiting {
        Some((at, Wait::Approval(w))) => Some((*at, w)),
        _ => None,
    }
}

/// `A`: the confirmation that names the step, or why there is nothing to approve.
fn approve_key(app: &mut App, watching: &Watching) {
    let Some((at, w)) = awaiting_approval(app) else {
        app.note("no step waits for an approval now (A approves one when it does)");
        return;
    };
    if watching.driver_name() == watching.me {
        app.note(format!(
            "you ({}) drive this run: an approval must come from another operator",
            watching.me
        ));
        return;
    }
    if let Some(list) = &w.may_approve
        && !list.contains(&watching.me)
    {
        let text = format!("{} may not approve {}: {}", watching.me, w.step, w.describe());
        app.note(text);
        return;
    }
    let step = w.step.clone();
    app.selected = at;
    app.dialogs.push(Dialog::Watcher(Ask::Approve { at, step }));
}

/// Handles a key on a watcher's screen.
pub fn on_key(app: &mut App, key: KeyEvent) -> Vec<Action> {
    let Some(watching) = app.watching.clone() else {
        return Vec::new();
    };
    app.dirty = true;
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if let Some(Dialog::Watcher(ask)) = app.dialogs.last() {
        let ask = ask.clone();
        app.dialogs.pop();
        return on_ask_key(app, ask, key);
    }
    if app.dialogs.is_empty() {
        // Leaving changes nothing for the run: no question asked.
        if key.code == KeyCode::Char('q') || (ctrl && key.code == KeyCode::Char('c')) {
            return vec![Action::Quit];
        }
        if !ctrl && let Some(what) = change(app, &key) {
            app.note(watching.refusal(what));
            return Vec::new();
        }
        if key.code == KeyCode::Char('A') {
            if watching.ended {
                app.note("the run has ended: there is nothing to approve");
            } else {
                approve_key(app, &watching);
            }
            return Vec::new();
        }
        if key.code == KeyCode::Char('n') && !ctrl && (watching.ended || watching.driver_gone()) {
            app.note(format!(
                "{}: a note goes to the driver, and there is none to journal it",
                if watching.ended {
                    "the run has ended"
                } else {
                    "the driver is gone"
                }
            ));
            return Vec::new();
        }
    }
    // Whatever a dialog would still send, only a note leaves a watcher's screen.
    let mut out = Vec::new();
    for e in keys::on_key(app, key) {
        match e {
            Effect::Send(crate::engine::Command::Note { text }) => {
                out.push(Action::Ask(Request::Note { text }))
            }
            Effect::Quit => out.push(Action::Quit),
            Effect::Suspend => out.push(Action::Suspend),
            Effect::Mouse(on) => out.push(Action::Mouse(on)),
            Effect::Send(_) => app.note(watching.refusal("do that")),
        }
    }
    out
}

fn on_ask_key(app: &mut App, ask: Ask, key: KeyEvent) -> Vec<Action> {
    let yes = matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y'));
    let no = matches!(key.code, KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc);
    match ask {
        Ask::Approve { at, step } => {
            if yes {
                // Only for the step that still waits: the driver checks it again anyway.
                if awaiting_approval(app).is_some_and(|(w, _)| w == at) {
                    app.note(format!("approving {step}…"));
                    return vec![Action::Ask(Request::Approve { step })];
                }
                app.note(format!("{step} no longer waits for an approval: nothing sent"));
            } else if !no {
                app.dialogs.push(Dialog::Watcher(Ask::Approve { at, step }));
            }
        }
    }
    Vec::new()
}

/// A watcher's dialog: its title and lines.
pub fn dialog<'a>(app: &App, ask: &Ask, theme: &Theme) -> (String, Vec<Line<'a>>) {
    match ask {
        Ask::Approve { at, step } => {
            let title = app.step(*at).title.clone();
            let me = app.watching.as_ref().map_or("you", |w| w.me.as_str()).to_string();
            let state = awaiting_approval(app)
                .filter(|(w, _)| w == at)
                .map(|(_, w)| w.describe())
                .unwrap_or_else(|| "no longer waiting".into());
            (
                format!(" Approve {step}? "),
                vec![
                    Line::from(format!("{step}: {title}")),
                    Line::from(format!("It is {state}.")),
                    Line::from(""),
                    Line::from(format!(
                        "Your approval is journaled as {me}'s, with where you are and the metric values now."
                    )),
                    Line::from(""),
                    Line::from(Span::styled(
                        format!("y: approve {step}   n or Esc: do not"),
                        theme.warn(),
                    )),
                ],
            )
        }
    }
}

/// The key hints of a watcher's screen.
pub fn hints(app: &App) -> Vec<(&'static str, &'static str)> {
    let mut h = Vec::new();
    if awaiting_approval(app).is_some() {
        h.push(("A", "approve"));
    }
    if app
        .watching
        .as_ref()
        .is_some_and(|w| !w.ended && !w.driver_gone())
    {
        h.push(("n", "note to the driver"));
    }
    h.push(("?", "keys"));
    h.push(("q", "quit"));
    // The reading keys are the driver's (search, attempts, zoom).
    h.extend(
        super::bindings::hints(app)
            .into_iter()
            .filter(|(k, _)| matches!(*k, "/" | "^P ^N" | "[ ]" | "z" | "Esc")),
    );
    h
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::control::ApprovalWaiting;

    const RUNBOOK: &str = r#"
[runbook]
title = "Watched"

[[phase]]
id = "deploy"
title = "Deploy"

[[phase.step]]
id = "check"
title = "Check"
manual = true

[[phase.step]]
id = "ship"
title = "Ship it"
run = "true"
approval = { count = 1 }
"#;

    fn watcher(me: &str) -> App {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rb.toml");
        std::fs::write(&file, RUNBOOK).unwrap();
        let rb = crate::runbook::load(&file, &[]).unwrap();
        let mut app = App::new(Arc::new(rb), crate::engine::Mode::Run, &[], "/run".into());
        app.watching = Some(Watching {
            run: "20261129T120000Z-rb".into(),
            driver: Some(Driver {
                operator: "alice".into(),
                host: "bastion".into(),
                pid: 42,
                alive: Liveness::Alive,
            }),
            ended: false,
            me: me.into(),
            store: None,
        });
        app
    }

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn at(step: usize) -> StepRef {
        StepRef {
            rollback: false,
            phase: 0,
            step,
        }
    }

    fn last_message(app: &App) -> String {
        app.messages.back().map(|m| m.1.clone()).unwrap_or_default()
    }

    #[test]
    fn keys_that_change_the_run_say_who_can_and_send_nothing() {
        let mut app = watcher("bob");
        app.apply(crate::engine::Update::Waiting {
            step: at(0),
            why: Wait::GoAhead { irreversible: false },
        });
        for (k, what) in [
            (KeyCode::Enter, "confirm"),
            (KeyCode::Char('s'), "skip a step"),
            (KeyCode::Char('R'), "roll back"),
            (KeyCode::Char('a'), "acknowledge a trigger"),
        ] {
            assert_eq!(on_key(&mut app, key(k)), Vec::new());
            assert_eq!(
                last_message(&app),
                format!(
                    "only alice (driving) can {what} — ask, or: runbook takeover 20261129T120000Z-rb --reason …"
                )
            );
            assert!(app.dialogs.is_empty(), "no dialog opens for {k:?}");
        }
        // Leaving asks nothing.
        assert_eq!(on_key(&mut app, key(KeyCode::Char('q'))), vec![Action::Quit]);
    }

    #[test]
    fn through_the_store_the_badge_says_so_and_never_looks_healthy_when_it_is_lost() {
        let mut app = watcher("bob");
        let w = app.watching.as_mut().unwrap();
        w.store = Some(ViaStore {
            at: "rb@db:5432/runbook".into(),
            lost: None,
        });
        assert_eq!(w.badge(), " WATCHING via store · alice@bastion drives ");
        assert_eq!(w.badge_within(40), " WATCHING via store · alice drives ");
        assert_eq!(w.badge_within(10), " WATCHING via store ");
        w.store.as_mut().unwrap().lost =
            Some(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(3723));
        assert_eq!(
            w.badge(),
            " WATCHING via store · STORE LOST 01:02:03 · reconnecting "
        );
        assert_eq!(w.badge_within(45), " WATCHING via store · STORE LOST 01:02:03 ");
        assert_eq!(w.badge_within(30), " STORE LOST 01:02:03 ");
    }

    #[test]
    fn at_80_columns_the_badge_gives_way_before_where_the_run_stands() {
        let mut app = watcher("bob");
        let w = app.watching.as_mut().unwrap();
        w.store = Some(ViaStore {
            at: "rb@db:5432/runbook".into(),
            lost: None,
        });
        if let Some(d) = &mut w.driver {
            d.host = "bastion-eu-west-1a.example.internal".into();
        }
        app.apply(crate::engine::Update::Waiting {
            step: at(0),
            why: Wait::GoAhead { irreversible: false },
        });
        let theme = Theme {
            color: false,
            ascii: false,
        };
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).unwrap();
        term.draw(|f| crate::tui::ui::draw(f, &app, &theme, app.started))
            .unwrap();
        let buffer = term.backend().buffer();
        let header: String = buffer.content()[..80].iter().map(|c| c.symbol()).collect();
        assert!(header.contains("WAITING FOR ALICE"), "{header}");
        assert!(header.contains(" WATCHING via store · alice drives "), "{header}");
    }

    #[test]
    fn a_note_is_a_request_to_the_driver() {
        let mut app = watcher("bob");
        assert_eq!(on_key(&mut app, key(KeyCode::Char('n'))), Vec::new());
        for c in "db ok".chars() {
            on_key(&mut app, key(KeyCode::Char(c)));
        }
        assert_eq!(
            on_key(&mut app, key(KeyCode::Enter)),
            vec![Action::Ask(Request::Note { text: "db ok".into() })]
        );
    }

    #[test]
    fn an_approval_is_confirmed_naming_the_step_and_refused_to_the_driver_user() {
        let waiting = ApprovalWaiting {
            step: "deploy/ship".into(),
            title: "Ship it".into(),
            needed: 1,
            ..Default::default()
        };
        let mut app = watcher("bob");
        assert_eq!(on_key(&mut app, key(KeyCode::Char('A'))), Vec::new());
        assert!(last_message(&app).starts_with("no step waits for an approval"));
        app.apply(crate::engine::Update::Waiting {
            step: at(1),
            why: Wait::Approval(waiting.clone()),
        });
        assert_eq!(on_key(&mut app, key(KeyCode::Char('A'))), Vec::new());
        assert!(matches!(
            app.dialogs.last(),
            Some(Dialog::Watcher(Ask::Approve { step, .. })) if step == "deploy/ship"
        ));
        // Any other key leaves the question open; Esc closes it, sending nothing.
        assert_eq!(on_key(&mut app, key(KeyCode::Char('x'))), Vec::new());
        assert_eq!(on_key(&mut app, key(KeyCode::Esc)), Vec::new());
        assert!(app.dialogs.is_empty());
        on_key(&mut app, key(KeyCode::Char('A')));
        assert_eq!(
            on_key(&mut app, key(KeyCode::Char('y'))),
            vec![Action::Ask(Request::Approve {
                step: "deploy/ship".into()
            })]
        );

        let mut own = watcher("alice");
        own.apply(crate::engine::Update::Waiting {
            step: at(1),
            why: Wait::Approval(waiting),
        });
        assert_eq!(on_key(&mut own, key(KeyCode::Char('A'))), Vec::new());
        assert!(own.dialogs.is_empty());
        assert!(last_message(&own).contains("you (alice) drive this run"));
    }
}
