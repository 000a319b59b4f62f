//! The headless front end's part of operators as a team: a takeover request asked on the
//! terminal (`y` hands the run over), and what is printed about it.

use std::io::{BufRead as _, Write};

use tokio::sync::mpsc;

use crate::engine::{Command, TeamUpdate};

/// Prints a team update; returns to whom the run was handed over, if it was.
pub(super) fn on_update(
    out: &mut impl Write,
    now: &str,
    update: TeamUpdate,
    commands: &mpsc::Sender<Command>,
) -> Option<String> {
    match update {
        TeamUpdate::TakeoverAsked { by, from, reason, .. } => {
            let _ = writeln!(
                out,
                "{now} ?? {by} asks to take the run over (from {from}): {reason}"
            );
            let _ = out.flush();
            ask_handover(commands.clone(), by);
            None
        }
        TeamUpdate::TakeoverWithdrawn { why, .. } => {
            let _ = writeln!(out, "{now}    {why}");
            None
        }
        TeamUpdate::HandedOver { to } => Some(to),
    }
}

/// Another operator asks to take the run over: `y` hands it over, anything else keeps it. (The
/// engine only asks when a terminal is on stdin: a headless run without one refuses at once.)
fn ask_handover(commands: mpsc::Sender<Command>, by: String) {
    tokio::task::spawn_blocking(move || {
        crate::say_inline!("hand this run over to {by}? they drive it from here [y/N]: ");
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let accept = matches!(line.trim(), "y" | "Y" | "yes");
        let _ = commands.blocking_send(Command::Handover { accept });
    });
}

/// A step waits for approvals: says so, and how another operator gives one (with a shared store,
/// `shared_id`: also from another host). Returns why the run
/// must stop instead: nobody but the driver may approve and nobody is at a terminal to skip it.
pub(super) fn waiting_for_approval(
    out: &mut impl Write,
    now: &str,
    name: &str,
    w: &crate::control::ApprovalWaiting,
    (run_dir, shared_id): (&std::path::Path, Option<&str>),
    interactive: bool,
) -> Option<String> {
    let folder = run_dir.display().to_string();
    let hint = crate::team::approve::hint(Some(&folder), shared_id, name);
    let elsewhere = hint
        .other_host
        .map(|c| format!("; from another host (shared store): {c}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{now} .. {name} is {}; another operator approves with: {}{elsewhere}",
        w.describe(),
        hint.here.unwrap_or_default()
    );
    let _ = out.flush();
    let nobody = w.may_approve.as_ref().is_some_and(|l| l.is_empty());
    (nobody && !interactive).then(|| {
        format!(
            "{name} needs {} approval(s) from operators other than the driver, \
             and none of its approvers may give them (the driver cannot approve its own run); \
             stdin is not a terminal, so nobody can skip it either",
            w.missing()
        )
    })
}
