//! The key table: every key of the main screen, once — what is pressed, the action it takes,
//! when it is offered on the hint line (and in which words), and its line in the `?` help. The
//! key handler (`keys::on_key`), the hint line (`hints`) and the help (`help`) are all read from
//! it, so that a key cannot be handled, hinted and documented three different ways.
//!
//! Keys inside a dialog (`y`, `n`, `Esc`, typing) belong to the dialog and are not here; the
//! help says so in its last lines.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::state::App;
use crate::engine::Wait;
use crate::runbook::StepKind;

/// A key as the table names it: its code, and whether Ctrl is held. Shift is part of the
/// character (`R`, `G`, `?`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn key(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

const fn ch(c: char) -> Key {
    key(KeyCode::Char(c))
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

/// What a key does on the main screen. `keys::on_key` carries each one out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Confirm the waiting step, let a `confirm` step run, or end a running watch (asks).
    GoAhead,
    Skip,
    Retry,
    MarkDone,
    Note,
    Rollback,
    Acknowledge,
    RaiseTrigger,
    InjectFault,
    Up,
    Down,
    Left,
    Right,
    SwitchFocus,
    PageUp,
    PageDown,
    Home,
    Follow,
    Wrap,
    Zoom,
    Metrics,
    /// Clear the search, else leave the zoomed pane.
    Escape,
    EarlierAttempt,
    LaterAttempt,
    Search,
    PreviousMatch,
    NextMatch,
    /// The mouse wheel on or off.
    Mouse,
    Help,
    Quit,
    Suspend,
}

/// How a binding shows on the hint line: its place there (lower first: when the line is too
/// narrow, what comes last goes first, except `q`, which always stays), the keys as written
/// there, and when it is offered, with which words.
pub struct Hint {
    pub rank: u8,
    pub keys: &'static str,
    pub when: fn(&App) -> Option<&'static str>,
}

/// One line of the table, and of the help.
pub struct Binding {
    /// The keys, each with the action it takes (a line may hold a pair: up and down).
    pub keys: &'static [(Key, Action)],
    /// The keys as the help writes them.
    pub label: &'static str,
    pub help: &'static str,
    pub hint: Option<Hint>,
}

/// The run has not ended.
fn live(app: &App) -> bool {
    app.finished.is_none()
}

/// A trigger fires and the rollback has not begun: no go-ahead is taken.
pub fn held(app: &App) -> bool {
    !app.firing().is_empty() && app.rollback_reason.is_none()
}

fn waits(app: &App) -> Option<&Wait> {
    app.waiting.as_ref().map(|(_, w)| w).filter(|_| live(app))
}

fn hint_go_ahead(app: &App) -> Option<&'static str> {
    if !live(app) {
        return None;
    }
    match &app.waiting {
        Some((at, Wait::GoAhead { irreversible })) => {
            (!held(app)).then_some(match (app.selected == *at, irreversible) {
                (false, _) => "show waiting step",
                (true, true) => "review (irreversible)",
                (true, false) => "confirm",
            })
        }
        Some(_) => None,
        None => {
            let at = app.running()?;
            matches!(app.step(at).kind, StepKind::Watch(_)).then_some("end watch")
        }
    }
}

fn hint_retry(app: &App) -> Option<&'static str> {
    match waits(app)? {
        Wait::Failed { .. } if !held(app) => Some("retry"),
        Wait::Interrupted => Some("run again"),
        _ => None,
    }
}

fn hint_mark_done(app: &App) -> Option<&'static str> {
    matches!(waits(app)?, Wait::Interrupted).then_some("mark done")
}

fn hint_skip(app: &App) -> Option<&'static str> {
    matches!(
        waits(app)?,
        Wait::GoAhead { .. } | Wait::Failed { .. } | Wait::Interrupted | Wait::Approval(_)
    )
    .then_some("skip")
}

fn hint_acknowledge(app: &App) -> Option<&'static str> {
    let trigger_waits = matches!(waits(app), Some(Wait::Trigger { .. }));
    (live(app) && (trigger_waits || held(app))).then_some("acknowledge")
}

fn hint_rollback(app: &App) -> Option<&'static str> {
    (live(app) && app.rollback_reason.is_none()).then_some("ROLL BACK")
}

fn hint_note(app: &App) -> Option<&'static str> {
    live(app).then_some("note")
}

/// Offered only when the log has lines to search (not for a watch, nor a step with no output yet).
fn hint_search(app: &App) -> Option<&'static str> {
    let has_output = app.shown_log().is_some_and(|l| !l.is_empty());
    (app.search.is_none() && has_output).then_some("search")
}

fn hint_matches(app: &App) -> Option<&'static str> {
    app.search.is_some().then_some("prev/next match")
}

fn hint_attempts(app: &App) -> Option<&'static str> {
    (app.view(app.selected).attempts > 1).then_some("attempts")
}

fn hint_zoom(app: &App) -> Option<&'static str> {
    app.zoom.is_none().then_some("zoom")
}

fn hint_unzoom(app: &App) -> Option<&'static str> {
    app.zoom.is_some().then_some("unzoom")
}

const fn hint(rank: u8, keys: &'static str, when: fn(&App) -> Option<&'static str>) -> Option<Hint> {
    Some(Hint { rank, keys, when })
}

use Action as A;

/// Every key of the main screen, in the order of the help: acting on the run, reading it, the
/// rest.
pub const TABLE: &[Binding] = &[
    Binding {
        keys: &[(key(KeyCode::Enter), A::GoAhead)],
        label: "Enter",
        help: "confirm the waiting step (shown first if not on screen; an irreversible one asks y), \
               let a confirm step run, end a watch early (asks)",
        hint: hint(0, "Enter", hint_go_ahead),
    },
    Binding {
        keys: &[(ch('s'), A::Skip)],
        label: "s",
        help: "skip the waiting or failed step (asks for a reason)",
        hint: hint(3, "s", hint_skip),
    },
    Binding {
        keys: &[(ch('r'), A::Retry)],
        label: "r",
        help: "retry the failed step (or run again a step interrupted by an earlier session)",
        hint: hint(1, "r", hint_retry),
    },
    Binding {
        keys: &[(ch('d'), A::MarkDone)],
        label: "d",
        help: "mark done a step interrupted by an earlier session (asks why)",
        hint: hint(2, "d", hint_mark_done),
    },
    Binding {
        keys: &[(ch('R'), A::Rollback)],
        label: "R",
        help: "offer the rollback: what it cancels and runs; y starts it, w: why first, Esc cancels",
        hint: hint(5, "R", hint_rollback),
    },
    Binding {
        keys: &[(ch('a'), A::Acknowledge)],
        label: "a",
        help: "acknowledge firing triggers (recorded); stops an auto_rollback countdown",
        hint: hint(4, "a", hint_acknowledge),
    },
    Binding {
        keys: &[(ch('t'), A::RaiseTrigger)],
        label: "t",
        help: "raise a trigger by hand (asks for a reason)",
        hint: None,
    },
    Binding {
        keys: &[(ch('!'), A::InjectFault)],
        label: "!",
        help: "inject a fault into simulated metrics (practice)",
        hint: None,
    },
    Binding {
        keys: &[(ch('n'), A::Note)],
        label: "n",
        help: "add a note to the journal",
        hint: hint(6, "n", hint_note),
    },
    Binding {
        keys: &[
            (key(KeyCode::Up), A::Up),
            (ch('k'), A::Up),
            (key(KeyCode::Down), A::Down),
            (ch('j'), A::Down),
        ],
        label: "↑ ↓  j k",
        help: "select a step; with the log focused (Tab): scroll it a line",
        hint: None,
    },
    Binding {
        keys: &[
            (key(KeyCode::Left), A::Left),
            (ch('h'), A::Left),
            (key(KeyCode::Right), A::Right),
            (ch('l'), A::Right),
        ],
        label: "← →  h l",
        help: "show another phase; with the log focused: scroll sideways (when lines are cut)",
        hint: None,
    },
    Binding {
        keys: &[
            (key(KeyCode::Tab), A::SwitchFocus),
            (key(KeyCode::BackTab), A::SwitchFocus),
        ],
        label: "Tab",
        help: "move the keyboard between the steps and the log",
        hint: None,
    },
    Binding {
        keys: &[
            (key(KeyCode::PageUp), A::PageUp),
            (key(KeyCode::PageDown), A::PageDown),
            (ch(' '), A::PageDown),
        ],
        label: "PgUp PgDn Space",
        help: "scroll the log a screenful up / down",
        hint: None,
    },
    Binding {
        keys: &[(key(KeyCode::Home), A::Home), (ch('g'), A::Home)],
        label: "Home g",
        help: "the start of the log",
        hint: None,
    },
    Binding {
        keys: &[
            (key(KeyCode::End), A::Follow),
            (ch('f'), A::Follow),
            (ch('G'), A::Follow),
        ],
        label: "End f G",
        help: "follow the run again: the step in flight and its newest output",
        hint: None,
    },
    Binding {
        keys: &[(ch('w'), A::Wrap)],
        label: "w",
        help: "wrap long log lines (the default), or cut them and scroll sideways",
        hint: None,
    },
    Binding {
        keys: &[(ch('z'), A::Zoom)],
        label: "z",
        help: "zoom: the pane with the keyboard takes the whole screen (z or Esc: back)",
        hint: hint(13, "z", hint_zoom),
    },
    Binding {
        keys: &[(ch('m'), A::Metrics)],
        label: "m",
        help: "metrics and triggers on the whole screen, every trigger in full (m or Esc: back)",
        hint: None,
    },
    Binding {
        keys: &[(key(KeyCode::Esc), A::Escape)],
        label: "Esc",
        help: "clear the search; without one, leave the zoomed pane",
        hint: hint(14, "Esc", hint_unzoom),
    },
    Binding {
        keys: &[(ch('['), A::EarlierAttempt), (ch(']'), A::LaterAttempt)],
        label: "[ ]",
        help: "the selected step's earlier / later attempt (an earlier session's is read from its file)",
        hint: hint(12, "[ ]", hint_attempts),
    },
    Binding {
        keys: &[(ch('/'), A::Search)],
        label: "/",
        help: "search the log, newest match first (lower case: any case); Ctrl-U clears the box",
        hint: hint(10, "/", hint_search),
    },
    Binding {
        keys: &[(ctrl('p'), A::PreviousMatch), (ctrl('n'), A::NextMatch)],
        label: "Ctrl-P Ctrl-N",
        help: "previous (up) / next (down) match, round the ends; Esc clears the search",
        hint: hint(11, "^P ^N", hint_matches),
    },
    Binding {
        keys: &[(ch('M'), A::Mouse)],
        label: "M",
        help: "mouse wheel on / off: on, it scrolls the pane under it (Shift-drag selects); off at start",
        hint: None,
    },
    Binding {
        keys: &[(ch('?'), A::Help)],
        label: "?",
        help: "this help",
        hint: hint(7, "?", |_| Some("keys")),
    },
    Binding {
        keys: &[(ch('q'), A::Quit), (ctrl('c'), A::Quit)],
        label: "q Ctrl-C",
        help: "quit (asks first while the run goes on, and says what happens to the step in flight)",
        hint: hint(8, "q", |_| Some("quit")),
    },
    Binding {
        keys: &[(ctrl('z'), A::Suspend)],
        label: "Ctrl-Z",
        help: "suspend; `fg` comes back",
        hint: None,
    },
];

/// The action a key takes on the main screen. A Ctrl key the table does not name acts as the
/// key without Ctrl (as it always has); Shift is part of the character.
pub fn action(key: KeyEvent) -> Option<Action> {
    let pressed = Key {
        code: key.code,
        ctrl: key.modifiers.contains(KeyModifiers::CONTROL),
    };
    let find = |k: Key| {
        TABLE
            .iter()
            .flat_map(|b| b.keys.iter())
            .find(|(bound, _)| *bound == k)
            .map(|(_, a)| *a)
    };
    find(pressed).or_else(|| pressed.ctrl.then(|| find(key_without_ctrl(pressed))).flatten())
}

fn key_without_ctrl(k: Key) -> Key {
    Key { ctrl: false, ..k }
}

/// The keys offered on the hint line now, in their order: (keys, what they do).
pub fn hints(app: &App) -> Vec<(&'static str, &'static str)> {
    let mut offered: Vec<(u8, &'static str, &'static str)> = TABLE
        .iter()
        .filter_map(|b| {
            let h = b.hint.as_ref()?;
            Some((h.rank, h.keys, (h.when)(app)?))
        })
        .collect();
    offered.sort_by_key(|(rank, _, _)| *rank);
    offered.into_iter().map(|(_, k, what)| (k, what)).collect()
}

/// The help's lines: (keys, what they do), in the table's order.
pub fn help() -> impl Iterator<Item = (&'static str, &'static str)> {
    TABLE.iter().map(|b| (b.label, b.help))
}
