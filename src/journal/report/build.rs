//! Building a `Report` from a journal's records, in one pass, with nothing but the records: titles,
//! kinds and units come from the plan snapshot of `run_started` (the latest session's first, so
//! that a step added by a resumed session has its title too), ids where there is none.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use super::metrics::Metrics;
use super::phases::{PhaseTime, phase_time, phases};
use super::plans::{Plans, reason_text};
use super::timeline::{event_name, summarize, trigger_event};
use super::{
    FileChange, LastEvent, NoteRow, OutcomeInfo, Rehearsal, Report, RollbackInfo, Session, StepRow,
    TimelineRow,
};
use crate::journal::snapshot;
use crate::journal::{Event, Record, StepStatus};

/// Builds the report from a journal's records, in one pass.
pub fn build(journal: &str, records: &[Record], torn: Option<String>) -> Report {
    let mut r = Report {
        journal: journal.to_string(),
        ..Default::default()
    };
    if let Some(t) = torn {
        r.warnings.push(format!(
            "the journal's last line is incomplete (a crash mid-write?) and was left out, \
             so this report may miss the run's last event ({t})"
        ));
    }
    let mut plans = Plans::default();
    let mut rows: Vec<(bool, StepRow)> = Vec::new();
    let mut index: HashMap<(String, String, bool), usize> = HashMap::new();
    let mut metrics = Metrics::default();
    // The values last sampled, for the timeline.
    let mut latest: BTreeMap<String, Option<f64>> = BTreeMap::new();
    let mut rollback: Option<RollbackInfo> = None;
    // Phases by (rollback, id): first start, last end.
    let mut phase_times: Vec<PhaseTime> = Vec::new();
    // The run_finished that followed the latest run_started, if any.
    let mut finished: Option<(String, String, i32, Option<String>)> = None;

    for rec in records {
        let ts = &rec.ts;
        let at = |what: &str, event: &str, latest: &BTreeMap<String, Option<f64>>| TimelineRow {
            ts: ts.clone(),
            event: event.to_string(),
            what: what.to_string(),
            subject: None,
            title: None,
            value: None,
            unit: None,
            by: None,
            detail: None,
            metrics: latest.clone(),
        };
        match &rec.event {
            Event::RunStarted {
                runbook,
                title,
                file,
                sha256,
                operator,
                host,
                mode,
                vars,
                pid,
                plan,
            } => {
                if r.sessions.is_empty() {
                    r.runbook.id = Some(runbook.clone());
                    r.runbook.title = Some(title.clone());
                    r.runbook.file = Some(file.clone());
                    r.runbook.sha256 = Some(sha256.clone());
                    r.runbook.mode = Some(mode.clone());
                    r.runbook.vars = vars.clone();
                    r.start = Some(ts.clone());
                } else if r.runbook.sha256.as_deref() != Some(sha256.as_str()) {
                    let differences = match (plans.0.first(), plan) {
                        (Some(old), Some(new)) => snapshot::differences(old, new),
                        _ => Vec::new(),
                    };
                    r.runbook.changed.push(FileChange {
                        session: r.sessions.len() + 1,
                        ts: ts.clone(),
                        file: file.clone(),
                        sha256: sha256.clone(),
                        differences,
                    });
                }
                if let Some(p) = plan {
                    plans.0.push((**p).clone());
                }
                person(&mut r, operator);
                if !r.hosts.contains(host) {
                    r.hosts.push(host.clone());
                }
                r.sessions.push(Session {
                    start: ts.clone(),
                    mode: mode.clone(),
                    operator: operator.clone(),
                    host: host.clone(),
                    pid: *pid,
                    end: None,
                    outcome: None,
                    exit_code: None,
                    reason: None,
                });
                finished = None;
            }
            Event::StepStarted {
                phase,
                step,
                attempt,
                rollback: rb,
            } => {
                phase_time(&mut phase_times, *rb, phase, ts, false);
                let row = row_for(&mut rows, &mut index, phase, step, *rb);
                if row.start.is_none() {
                    row.start = Some(ts.clone());
                }
                row.attempts = row.attempts.max(*attempt);
                // In flight: stays so unless a step_finished follows.
                row.status = "unfinished".into();
                if *attempt > 1 {
                    let mut t = at("retried", "step_started", &latest);
                    t.subject = Some(format!("{phase}/{step}"));
                    t.title = plans.step_title(*rb, phase, step).map(|(_, title, _)| title);
                    t.detail = Some(format!("attempt {attempt}"));
                    r.timeline.push(t);
                }
            }
            Event::StepFinished(f) => {
                if let Some(by) = &f.by {
                    person(&mut r, by);
                }
                if f.attempt > 0 {
                    phase_time(&mut phase_times, f.rollback, &f.phase, ts, true);
                }
                let decision = match f.status {
                    StepStatus::Confirmed => Some("confirmed"),
                    StepStatus::Skipped => Some("skipped"),
                    StepStatus::Succeeded if f.reason.is_some() => Some("marked done"),
                    StepStatus::Failed => Some("failed"),
                    StepStatus::TimedOut => Some("timed out"),
                    _ => None,
                };
                if let Some(what) = decision {
                    let mut t = at(what, "step_finished", &latest);
                    t.subject = Some(format!("{}/{}", f.phase, f.step));
                    t.title = plans
                        .step_title(f.rollback, &f.phase, &f.step)
                        .map(|(_, title, _)| title);
                    t.by.clone_from(&f.by);
                    t.detail = f
                        .reason
                        .clone()
                        .or_else(|| f.error.clone())
                        .or_else(|| f.exit_code.map(|c| format!("exit {c}")));
                    if let Some(m) = f.metrics.as_ref().filter(|m| !m.is_empty()) {
                        t.metrics.clone_from(m);
                    }
                    r.timeline.push(t);
                }
                let row = row_for(&mut rows, &mut index, &f.phase, &f.step, f.rollback);
                row.status = f.status.as_str().to_string();
                row.attempts = row.attempts.max(f.attempt);
                row.duration_ms += f.duration_ms;
                if f.by.is_some() {
                    row.by.clone_from(&f.by);
                }
                if f.reason.is_some() {
                    row.reason.clone_from(&f.reason);
                }
                if f.exit_code.is_some() {
                    row.exit_code = f.exit_code;
                }
                if f.http_status.is_some() {
                    row.http_status = f.http_status;
                }
                if f.log.is_some() {
                    row.log.clone_from(&f.log);
                }
                if f.metrics.as_ref().is_some_and(|m| !m.is_empty()) {
                    row.metrics.clone_from(&f.metrics);
                }
                row.error.clone_from(&f.error);
                row.history.push(super::AttemptRow {
                    ts: ts.clone(),
                    attempt: f.attempt,
                    status: f.status.as_str().to_string(),
                    duration_ms: f.duration_ms,
                    exit_code: f.exit_code,
                    http_status: f.http_status,
                    error: f.error.clone(),
                    log: f.log.clone(),
                    log_tail: Vec::new(),
                });
            }
            Event::WriteFailed { file, error } => r.notes.push(NoteRow {
                ts: ts.clone(),
                operator: "runbook".into(),
                text: format!("could not write {file}: {error}"),
            }),
            e @ (Event::StoreBehind { .. }
            | Event::StoreCaughtUp { .. }
            | Event::StoreLeaseUnconfirmed { .. }
            | Event::StoreLeaseLost { .. }
            | Event::StoreLeaseRenewed { .. }
            | Event::StoreFenced { .. }) => r.notes.push(NoteRow {
                ts: ts.clone(),
                operator: "runbook".into(),
                text: crate::journal::store_event::describe(e).unwrap_or_default(),
            }),
            Event::Approval { operator, .. } | Event::Handover { to: operator, .. } => {
                person(&mut r, operator);
                r.notes.push(NoteRow {
                    ts: ts.clone(),
                    operator: operator.clone(),
                    text: crate::journal::team::describe(&rec.event).unwrap_or_default(),
                });
            }
            Event::Note { text, operator } => {
                person(&mut r, operator);
                r.notes.push(NoteRow {
                    ts: ts.clone(),
                    operator: operator.clone(),
                    text: text.clone(),
                });
            }
            Event::MetricsSampled { values, errors } => {
                metrics.sampled(values, errors, ts, &mut latest);
            }
            Event::TriggerPending { trigger, value } => trigger_event(
                &mut r,
                &plans,
                &latest,
                ts,
                "trigger_pending",
                Some(trigger),
                *value,
                |_| {},
            ),
            Event::TriggerFired {
                trigger,
                value,
                reason,
                ..
            } => trigger_event(
                &mut r,
                &plans,
                &latest,
                ts,
                "trigger_fired",
                Some(trigger),
                *value,
                |t| t.reason.clone_from(reason),
            ),
            Event::TriggerCleared { trigger, value } => trigger_event(
                &mut r,
                &plans,
                &latest,
                ts,
                "trigger_cleared",
                Some(trigger),
                *value,
                |_| {},
            ),
            Event::TriggerAcknowledged {
                trigger,
                value,
                operator,
            } => {
                if let Some(o) = operator {
                    person(&mut r, o);
                }
                trigger_event(
                    &mut r,
                    &plans,
                    &latest,
                    ts,
                    "trigger_acknowledged",
                    Some(trigger),
                    *value,
                    |t| t.operator.clone_from(operator),
                );
            }
            Event::TriggerUnknown { trigger, error } => {
                trigger_event(
                    &mut r,
                    &plans,
                    &latest,
                    ts,
                    "trigger_unknown",
                    Some(trigger),
                    None,
                    |t| t.error = Some(error.clone()),
                );
            }
            Event::FaultInjected { by } => {
                trigger_event(&mut r, &plans, &latest, ts, "fault_injected", None, None, |t| {
                    t.by = Some(by.clone())
                });
            }
            Event::RollbackStarted {
                reason,
                operator,
                note,
            } => {
                if let Some(o) = operator {
                    person(&mut r, o);
                }
                let rb = rollback.get_or_insert_with(Default::default);
                if rb.start.is_none() {
                    rb.start = Some(ts.clone());
                    rb.reason = Some(reason.clone());
                    rb.reason_text = Some(reason_text(reason, &plans));
                    rb.operator.clone_from(operator);
                    rb.note.clone_from(note);
                }
                let mut t = at("rollback started", "rollback_started", &latest);
                t.by.clone_from(operator);
                t.detail = Some(match note {
                    Some(n) => format!("{}: {n}", reason_text(reason, &plans)),
                    None => reason_text(reason, &plans),
                });
                r.timeline.push(t);
            }
            Event::RollbackFinished { status } => {
                let rb = rollback.get_or_insert_with(Default::default);
                rb.end = Some(ts.clone());
                rb.status = Some(status.to_string());
                r.timeline
                    .push(at(&format!("rollback {status}"), "rollback_finished", &latest));
            }
            Event::RehearsalFigures {
                fired_to_decision_ms,
                rollback_ms,
            } => {
                r.rehearsal = Some(Rehearsal {
                    fired_to_decision_ms: *fired_to_decision_ms,
                    rollback_ms: *rollback_ms,
                });
            }
            Event::RunFinished {
                outcome,
                exit_code,
                reason,
            } => {
                if let Some(s) = r.sessions.last_mut().filter(|s| s.end.is_none()) {
                    s.end = Some(ts.clone());
                    s.outcome = Some(outcome.as_str().to_string());
                    s.exit_code = Some(*exit_code);
                    s.reason.clone_from(reason);
                }
                let mut t = at(&format!("run {}", outcome.words()), "run_finished", &latest);
                t.detail.clone_from(reason);
                r.timeline.push(t);
                finished = Some((
                    ts.clone(),
                    outcome.as_str().to_string(),
                    *exit_code,
                    reason.clone(),
                ));
            }
            // A notification that did not go out belongs in the timeline; one that did does not.
            e @ Event::NotifyFailed { .. } => {
                let what = e.notify_words().unwrap_or_default();
                r.timeline.push(at(&what, "notify_failed", &latest));
            }
            Event::NotifySent { .. } | Event::NotifyRehearsed { .. } => {}
        }
    }

    if r.start.is_none() {
        r.start = records.first().map(|f| f.ts.clone());
    }
    match (finished, records.last()) {
        (Some((ts, outcome, exit_code, reason)), _) => {
            r.end = Some(ts);
            r.outcome = OutcomeInfo {
                finished: true,
                outcome: Some(outcome),
                exit_code: Some(exit_code),
                reason,
                last_event: None,
            };
        }
        (None, None) => {}
        (None, Some(last)) => {
            r.end = Some(last.ts.clone());
            r.outcome = OutcomeInfo {
                finished: false,
                outcome: Some("unfinished".into()),
                last_event: Some(LastEvent {
                    ts: last.ts.clone(),
                    event: event_name(&last.event),
                    summary: summarize(&last.event),
                }),
                ..Default::default()
            };
        }
    }
    r.duration_ms = span_ms(r.start.as_deref(), r.end.as_deref());
    for (rb, row) in &mut rows {
        if row.status.is_empty() {
            row.status = "unfinished".into();
        }
        if let Some((phase_title, title, kind)) = plans.step_title(*rb, &row.phase, &row.step) {
            row.phase_title = Some(phase_title);
            row.title = Some(title);
            row.kind = Some(kind);
        }
    }
    r.phases = phases(&phase_times, &rows, &plans);
    for (rb, row) in rows {
        let never_started = row.start.is_none() && row.attempts == 0 && row.status == "cancelled";
        let name = format!("{}/{}", row.phase, row.step);
        if rb {
            let info = rollback.get_or_insert_with(Default::default);
            if never_started {
                if let Some(t) = row.title {
                    info.cancelled_titles.insert(name.clone(), t);
                }
                info.cancelled_before_start.push(name);
            } else {
                info.steps.push(row);
            }
        } else if never_started {
            if let Some(t) = row.title {
                r.cancelled_titles.insert(name.clone(), t);
            }
            r.cancelled_before_start.push(name);
        } else {
            r.steps.push(row);
        }
    }
    if let Some(rb) = &mut rollback {
        rb.duration_ms = span_ms(rb.start.as_deref(), rb.end.as_deref());
        rb.title = plans.0.iter().rev().find_map(|p| p.rollback_title.clone());
    }
    r.rollback = rollback;

    r.metrics = metrics.summaries(&plans);

    for c in &r.runbook.changed {
        let mut w = format!(
            "session {} ran another version of the runbook file ({}, sha256 {}) than the first session (sha256 {})",
            c.session,
            c.file,
            c.sha256,
            r.runbook.sha256.as_deref().unwrap_or("?")
        );
        if !c.differences.is_empty() {
            w.push_str(": ");
            w.push_str(&c.differences.join("; "));
        }
        r.warnings.push(w);
    }
    if r.sessions.is_empty() {
        r.warnings
            .push("the journal has no run_started event: the runbook and operator are unknown".into());
    }
    r
}

/// Adds someone to the operators, once ("auto" is not someone).
fn person(r: &mut Report, name: &str) {
    if name != "auto" && !name.is_empty() && !r.operators.iter().any(|o| o == name) {
        r.operators.push(name.to_string());
    }
}

fn row_for<'a>(
    rows: &'a mut Vec<(bool, StepRow)>,
    index: &mut HashMap<(String, String, bool), usize>,
    phase: &str,
    step: &str,
    rollback: bool,
) -> &'a mut StepRow {
    let key = (phase.to_string(), step.to_string(), rollback);
    let i = *index.entry(key).or_insert_with(|| {
        rows.push((
            rollback,
            StepRow {
                phase: phase.to_string(),
                step: step.to_string(),
                ..Default::default()
            },
        ));
        rows.len() - 1
    });
    &mut rows[i].1
}

fn parse_ts(ts: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(ts).ok()
}

pub(super) fn span_ms(from: Option<&str>, to: Option<&str>) -> Option<u64> {
    let (a, b) = (parse_ts(from?)?, parse_ts(to?)?);
    Some(b.duration_since(a).unwrap_or(Duration::ZERO).as_millis() as u64)
}
