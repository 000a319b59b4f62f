//! The headless front end: plain, line-oriented progress on stdout for CI, scripts and logs.
//!
//! Every line starts with the UTC time. Step output is shown as `TIME phase/step | line`, with
//! terminal escapes and control characters removed (the log file keeps the raw bytes). When the
//! run waits for an operator, a terminal on stdin is asked; otherwise the run stops, saying why.

mod printer;
mod prompt;
mod team;

use std::io::{IsTerminal, Write};
use std::time::SystemTime;

use crate::engine::{Command, Update, Wait};
use crate::journal::{Event, Outcome};
use crate::runbook::StepKind;
use crate::session::Session;
use crate::text::clock;
use printer::Printer;
use prompt::{Choice, Prompter, Question, go_ahead_question};

/// Runs a started session to its end, printing progress; returns the exit status.
pub async fn run(session: Session) -> i32 {
    // What the start had to say and, resuming, where the run stood. The store is the command line's.
    for n in &session.notices {
        crate::say!("runbook: {n}");
    }
    if !session.history.is_empty() {
        resumed_summary(&session.history);
    }
    let shared_id = crate::team::approve::shared_id(&session.run_dir, session.store_status.is_some());
    let Session {
        runbook,
        run_dir,
        commands,
        mut updates,
        engine,
        ..
    } = session;
    let interactive = std::io::stdin().is_terminal();
    // Questions on the terminal; dropped (the terminal put back) whatever way this returns.
    let prompter = Prompter::new();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let mut printer = Printer::new(&runbook);
    let mut store_lines = crate::store::link::Throttle::default();
    // The run was handed over (`runbook takeover`, agreed to here): to whom.
    let mut handed_over: Option<String> = None;
    while let Some(update) = updates.recv().await {
        // Nothing is printed into an open question's line.
        prompter.pause();
        match update {
            Update::Team(t) => {
                let now = clock(SystemTime::now());
                if let Some(to) = team::on_update(&mut out, &now, t, &commands) {
                    handed_over = Some(to);
                }
            }
            Update::Output { step, chunk } => printer.output(&mut out, step, chunk.at, &chunk.bytes),
            Update::Event(record) => {
                // The run moved on: a question still open is no longer the one to answer.
                if matches!(
                    record.event,
                    Event::StepStarted { .. }
                        | Event::StepFinished(_)
                        | Event::RollbackStarted { .. }
                        | Event::RunFinished { .. }
                ) {
                    prompter.withdraw();
                }
                printer.event(&mut out, &record.event)
            }
            Update::Message(m) => {
                let _ = writeln!(out, "{}    {m}", clock(SystemTime::now()));
            }
            Update::Store(status) => {
                if let Some(line) = store_lines.line(&status) {
                    let _ = writeln!(out, "{} !! {line}", clock(SystemTime::now()));
                    let _ = out.flush();
                }
            }
            Update::Waiting { step, why } => {
                let _ = out.flush();
                let s = printer.step(step);
                let name = printer.name(step);
                match (why, interactive) {
                    (Wait::GoAhead { irreversible }, true) => prompter.ask(
                        commands.clone(),
                        go_ahead_question(&name, s, irreversible, step),
                    ),
                    (Wait::GoAhead { .. }, false) => {
                        let what = if matches!(s.kind, StepKind::Manual(_)) {
                            "is a manual step"
                        } else {
                            "has confirm = true"
                        };
                        let reason = format!(
                            "{name} {what} and waits for an operator, but stdin is not a terminal; \
                             run with --yes to confirm every go-ahead automatically (recorded as \"auto\")"
                        );
                        crate::say!("runbook: {reason}");
                        let _ = commands.send(Command::Abort { reason: Some(reason) }).await;
                    }
                    (Wait::Failed { .. }, true) => prompter.ask(
                        commands.clone(),
                        Question {
                            context: String::new(),
                            choices: format!("{name} failed. [r] retry, [s] skip, [R] roll back, [q] stop the run: "),
                            offered: vec![Choice::Retry, Choice::Skip, Choice::Rollback, Choice::Stop],
                            at: step,
                        },
                    ),
                    (Wait::Failed { .. }, false) => {
                        let _ = commands.send(Command::Abort { reason: None }).await;
                    }
                    (Wait::Trigger { triggers }, true) => prompter.ask(
                        commands.clone(),
                        Question {
                            context: String::new(),
                            choices: format!(
                                "TRIGGER FIRING: {}. The run holds before {name}. [a] acknowledge and go on, [R] roll back: ",
                                triggers.join(", ")
                            ),
                            offered: vec![Choice::Acknowledge, Choice::Rollback],
                            at: step,
                        },
                    ),
                    (Wait::Interrupted, true) => prompter.ask(
                        commands.clone(),
                        Question {
                            context: format!(
                                "{name} did not finish when the run stopped (it was in flight, or had failed).\n"
                            ),
                            choices: format!(
                                "{name}: [r] run it again, [d] mark it done (asks why), [s] skip it (asks why), [R] roll back, [q] stop: "
                            ),
                            offered: vec![
                                Choice::Retry,
                                Choice::MarkDone,
                                Choice::Skip,
                                Choice::Rollback,
                                Choice::Stop,
                            ],
                            at: step,
                        },
                    ),
                    (Wait::Interrupted, false) => {
                        let reason = format!(
                            "{name} needs a decision: it was in flight, or had failed, when the run stopped; \
                             resume with --yes to run it again, or in a terminal to decide"
                        );
                        crate::say!("runbook: {reason}");
                        let _ = commands.send(Command::Abort { reason: Some(reason) }).await;
                    }
                    (Wait::Trigger { .. }, false) => {
                        let _ = commands.send(Command::Rollback).await;
                    }
                    (Wait::Approval(w), interactive) => {
                        let now = clock(SystemTime::now());
                        if let Some(reason) =
                            team::waiting_for_approval(&mut out, &now, &name, &w, (&run_dir, shared_id.as_deref()), interactive)
                        {
                            crate::say!("runbook: {reason}");
                            let _ = commands.send(Command::Abort { reason: Some(reason) }).await;
                        }
                    }
                }
            }
        }
        if updates.is_empty() {
            let _ = out.flush();
            prompter.resume();
        }
    }
    let _ = out.flush();
    drop(prompter);
    if let Some(to) = handed_over {
        let _ = engine.await;
        crate::say!(
            "runbook: handed over to {to} — watch with: runbook attach {}",
            run_dir.display()
        );
        return 0;
    }
    match engine.await {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            crate::say!("runbook: internal error: {e}");
            Outcome::Failed.exit_code()
        }
    }
}

/// One line on where a resumed run stood.
fn resumed_summary(history: &[crate::journal::Record]) {
    let mut done = std::collections::HashSet::new();
    for r in history {
        if let Event::StepFinished(f) = &r.event
            && f.status.is_success()
        {
            done.insert((f.rollback, f.phase.clone(), f.step.clone()));
        }
    }
    let sessions = history
        .iter()
        .filter(|r| matches!(r.event, Event::RunStarted { .. }))
        .count();
    crate::say!(
        "runbook: resuming after {sessions} earlier session{}: {} step{} already done, they will not run again",
        if sessions == 1 { "" } else { "s" },
        done.len(),
        if done.len() == 1 { "" } else { "s" }
    );
}
