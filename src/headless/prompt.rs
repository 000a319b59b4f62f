//! Asking the operator on a terminal: the go-ahead prompt for a step, and the background reader that
//! turns an answer into an engine command.

use std::io::BufRead;

use tokio::sync::mpsc;

use crate::engine::{Command, StepRef};
use crate::runbook::{Step, StepKind};

pub(super) fn go_ahead_prompt(name: &str, step: &Step, irreversible: bool) -> String {
    let mut p = String::new();
    if irreversible {
        p.push_str(&format!(
            "IRREVERSIBLE: {name} cannot be undone by the rollback procedure.\n"
        ));
    }
    p.push_str(&format!("{name}: {}\n", step.title));
    if let StepKind::Manual(Some(instruction)) = &step.kind {
        p.push_str(&format!("    {instruction}\n"));
    }
    if let StepKind::Run(cmd) = &step.kind {
        p.push_str(&format!("    $ {cmd}\n"));
    }
    if irreversible {
        p.push_str("[y] run it, [s] skip, [R] roll back, [q] stop the run: ");
    } else {
        p.push_str("[Enter] confirm, [s] skip, [R] roll back, [q] stop the run: ");
    }
    p
}

/// Asks on the terminal in the background, so that updates keep flowing while the operator reads.
/// The answer names the step it was asked about; an irreversible step takes `y` only (a bare
/// Enter, perhaps typed ahead, does not start it).
pub(super) fn ask(commands: mpsc::Sender<Command>, prompt: String, at: StepRef, irreversible: bool) {
    tokio::task::spawn_blocking(move || {
        let stdin = std::io::stdin();
        loop {
            crate::say_inline!("{prompt}");
            let mut line = String::new();
            if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
                let _ = commands.blocking_send(Command::Abort {
                    reason: Some("stdin closed".into()),
                });
                return;
            }
            let confirm = Some(Command::Confirm {
                by: None,
                step: Some(at),
            });
            let cmd = match line.trim_end_matches(['\n', '\r']) {
                "y" | "yes" => confirm,
                "" if !irreversible => confirm,
                "" => {
                    crate::say!("this step cannot be undone: type y to run it");
                    None
                }
                "r" => Some(Command::Retry),
                "a" => Some(Command::Acknowledge),
                "R" => Some(Command::Rollback),
                "q" => Some(Command::Abort {
                    reason: Some("stopped by the operator".into()),
                }),
                "d" => {
                    crate::say_inline!("why is it done? ");
                    let mut reason = String::new();
                    let _ = stdin.lock().read_line(&mut reason);
                    let reason = reason.trim().to_string();
                    if reason.is_empty() {
                        crate::say!("marking it done needs a reason");
                        continue;
                    }
                    Some(Command::MarkDone { reason })
                }
                "s" => {
                    crate::say_inline!("reason for skipping: ");
                    let mut reason = String::new();
                    let _ = stdin.lock().read_line(&mut reason);
                    let reason = reason.trim().to_string();
                    if reason.is_empty() {
                        crate::say!("a skip needs a reason");
                        continue;
                    }
                    Some(Command::Skip { reason })
                }
                _ => None,
            };
            if let Some(cmd) = cmd {
                let _ = commands.blocking_send(cmd);
                return;
            }
        }
    });
}
