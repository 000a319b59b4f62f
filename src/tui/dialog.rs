//! The dialogs that can be open over the screen, as plain data: help, the rollback offer,
//! quitting, ending a watch early, an irreversible step's go-ahead, a text box (skip reason, note,
//! trigger reason, search) and picking a trigger to raise. They are a stack in `App::dialogs`; the
//! one on top gets the keys first (`keys`), and `ui::dialogs` draws them.
//!
//! This module sits below both `state` and `keys`, so that neither imports the other for it.

use ratatui_textarea::TextArea;

use crate::engine::StepRef;

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
    /// Why the operator rolls back (optional); Enter starts the rollback.
    Rollback,
}

pub enum Dialog {
    /// `?`: every key, from the key table. `scroll`: rows scrolled down (the help is taller than
    /// an 80×24 screen).
    Help { scroll: usize },
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
    PickTrigger { selected: usize },
    /// A watcher's question (`runbook attach`): its keys and lines are `watching`'s.
    Watcher(super::watching::Ask),
    /// Another operator asks to take the run over (`runbook takeover`): `y` hands it over.
    Handover {
        by: String,
        from: String,
        reason: String,
        /// Asked from another host (through the shared store): a step in flight is not followed
        /// there; the run is handed over once it has ended.
        across_hosts: bool,
    },
}

impl Dialog {
    /// A text box for `purpose`, holding `initial` with the cursor at its end.
    pub fn text(purpose: TextPurpose, initial: &str) -> Dialog {
        let mut area = TextArea::new(vec![initial.to_string()]);
        area.move_cursor(ratatui_textarea::CursorMove::End);
        Dialog::Text {
            purpose,
            area: Box::new(area),
        }
    }
}
