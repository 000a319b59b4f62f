//! The headless front end: plain, line-oriented progress on stdout for CI, scripts and logs.
//!
//! Every line starts with the UTC time. Step output is shown as `TIME phase/step | line`, with
//! terminal escapes and control characters removed (the log file keeps the raw bytes). When the
//! run waits for an operator, a terminal on stdin is asked; otherwise the run stops, saying why.

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal, Write};
use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::duration::format_duration;
use crate::engine::{Command, StepRef, TeamUpdate, Update, Wait};
use crate::journal::{Event, Outcome, StepStatus};
use crate::runbook::{Runbook, Step, StepKind};
use crate::session::Session;

/// Runs a started session to its end, printing progress; returns the exit status.
pub async fn run(session: Session) -> i32 {
    let Session {
        runbook,
        run_dir,
        commands,
        mut updates,
        engine,
        history,
        notices,
    } = session;
    for n in &notices {
        crate::say!("runbook: {n}");
    }
    if !history.is_empty() {
        resumed_summary(&history);
    }
    let interactive = std::io::stdin().is_terminal();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let mut printer = Printer {
        rb: &runbook,
        last_phase: None,
        buf: Vec::new(),
        cancelled: Vec::new(),
    };
    // The run was handed over to this operator (`runbook takeover`, agreed to here).
    let mut handed_over: Option<String> = None;
    while let Some(update) = updates.recv().await {
        match update {
            Update::Team(t) => {
                let now = clock(SystemTime::now());
                match t {
                    TeamUpdate::TakeoverAsked { by, from, reason } => {
                        let _ = writeln!(
                            out,
                            "{now} ?? {by} asks to take the run over (from {from}): {reason}"
                        );
                        let _ = out.flush();
                        ask_handover(commands.clone(), by);
                    }
                    TeamUpdate::TakeoverWithdrawn { why, .. } => {
                        let _ = writeln!(out, "{now}    {why}");
                    }
                    TeamUpdate::HandedOver { to } => handed_over = Some(to),
                }
            }
            Update::Output { step, chunk } => printer.output(&mut out, step, chunk.at, &chunk.bytes),
            Update::Event(record) => printer.event(&mut out, &record.event),
            Update::Message(m) => {
                let _ = writeln!(out, "{}    {m}", clock(SystemTime::now()));
            }
            Update::Waiting { step, why } => {
                let _ = out.flush();
                let s = printer.step(step);
                let name = printer.name(step);
                match (why, interactive) {
                    (Wait::GoAhead { irreversible }, true) => ask(
                        commands.clone(),
                        go_ahead_prompt(&name, s, irreversible),
                        step,
                        irreversible,
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
                    (Wait::Failed { .. }, true) => ask(
                        commands.clone(),
                        format!("{name} failed. [r] retry, [s] skip, [R] roll back, [q] stop the run: "),
                        step,
                        false,
                    ),
                    (Wait::Failed { .. }, false) => {
                        let _ = commands.send(Command::Abort { reason: None }).await;
                    }
                    (Wait::Trigger { triggers }, true) => ask(
                        commands.clone(),
                        format!(
                            "TRIGGER FIRING: {}. The run holds before {name}. [a] acknowledge and go on, [R] roll back: ",
                            triggers.join(", ")
                        ),
                        step,
                        false,
                    ),
                    (Wait::Interrupted, true) => ask(
                        commands.clone(),
                        format!(
                            "{name} did not finish when the run stopped (it was in flight, or had failed).\n\
                             [r] run it again, [d] mark it done (asks why), [s] skip it (asks why), [R] roll back, [q] stop: "
                        ),
                        step,
                        false,
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
                        let _ = writeln!(
                            out,
                            "{now} .. {name} is {}; another operator approves with: runbook approve {} {name}",
                            w.describe(),
                            run_dir.display()
                        );
                        let nobody = w.may_approve.as_ref().is_some_and(|l| l.is_empty());
                        if nobody && !interactive {
                            let reason = format!(
                                "{name} needs {} approval(s) from operators other than the driver, \
                                 and none of its approvers may give them (the driver cannot approve its own run); \
                                 stdin is not a terminal, so nobody can skip it either",
                                w.missing()
                            );
                            crate::say!("runbook: {reason}");
                            let _ = commands.send(Command::Abort { reason: Some(reason) }).await;
                        }
                    }
                }
            }
        }
        if updates.is_empty() {
            let _ = out.flush();
        }
    }
    let _ = out.flush();
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

fn go_ahead_prompt(name: &str, step: &Step, irreversible: bool) -> String {
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
/// Another operator asks to take the run over: `y` hands it over, anything else keeps it.
fn ask_handover(commands: mpsc::Sender<Command>, by: String) {
    tokio::task::spawn_blocking(move || {
        crate::say_inline!("hand this run over to {by}? they drive it from here [y/N]: ");
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let accept = matches!(line.trim(), "y" | "Y" | "yes");
        let _ = commands.blocking_send(Command::Handover { accept });
    });
}

fn ask(commands: mpsc::Sender<Command>, prompt: String, at: StepRef, irreversible: bool) {
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

struct Printer<'a> {
    rb: &'a Runbook,
    last_phase: Option<(bool, usize)>,
    buf: Vec<u8>,
    /// Names of forward steps cancelled by a rollback before they started, shown as one line.
    cancelled: Vec<String>,
}

impl<'a> Printer<'a> {
    fn step(&self, at: StepRef) -> &'a Step {
        &self.phases(at.rollback)[at.phase].steps[at.step]
    }

    fn phases(&self, rollback: bool) -> &'a [crate::runbook::Phase] {
        self.rb.phases_of(rollback)
    }

    fn name(&self, at: StepRef) -> String {
        let p = &self.phases(at.rollback)[at.phase];
        format!("{}/{}", p.id, p.steps[at.step].id)
    }

    fn find(
        &self,
        phase: &str,
        step: &str,
        rollback: bool,
    ) -> Option<(usize, &'a crate::runbook::Phase, &'a Step)> {
        let phases = self.phases(rollback);
        let (pi, p) = phases.iter().enumerate().find(|(_, p)| p.id == phase)?;
        Some((pi, p, p.steps.iter().find(|s| s.id == step)?))
    }

    /// A metric's value in its unit.
    fn format_metric(&self, id: &str, v: f64) -> String {
        let unit = self
            .rb
            .metric
            .iter()
            .find(|m| m.id == id)
            .map_or(crate::runbook::Unit::Number, |m| m.unit);
        unit.format(v)
    }

    /// " (value)" for a trigger's event, in its metric's unit.
    fn trigger_value(&self, trigger: &str, value: Option<f64>) -> String {
        let Some(v) = value else { return String::new() };
        let metric = self
            .rb
            .triggers
            .iter()
            .find(|t| t.id == trigger)
            .and_then(|t| match &t.kind {
                crate::runbook::TriggerKind::Metric { metric, .. } => Some(metric.as_str()),
                _ => None,
            });
        match metric {
            Some(m) => format!(" ({m} = {})", self.format_metric(m, v)),
            None => format!(" ({v})"),
        }
    }

    fn output(&mut self, out: &mut impl Write, at: StepRef, when: SystemTime, bytes: &[u8]) {
        let prefix = format!("{} {} | ", clock(when), self.name(at));
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        // One buffer, reused: a fresh one per chunk would be mapped and unmapped every time.
        let buf = &mut self.buf;
        buf.clear();
        // Nearly all output is plain text: check the whole chunk once, not line by line.
        if is_plain(body) && std::str::from_utf8(body).is_ok() {
            prefix_lines(buf, prefix.as_bytes(), body);
        } else {
            for line in body.split(|&b| b == b'\n') {
                buf.extend_from_slice(prefix.as_bytes());
                buf.extend_from_slice(clean(line).as_bytes());
                buf.push(b'\n');
            }
        }
        let _ = out.write_all(buf);
        if buf.capacity() > 4 << 20 {
            *buf = Vec::new();
        }
    }

    fn event(&mut self, out: &mut impl Write, event: &Event) {
        let now = clock(SystemTime::now());
        if !self.cancelled.is_empty() && !matches!(event, Event::StepFinished(_)) {
            let n = self.cancelled.len();
            let names = std::mem::take(&mut self.cancelled);
            let shown = if n > 3 {
                format!("{}, … {}", names[..2].join(", "), names[n - 1])
            } else {
                names.join(", ")
            };
            let _ = writeln!(
                out,
                "{now} xx {n} forward step{} cancelled, never started: {shown}",
                if n == 1 { "" } else { "s" }
            );
        }
        let _ = match event {
            Event::RunStarted {
                title,
                mode,
                operator,
                host,
                ..
            } => {
                writeln!(out, "{now} == {title} ({mode}, {operator}@{host})")
            }
            Event::StepStarted {
                phase,
                step,
                attempt,
                rollback,
            } => {
                let Some((pi, p, s)) = self.find(phase, step, *rollback) else {
                    return;
                };
                if self.last_phase != Some((*rollback, pi)) {
                    self.last_phase = Some((*rollback, pi));
                    let total = self.phases(*rollback).len();
                    let kind = if *rollback { "Rollback phase" } else { "Phase" };
                    let section = p
                        .section
                        .as_deref()
                        .map(|s| format!(" [{s}]"))
                        .unwrap_or_default();
                    let _ = writeln!(out, "{now} == {kind} {}/{total}: {}{section}", pi + 1, p.title);
                }
                let retry = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                let detail = match &s.kind {
                    StepKind::Watch(d) => format!(" — watching for {}", format_duration(*d)),
                    StepKind::Manual(Some(i)) => format!(" — {i}"),
                    _ => String::new(),
                };
                writeln!(out, "{now} -> {phase}/{step}: {}{retry}{detail}", s.title)
            }
            // Forward steps a rollback cancelled before they started: one line for all of them.
            Event::StepFinished(f) if f.attempt == 0 && f.status == StepStatus::Cancelled => {
                self.cancelled.push(format!("{}/{}", f.phase, f.step));
                return;
            }
            Event::StepFinished(f) => {
                let name = format!("{}/{}", f.phase, f.step);
                let took = format_duration(std::time::Duration::from_millis(f.duration_ms));
                let mut facts = Vec::new();
                if let Some(c) = f.exit_code {
                    facts.push(format!("exit {c}"));
                }
                if let Some(h) = f.http_status {
                    facts.push(format!("HTTP {h}"));
                }
                if f.attempt > 0 {
                    facts.push(took);
                }
                if let Some(by) = &f.by {
                    facts.push(format!("by {by}"));
                }
                let facts = if facts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", facts.join(", "))
                };
                let tail = match (&f.error, &f.reason) {
                    (Some(e), _) => format!(": {e}"),
                    (None, Some(r)) => format!(": {r}"),
                    _ => String::new(),
                };
                let log = match (&f.log, f.status) {
                    (Some(l), StepStatus::Failed | StepStatus::TimedOut) => format!(" — log: {l}"),
                    _ => String::new(),
                };
                let mark = match f.status {
                    StepStatus::Succeeded | StepStatus::Confirmed => "ok",
                    StepStatus::Skipped => "--",
                    StepStatus::Cancelled => "xx",
                    _ => "!!",
                };
                writeln!(out, "{now} {mark} {name} {}{facts}{tail}{log}", f.status.as_str())
            }
            Event::Note { text, operator } => writeln!(out, "{now}    note by {operator}: {text}"),
            Event::Approval { .. } | Event::Handover { .. } => {
                writeln!(
                    out,
                    "{now} ok {}",
                    crate::team::describe(event).unwrap_or_default()
                )
            }
            Event::WriteFailed { file, error } => writeln!(out, "{now} !! cannot write {file}: {error}"),
            Event::MetricsSampled { values, errors } => {
                let shown: Vec<String> = values
                    .iter()
                    .map(|(id, v)| match (v, errors.get(id)) {
                        (Some(v), _) => format!("{id}={}", self.format_metric(id, *v)),
                        (None, Some(e)) => format!("{id}=unknown ({e})"),
                        (None, None) => format!("{id}=unknown"),
                    })
                    .collect();
                writeln!(out, "{now}    metrics: {}", shown.join(", "))
            }
            Event::TriggerPending { trigger, value } => {
                let v = self.trigger_value(trigger, *value);
                writeln!(out, "{now} ?? trigger {trigger} pending{v}")
            }
            Event::TriggerFired {
                trigger,
                value,
                reason,
            } => {
                let v = self.trigger_value(trigger, *value);
                let why = reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                // Headless, a firing trigger starts the rollback at once: there is nobody to
                // acknowledge it, so an `auto_rollback` delay is not waited for.
                let auto = self
                    .rb
                    .triggers
                    .iter()
                    .find(|t| &t.id == trigger)
                    .and_then(|t| t.auto_rollback)
                    .map(|d| {
                        format!(
                            " (its auto_rollback = \"{}\" waits only where an operator can acknowledge)",
                            format_duration(d)
                        )
                    })
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{now} !! TRIGGER FIRING: {trigger}{v}{why}\n\
                     {now} !! headless: nobody here can acknowledge it, so the run rolls back now{auto}"
                )
            }
            Event::TriggerCleared { trigger, value } => {
                let v = self.trigger_value(trigger, *value);
                writeln!(out, "{now}    trigger {trigger} cleared{v}")
            }
            Event::TriggerAcknowledged {
                trigger, operator, ..
            } => {
                let by = operator
                    .as_deref()
                    .map(|o| format!(" by {o}"))
                    .unwrap_or_default();
                writeln!(out, "{now}    trigger {trigger} acknowledged{by}")
            }
            Event::TriggerUnknown { trigger, error } => {
                writeln!(out, "{now} ?? trigger {trigger} UNKNOWN: {error}")
            }
            Event::FaultInjected { by } => writeln!(out, "{now} !! fault injected by {by}"),
            Event::RehearsalFigures {
                fired_to_decision_ms,
                rollback_ms,
            } => {
                let ms = |v: &Option<u64>| {
                    v.map(|m| format_duration(std::time::Duration::from_millis(m)))
                        .unwrap_or_else(|| "-".into())
                };
                writeln!(
                    out,
                    "{now} == rehearsal: trigger fired to rollback decision {}, rollback took {}",
                    ms(fired_to_decision_ms),
                    ms(rollback_ms)
                )
            }
            Event::RollbackStarted { reason } => writeln!(out, "{now} << ROLLBACK started ({reason})"),
            Event::RollbackFinished { status } => writeln!(out, "{now} << rollback {status}"),
            Event::RunFinished {
                outcome,
                exit_code,
                reason,
            } => {
                let why = reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                writeln!(out, "{now} == run {} (exit {exit_code}){why}", outcome.words())
            }
        };
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

/// `HH:MM:SS.mmm` in UTC, as in the journal.
pub fn clock(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        d.subsec_millis()
    )
}

/// A line fit for a log reader: terminal escapes removed, control characters and invalid UTF-8
/// replaced. Plain text (nearly all output) is passed through untouched.
pub fn clean(line: &[u8]) -> Cow<'_, str> {
    if is_plain(line)
        && let Ok(s) = std::str::from_utf8(line)
    {
        return Cow::Borrowed(s);
    }
    // The 8-bit controls (U+0080–U+009F: CSI, OSC, DCS...) act like their 7-bit escapes on many
    // terminals; spelt as such (`ESC [` for U+009B) they are stripped the same way, whole.
    let seven_bit;
    let line = if memchr::memchr(0xc2, line).is_some() {
        seven_bit = c1_as_escapes(line);
        &seven_bit[..]
    } else {
        line
    };
    let stripped = strip_ansi_escapes::strip(line);
    let text = String::from_utf8_lossy(&stripped);
    Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// Appends every line of `body` (the last one may lack its newline) to `buf`, each after `prefix`.
///
/// Two million short lines make this the hot loop of a chatty step: short pieces are copied as
/// fixed-size blocks (inline moves) and the excess cut off, instead of a call to memcpy each.
fn prefix_lines(buf: &mut Vec<u8>, prefix: &[u8], body: &[u8]) {
    const P: usize = 64;
    const L: usize = 16;
    let mut pad = [0u8; P];
    let short_prefix = prefix.len() <= P;
    if short_prefix {
        pad[..prefix.len()].copy_from_slice(prefix);
    }
    let push_prefix = |buf: &mut Vec<u8>| {
        if short_prefix {
            let at = buf.len();
            buf.extend_from_slice(&pad);
            buf.truncate(at + prefix.len());
        } else {
            buf.extend_from_slice(prefix);
        }
    };
    let mut start = 0;
    for (i, &b) in body.iter().enumerate() {
        if b == b'\n' {
            push_prefix(buf);
            let len = i + 1 - start;
            match body.get(start..start + L) {
                Some(block) if len <= L => {
                    let at = buf.len();
                    let block: &[u8; L] = block.try_into().unwrap_or(&[0; L]);
                    buf.extend_from_slice(block);
                    buf.truncate(at + len);
                }
                _ => buf.extend_from_slice(&body[start..=i]),
            }
            start = i + 1;
        }
    }
    push_prefix(buf);
    buf.extend_from_slice(&body[start..]);
    buf.push(b'\n');
}

/// No control characters but newline and tab: none of C0, DEL, nor the UTF-8 form of a C1 control
/// (`C2 80`–`C2 9F`; any `C2` sends the line the slow way). Written without early exit so that it
/// vectorizes.
fn is_plain(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & (((b >= 0x20) & (b != 0x7f) & (b != 0xc2)) | (b == b'\n') | (b == b'\t'))
    })
}

/// Each UTF-8-encoded C1 control (`C2 80`–`C2 9F`) replaced by its 7-bit escape (`ESC` and the
/// byte minus 0x40: U+009B becomes `ESC [`).
fn c1_as_escapes(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] == 0xc2
            && let Some(&c) = line.get(i + 1)
            && (0x80..=0x9f).contains(&c)
        {
            out.extend_from_slice(&[0x1b, c - 0x40]);
            i += 2;
        } else {
            out.push(line[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_passes_plain_text_and_strips_escapes() {
        assert!(matches!(clean(b"plain line"), Cow::Borrowed("plain line")));
        assert_eq!(clean(b"\x1b[31mred\x1b[0m done"), "red done");
        assert_eq!(clean(b"bad \xff byte"), "bad \u{fffd} byte");
        assert_eq!(clean(b"nul\0here"), "nulhere");
        assert_eq!(clean(b"bell\x07"), "bell");
    }

    #[test]
    fn clean_strips_the_utf8_c1_controls_like_their_escapes() {
        // U+009B CSI: a colour, and an erase of the screen.
        assert_eq!(clean("\u{9b}31mred\u{9b}0m done".as_bytes()), "red done");
        assert_eq!(clean("a\u{9b}2Jb".as_bytes()), "ab");
        // U+009D OSC: a window title, ended by ST (U+009C) or BEL.
        assert_eq!(clean("x\u{9d}0;pwned\u{9c}y".as_bytes()), "xy");
        assert_eq!(clean("x\u{9d}0;pwned\x07y".as_bytes()), "xy");
        // Every other C1 control is gone too (those that open a string, like DCS, up to the ST
        // that ends it); text after them is kept, and so are the characters that share their
        // lead byte (`£`, `°`, `§`).
        for c in 0x80u32..=0x9f {
            let line = format!("a{}b{} £ ° §", char::from_u32(c).unwrap(), "\u{9c}");
            let out = clean(line.as_bytes());
            assert!(
                !out.chars().any(|ch| ('\u{80}'..='\u{9f}').contains(&ch)),
                "U+{c:04X} passed through: {out:?}"
            );
            assert!(out.ends_with(" £ ° §"), "U+{c:04X}: {out:?}");
        }
        assert!(matches!(clean("£ 5 °C".as_bytes()), Cow::Owned(s) if s == "£ 5 °C"));
    }

    #[test]
    fn every_line_gets_the_prefix() {
        let mut buf = Vec::new();
        let body = b"1\nlonger than sixteen bytes here\n\nlast";
        prefix_lines(&mut buf, b"T p/s | ", body);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "T p/s | 1\nT p/s | longer than sixteen bytes here\nT p/s | \nT p/s | last\n"
        );
        let mut buf = Vec::new();
        let long_prefix = "x".repeat(100);
        prefix_lines(&mut buf, long_prefix.as_bytes(), b"a\nb");
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            format!("{long_prefix}a\n{long_prefix}b\n")
        );
    }

    #[test]
    fn clock_is_utc() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(3_723_004);
        assert_eq!(clock(t), "01:02:03.004");
    }
}
