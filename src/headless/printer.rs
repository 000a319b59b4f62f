//! Turning the engine's updates into lines: step output as `TIME phase/step | line` (cleaned of
//! terminal escapes), and one line per journal event.

use std::io::Write;
use std::time::SystemTime;

use crate::duration::format_duration;
use crate::engine::StepRef;
use crate::journal::{Event, StepStatus};
use crate::runbook::{Runbook, Step, StepKind};
use crate::text::{clean, clock, is_plain};

pub(super) struct Printer<'a> {
    rb: &'a Runbook,
    last_phase: Option<(bool, usize)>,
    buf: Vec<u8>,
    /// Names of forward steps cancelled by a rollback before they started, shown as one line.
    cancelled: Vec<String>,
}

impl<'a> Printer<'a> {
    pub(super) fn new(rb: &'a Runbook) -> Printer<'a> {
        Printer {
            rb,
            last_phase: None,
            buf: Vec::new(),
            cancelled: Vec::new(),
        }
    }

    pub(super) fn step(&self, at: StepRef) -> &'a Step {
        &self.phases(at.rollback)[at.phase].steps[at.step]
    }

    fn phases(&self, rollback: bool) -> &'a [crate::runbook::Phase] {
        self.rb.phases_of(rollback)
    }

    pub(super) fn name(&self, at: StepRef) -> String {
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

    pub(super) fn output(&mut self, out: &mut impl Write, at: StepRef, when: SystemTime, bytes: &[u8]) {
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

    pub(super) fn event(&mut self, out: &mut impl Write, event: &Event) {
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
                    crate::journal::team::describe(event).unwrap_or_default()
                )
            }
            Event::WriteFailed { file, error } => writeln!(out, "{now} !! cannot write {file}: {error}"),
            e @ (Event::StoreBehind { .. }
            | Event::StoreCaughtUp { .. }
            | Event::StoreLeaseUnconfirmed { .. }
            | Event::StoreLeaseLost { .. }
            | Event::StoreLeaseRenewed { .. }
            | Event::StoreFenced { .. }) => {
                writeln!(out, "{now} !! {}", crate::store::describe(e).unwrap_or_default())
            }
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
                ..
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
            Event::NotifyFailed { .. } => {
                writeln!(out, "{now} !! {}", event.notify_words().unwrap_or_default())
            }
            Event::NotifySent { .. } | Event::NotifyRehearsed { .. } => {
                writeln!(out, "{now}    {}", event.notify_words().unwrap_or_default())
            }
            Event::RollbackStarted {
                reason,
                operator,
                note,
            } => {
                let by = operator
                    .as_deref()
                    .map(|o| format!(" by {o}"))
                    .unwrap_or_default();
                let why = note.as_deref().map(|n| format!(": {n}")).unwrap_or_default();
                writeln!(out, "{now} << ROLLBACK started ({reason}){by}{why}")
            }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
