//! The log pane of a step that waits and has printed nothing: what it waits for, and the key
//! that answers it (`Enter` to confirm a manual step, `r`/`s`/`R` after a failure, …), with a
//! manual step's instruction in full. A watcher (`attach`) is told who can answer instead.

use crate::engine::Wait;
use crate::runbook::StepKind;
use crate::tui::state::App;

/// The pane's lines, wrapped to `width` columns.
pub fn lines(app: &App, wait: &Wait, width: usize) -> Vec<String> {
    let step = app.step(app.selected);
    let you = app.watching.as_ref().map(|w| w.driver_name().to_string());
    let who = you
        .as_deref()
        .map_or("you".to_string(), |d| format!("{d} (driving)"));
    let mut text = vec![match wait {
        Wait::GoAhead { irreversible: true } => format!(
            "Waiting for {who}: this step is IRREVERSIBLE (the rollback cannot undo it). Enter, then y, \
             runs it (s skips it, with a reason)."
        ),
        Wait::GoAhead { .. } if matches!(step.kind, StepKind::Manual(_)) => format!(
            "Waiting for {who} to do this step by hand, then Enter confirms it (s skips it, with a \
             reason)."
        ),
        Wait::GoAhead { .. } => format!(
            "Waiting for {who} to let it run (confirm = true): Enter runs it (s skips it, with a \
             reason)."
        ),
        Wait::Failed { .. } => {
            format!("Failed, waiting for {who}: r retries it, s skips it (with a reason), R rolls back.")
        }
        Wait::Trigger { triggers } => format!(
            "Waiting for {who}: {} firing. a acknowledges and goes on (recorded), R rolls back.",
            triggers.join(", ")
        ),
        Wait::Interrupted => format!(
            "Interrupted when the last session stopped, waiting for {who}: r runs it again, d marks it \
             done, s skips it (each with a reason), R rolls back."
        ),
        Wait::Approval(w) => w.describe(),
    }];
    if you.is_some() {
        text.push("Only the driver can answer; n adds a note.".into());
    }
    match &step.kind {
        StepKind::Manual(Some(i)) => text.push(format!("To do: {i}")),
        StepKind::Run(c) if matches!(wait, Wait::GoAhead { .. }) => {
            text.push(format!("$ {}", c.lines().next().unwrap_or("")))
        }
        _ => {}
    }
    text.iter()
        .flat_map(|t| super::dialogs::wrap_words(t, width))
        .collect()
}
