//! `runbook report JOURNAL`: a run's record as Markdown (or JSON), ready for a retrospective.
//!
//! The report is built in one pass over the journal (`build`) into plain data (`Report`), which is
//! then either rendered as Markdown (`markdown`) or serialized as JSON. Nothing here knows the
//! runbook itself: everything comes from the journal, so a report works long after the file changed.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{Event, Record};
use crate::duration::format_duration;
use crate::text::format_number;

/// Entry point of the `report` command; returns the exit status.
pub fn main(journal: &Path, format: &str, output: Option<&Path>) -> i32 {
    let path = match journal_path(journal) {
        Ok(p) => p,
        Err(e) => {
            crate::say!("runbook: {e}");
            return 2;
        }
    };
    let (records, torn) = match super::read(&path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            crate::say!("runbook: {e}");
            return 2;
        }
        Err(e) => {
            crate::say!("runbook: cannot read {}: {e}", path.display());
            return 2;
        }
    };
    if records.is_empty() {
        crate::say!("runbook: {}: the journal holds no events", path.display());
        return 2;
    }
    let report = build(&path.display().to_string(), &records, torn);
    let text = match format {
        "json" => match serde_json::to_string_pretty(&report) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => {
                crate::say!("runbook: cannot write the report as JSON: {e}");
                return 2;
            }
        },
        "markdown" | "md" => markdown(&report),
        other => {
            crate::say!("runbook: unknown report format `{other}`; use markdown or json");
            return 2;
        }
    };
    match output {
        Some(file) => match std::fs::write(file, text) {
            Ok(()) => 0,
            Err(e) => {
                crate::say!("runbook: cannot write {}: {e}", file.display());
                2
            }
        },
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => 0,
                // `runbook report J | head` is fine.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
                Err(e) => {
                    crate::say!("runbook: cannot write the report: {e}");
                    2
                }
            }
        }
    }
}

/// JOURNAL may be the journal file or its run folder.
fn journal_path(arg: &Path) -> Result<PathBuf, String> {
    match std::fs::metadata(arg) {
        Ok(m) if m.is_dir() => {
            let p = arg.join("journal.jsonl");
            if p.is_file() {
                Ok(p)
            } else {
                Err(format!(
                    "{}: no journal.jsonl in this folder; name a run folder (STATE_DIR/runs/...) or its journal.jsonl",
                    arg.display()
                ))
            }
        }
        Ok(_) => Ok(arg.to_path_buf()),
        Err(e) => Err(format!("cannot read {}: {e}", arg.display())),
    }
}

/// Everything the report says, as plain data; serialized as is for `--format json`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub journal: String,
    pub runbook: RunbookInfo,
    /// Everyone who appears in the journal: who started sessions, confirmed, noted or acknowledged.
    pub operators: Vec<String>,
    pub hosts: Vec<String>,
    pub start: Option<String>,
    /// The last `run_finished`, or the last event of an unfinished run.
    pub end: Option<String>,
    pub duration_ms: Option<u64>,
    pub sessions: Vec<Session>,
    pub outcome: OutcomeInfo,
    /// Forward steps, in the order they were first seen.
    pub steps: Vec<StepRow>,
    /// Forward steps a rollback cancelled before they ever started.
    pub cancelled_before_start: Vec<String>,
    pub rollback: Option<RollbackInfo>,
    pub notes: Vec<NoteRow>,
    pub triggers: Vec<TriggerRow>,
    pub metrics: BTreeMap<String, MetricSummary>,
    pub rehearsal: Option<Rehearsal>,
    /// Things the reader must know about the journal itself (a torn last line, a changed file).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RunbookInfo {
    pub id: Option<String>,
    pub title: Option<String>,
    pub file: Option<String>,
    pub sha256: Option<String>,
    pub mode: Option<String>,
    pub vars: BTreeMap<String, String>,
    /// Later sessions that ran a file with another hash.
    pub changed: Vec<FileChange>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    /// 1-based session number.
    pub session: usize,
    pub ts: String,
    pub file: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub start: String,
    pub mode: String,
    pub operator: String,
    pub host: String,
    pub pid: u32,
    pub end: Option<String>,
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct OutcomeInfo {
    /// False when the journal ends without a `run_finished` after its last `run_started`.
    pub finished: bool,
    /// A `run_finished` outcome, or "unfinished".
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    /// For an unfinished run: where it stopped.
    pub last_event: Option<LastEvent>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastEvent {
    pub ts: String,
    pub event: String,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct StepRow {
    pub phase: String,
    pub step: String,
    /// The last `step_finished`'s status, or "unfinished" when it started and never finished.
    pub status: String,
    /// The highest attempt seen (0: never started).
    pub attempts: u32,
    /// The first `step_started`.
    pub start: Option<String>,
    /// All attempts together.
    pub duration_ms: u64,
    pub by: Option<String>,
    pub reason: Option<String>,
    pub exit_code: Option<i32>,
    pub http_status: Option<u16>,
    /// From the last `step_finished` only: an old attempt's error is no longer the step's.
    pub error: Option<String>,
    pub log: Option<String>,
    /// The metric values on screen when the step was confirmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<BTreeMap<String, Option<f64>>>,
    /// Every `step_finished`, in order.
    pub history: Vec<AttemptRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRow {
    pub ts: String,
    pub attempt: u32,
    pub status: String,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RollbackInfo {
    pub reason: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    /// From `rollback_finished`; None while it never finished.
    pub status: Option<String>,
    pub duration_ms: Option<u64>,
    pub steps: Vec<StepRow>,
    /// Rollback steps cancelled before they started.
    pub cancelled_before_start: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoteRow {
    pub ts: String,
    pub operator: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TriggerRow {
    pub ts: String,
    /// The journal's event name: `trigger_fired`, ..., or `fault_injected`.
    pub event: String,
    pub trigger: Option<String>,
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct MetricSummary {
    /// Every `metrics_sampled` that mentioned the metric.
    pub samples: usize,
    /// Samples without a value (no data, or the source failed).
    pub no_data: usize,
    pub min: Option<f64>,
    pub median: Option<f64>,
    pub max: Option<f64>,
    /// The last value there was.
    pub last: Option<f64>,
    pub last_ts: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    pub fired_to_decision_ms: Option<u64>,
    pub rollback_ms: Option<u64>,
}

/// One metric's samples while the journal is read.
#[derive(Default)]
struct MetricAcc {
    values: Vec<f64>,
    samples: usize,
    no_data: usize,
    last: Option<f64>,
    last_ts: Option<String>,
    last_error: Option<String>,
}

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
    let mut rows: Vec<(bool, StepRow)> = Vec::new();
    let mut index: HashMap<(String, String, bool), usize> = HashMap::new();
    let mut metrics: HashMap<String, MetricAcc> = HashMap::new();
    let mut rollback: Option<RollbackInfo> = None;
    // The run_finished that followed the latest run_started, if any.
    let mut finished: Option<(String, String, i32, Option<String>)> = None;

    for rec in records {
        let ts = &rec.ts;
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
                    r.runbook.changed.push(FileChange {
                        session: r.sessions.len() + 1,
                        ts: ts.clone(),
                        file: file.clone(),
                        sha256: sha256.clone(),
                    });
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
                let row = row_for(&mut rows, &mut index, phase, step, *rb);
                if row.start.is_none() {
                    row.start = Some(ts.clone());
                }
                row.attempts = row.attempts.max(*attempt);
                // In flight: stays so unless a step_finished follows.
                row.status = "unfinished".into();
            }
            Event::StepFinished(f) => {
                if let Some(by) = &f.by {
                    person(&mut r, by);
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
                row.history.push(AttemptRow {
                    ts: ts.clone(),
                    attempt: f.attempt,
                    status: f.status.as_str().to_string(),
                    duration_ms: f.duration_ms,
                    exit_code: f.exit_code,
                    http_status: f.http_status,
                    error: f.error.clone(),
                });
            }
            Event::WriteFailed { file, error } => r.notes.push(NoteRow {
                ts: ts.clone(),
                operator: "runbook".into(),
                text: format!("could not write {file}: {error}"),
            }),
            Event::Approval { operator, .. } | Event::Handover { to: operator, .. } => {
                person(&mut r, operator);
                r.notes.push(NoteRow {
                    ts: ts.clone(),
                    operator: operator.clone(),
                    text: crate::team::describe(&rec.event).unwrap_or_default(),
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
                for (id, v) in values {
                    let acc = match metrics.get_mut(id) {
                        Some(a) => a,
                        None => metrics.entry(id.clone()).or_default(),
                    };
                    acc.samples += 1;
                    match v {
                        Some(x) if x.is_finite() => {
                            acc.values.push(*x);
                            acc.last = Some(*x);
                            acc.last_ts = Some(ts.clone());
                        }
                        _ => acc.no_data += 1,
                    }
                }
                for (id, e) in errors {
                    let acc = match metrics.get_mut(id) {
                        Some(a) => a,
                        None => metrics.entry(id.clone()).or_default(),
                    };
                    if !values.contains_key(id) {
                        acc.samples += 1;
                        acc.no_data += 1;
                    }
                    acc.last_error = Some(e.clone());
                }
            }
            Event::TriggerPending { trigger, value } => {
                r.triggers
                    .push(trigger_row(ts, "trigger_pending", Some(trigger), *value))
            }
            Event::TriggerFired {
                trigger,
                value,
                reason,
            } => {
                let mut t = trigger_row(ts, "trigger_fired", Some(trigger), *value);
                t.reason.clone_from(reason);
                r.triggers.push(t);
            }
            Event::TriggerCleared { trigger, value } => {
                r.triggers
                    .push(trigger_row(ts, "trigger_cleared", Some(trigger), *value))
            }
            Event::TriggerAcknowledged {
                trigger,
                value,
                operator,
            } => {
                if let Some(o) = operator {
                    person(&mut r, o);
                }
                let mut t = trigger_row(ts, "trigger_acknowledged", Some(trigger), *value);
                t.operator.clone_from(operator);
                r.triggers.push(t);
            }
            Event::TriggerUnknown { trigger, error } => {
                let mut t = trigger_row(ts, "trigger_unknown", Some(trigger), None);
                t.error = Some(error.clone());
                r.triggers.push(t);
            }
            Event::FaultInjected { by } => {
                let mut t = trigger_row(ts, "fault_injected", None, None);
                t.by = Some(by.clone());
                r.triggers.push(t);
            }
            Event::RollbackStarted { reason } => {
                let rb = rollback.get_or_insert_with(Default::default);
                if rb.start.is_none() {
                    rb.start = Some(ts.clone());
                    rb.reason = Some(reason.clone());
                }
            }
            Event::RollbackFinished { status } => {
                let rb = rollback.get_or_insert_with(Default::default);
                rb.end = Some(ts.clone());
                rb.status = Some(status.clone());
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
                finished = Some((
                    ts.clone(),
                    outcome.as_str().to_string(),
                    *exit_code,
                    reason.clone(),
                ));
            }
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
    for (_, row) in &mut rows {
        if row.status.is_empty() {
            row.status = "unfinished".into();
        }
    }

    for (rb, row) in rows {
        let never_started = row.start.is_none() && row.attempts == 0 && row.status == "cancelled";
        if rb {
            let info = rollback.get_or_insert_with(Default::default);
            if never_started {
                info.cancelled_before_start
                    .push(format!("{}/{}", row.phase, row.step));
            } else {
                info.steps.push(row);
            }
        } else if never_started {
            r.cancelled_before_start
                .push(format!("{}/{}", row.phase, row.step));
        } else {
            r.steps.push(row);
        }
    }
    if let Some(rb) = &mut rollback {
        rb.duration_ms = span_ms(rb.start.as_deref(), rb.end.as_deref());
    }
    r.rollback = rollback;

    for (id, mut acc) in metrics {
        acc.values.sort_unstable_by(f64::total_cmp);
        let v = &acc.values;
        let median = match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        };
        r.metrics.insert(
            id,
            MetricSummary {
                samples: acc.samples,
                no_data: acc.no_data,
                min: v.first().copied(),
                median,
                max: v.last().copied(),
                last: acc.last,
                last_ts: acc.last_ts,
                last_error: acc.last_error,
            },
        );
    }

    for c in &r.runbook.changed {
        r.warnings.push(format!(
            "session {} ran another version of the runbook file ({}, sha256 {}) than the first session (sha256 {})",
            c.session,
            c.file,
            c.sha256,
            r.runbook.sha256.as_deref().unwrap_or("?")
        ));
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
    // Looked up by reference first: most events are for a step already seen.
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

fn trigger_row(ts: &str, event: &str, trigger: Option<&String>, value: Option<f64>) -> TriggerRow {
    TriggerRow {
        ts: ts.to_string(),
        event: event.to_string(),
        trigger: trigger.cloned(),
        value,
        reason: None,
        operator: None,
        error: None,
        by: None,
    }
}

fn event_name(e: &Event) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.get("event").and_then(|n| n.as_str()).map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// One line about an event, for "where did the run stop".
fn summarize(e: &Event) -> String {
    match e {
        Event::RunStarted {
            mode, operator, host, ..
        } => format!("{mode} started by {operator}@{host}"),
        Event::StepStarted {
            phase,
            step,
            attempt,
            rollback,
        } => format!(
            "{}{phase}/{step} started (attempt {attempt})",
            if *rollback { "rollback step " } else { "" }
        ),
        Event::StepFinished(f) => format!(
            "{}{}/{} {} (attempt {})",
            if f.rollback { "rollback step " } else { "" },
            f.phase,
            f.step,
            f.status.as_str(),
            f.attempt
        ),
        Event::Note { operator, .. } => format!("note by {operator}"),
        Event::WriteFailed { file, .. } => format!("{file} could not be written"),
        Event::MetricsSampled { .. } => "metrics sampled".into(),
        Event::TriggerPending { trigger, .. } => format!("trigger {trigger} pending"),
        Event::TriggerFired { trigger, .. } => format!("trigger {trigger} fired"),
        Event::TriggerCleared { trigger, .. } => format!("trigger {trigger} cleared"),
        Event::TriggerAcknowledged { trigger, .. } => format!("trigger {trigger} acknowledged"),
        Event::TriggerUnknown { trigger, .. } => format!("trigger {trigger} unknown"),
        Event::FaultInjected { by } => format!("fault injected by {by}"),
        Event::RollbackStarted { reason } => format!("rollback started ({reason})"),
        Event::RollbackFinished { status } => format!("rollback {status}"),
        Event::RehearsalFigures { .. } => "rehearsal figures".into(),
        Event::RunFinished { outcome, .. } => format!("run {}", outcome.as_str()),
        Event::Approval { .. } | Event::Handover { .. } => crate::team::describe(e).unwrap_or_default(),
    }
}

fn parse_ts(ts: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(ts).ok()
}

fn span_ms(from: Option<&str>, to: Option<&str>) -> Option<u64> {
    let (a, b) = (parse_ts(from?)?, parse_ts(to?)?);
    Some(b.duration_since(a).unwrap_or(Duration::ZERO).as_millis() as u64)
}

fn human_ms(ms: u64) -> String {
    format_duration(Duration::from_millis(ms))
}

fn num(x: Option<f64>) -> String {
    x.map(format_number).unwrap_or_else(|| "—".into())
}

/// A Markdown table cell: pipes escaped, line breaks flattened.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = false;
    for c in s.chars() {
        match c {
            '|' => {
                out.push_str("\\|");
                last_space = false;
            }
            '\n' | '\r' => {
                if !last_space {
                    out.push(' ');
                }
                last_space = true;
            }
            c => {
                out.push(c);
                last_space = c == ' ';
            }
        }
    }
    out
}

/// Inline code when possible (the text holds no backtick or line break), else the text escaped.
/// Used in lists, never in tables, where a pipe in a code span would need escaping.
fn code(s: &str) -> String {
    if s.contains(['`', '\n', '\r']) {
        cell(s)
    } else {
        format!("`{s}`")
    }
}

/// `HH:MM:SS` of an RFC 3339 time; the date is added when it is not the run's first day.
fn clock(ts: &str, day: &str) -> String {
    let b = ts.as_bytes();
    if b.len() >= 19 && b[10] == b'T' && ts.is_char_boundary(10) && ts.is_char_boundary(19) {
        if &ts[..10] == day {
            ts[11..19].to_string()
        } else {
            format!("{} {}", &ts[..10], &ts[11..19])
        }
    } else {
        ts.to_string()
    }
}

fn or_dash(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => cell(s),
        _ => "—".into(),
    }
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut m = String::with_capacity(4096 + 160 * (r.steps.len() + r.triggers.len() + r.notes.len()));
    let day = r
        .start
        .as_deref()
        .map(|s| s.get(..10).unwrap_or(""))
        .unwrap_or("");
    let title = r.runbook.title.as_deref().unwrap_or("(unknown runbook)");
    let rehearsal = r.runbook.mode.as_deref() == Some("rehearse");
    let kind = if rehearsal {
        "Rehearsal report"
    } else {
        "Run report"
    };
    let _ = writeln!(m, "# {kind}: {}\n", title.replace(['\n', '\r'], " "));

    let id = r.runbook.id.as_deref().map(code).unwrap_or_else(|| "—".into());
    let _ = writeln!(m, "- **Runbook:** {} ({id})", cell(title));
    let _ = writeln!(
        m,
        "- **File:** {}",
        r.runbook.file.as_deref().map(code).unwrap_or("—".into())
    );
    let _ = writeln!(
        m,
        "- **SHA-256:** {}",
        r.runbook.sha256.as_deref().map(code).unwrap_or("—".into())
    );
    if let Some(mode) = &r.runbook.mode {
        let _ = writeln!(m, "- **Mode:** {}", cell(mode));
    }
    if !r.runbook.vars.is_empty() {
        let vars: Vec<String> = r
            .runbook
            .vars
            .iter()
            .map(|(k, v)| code(&format!("{k}={v}")))
            .collect();
        let _ = writeln!(m, "- **Variables:** {}", vars.join(", "));
    }
    let people = if r.operators.is_empty() {
        "—".to_string()
    } else {
        r.operators.iter().map(|o| cell(o)).collect::<Vec<_>>().join(", ")
    };
    let _ = writeln!(m, "- **Operators:** {people}");
    let hosts = if r.hosts.is_empty() {
        "—".to_string()
    } else {
        r.hosts.iter().map(|h| cell(h)).collect::<Vec<_>>().join(", ")
    };
    let _ = writeln!(
        m,
        "- **Host{}:** {hosts}",
        if r.hosts.len() > 1 { "s" } else { "" }
    );
    let _ = writeln!(m, "- **Start:** {}", or_dash(r.start.as_deref()));
    if r.outcome.finished {
        let _ = writeln!(m, "- **End:** {}", or_dash(r.end.as_deref()));
    } else if let Some(e) = &r.outcome.last_event {
        let _ = writeln!(
            m,
            "- **Last event:** {} (`{}`: {})",
            cell(&e.ts),
            e.event,
            cell(&e.summary)
        );
    }
    let across = if r.sessions.len() > 1 {
        format!(" (across {} sessions)", r.sessions.len())
    } else {
        String::new()
    };
    let _ = writeln!(
        m,
        "- **Duration:** {}{across}",
        r.duration_ms.map(human_ms).unwrap_or("—".into())
    );
    if r.outcome.finished {
        let why = r
            .outcome
            .reason
            .as_deref()
            .map(|w| format!(": {}", cell(w)))
            .unwrap_or_default();
        let _ = writeln!(
            m,
            "- **Outcome:** **{}** (exit {}){why}",
            r.outcome.outcome.as_deref().unwrap_or("?"),
            r.outcome.exit_code.map(|c| c.to_string()).unwrap_or("?".into())
        );
    } else {
        let _ = writeln!(
            m,
            "- **Outcome:** **unfinished**: the journal has no `run_finished` after the last `run_started` \
             (the run crashed, was killed, or is still going); `runbook resume` can carry it on"
        );
    }
    for w in &r.warnings {
        let _ = writeln!(m, "\n> **Note:** {}", cell(w));
    }

    // Sessions
    let _ = writeln!(m, "\n## Sessions\n");
    if r.sessions.is_empty() {
        let _ = writeln!(m, "No `run_started` in the journal.");
    } else {
        let _ = writeln!(m, "| # | Start | Mode | Operator@host | End | Outcome |");
        let _ = writeln!(m, "|---|---|---|---|---|---|");
        for (i, s) in r.sessions.iter().enumerate() {
            let outcome = match (&s.outcome, s.exit_code) {
                (Some(o), Some(c)) => {
                    let why = s
                        .reason
                        .as_deref()
                        .map(|w| format!(": {}", cell(w)))
                        .unwrap_or_default();
                    format!("{o} (exit {c}){why}")
                }
                _ if i + 1 == r.sessions.len() && !r.outcome.finished => "unfinished".into(),
                _ => "ended without run_finished".into(),
            };
            let _ = writeln!(
                m,
                "| {} | {} | {} | {}@{} | {} | {} |",
                i + 1,
                cell(&s.start),
                cell(&s.mode),
                cell(&s.operator),
                cell(&s.host),
                or_dash(s.end.as_deref()),
                outcome
            );
        }
    }

    // Steps
    let _ = writeln!(m, "\n## Steps\n");
    if r.steps.is_empty() {
        let _ = writeln!(m, "No step started.");
    } else {
        step_table(&mut m, &r.steps, day);
    }
    if !r.cancelled_before_start.is_empty() {
        let why = if r.rollback.is_some() {
            "by the rollback "
        } else {
            ""
        };
        let names: Vec<String> = r.cancelled_before_start.iter().map(|n| code(n)).collect();
        let _ = writeln!(
            m,
            "\nCancelled {why}before they started ({}): {}",
            names.len(),
            names.join(", ")
        );
    }

    // Rollback
    if let Some(rb) = &r.rollback {
        let _ = writeln!(m, "\n## Rollback\n");
        let _ = writeln!(m, "- **Reason:** {}", or_dash(rb.reason.as_deref()));
        let _ = writeln!(m, "- **Started:** {}", or_dash(rb.start.as_deref()));
        let _ = writeln!(m, "- **Finished:** {}", or_dash(rb.end.as_deref()));
        let status = match &rb.status {
            Some(s) => format!("**{}**", cell(s)),
            None => "**unfinished** (no `rollback_finished`)".into(),
        };
        let _ = writeln!(m, "- **Status:** {status}");
        let _ = writeln!(
            m,
            "- **Duration:** {}",
            rb.duration_ms.map(human_ms).unwrap_or("—".into())
        );
        if rb.steps.is_empty() {
            let _ = writeln!(m, "\nNo rollback step started.");
        } else {
            let _ = writeln!(m);
            step_table(&mut m, &rb.steps, day);
        }
        if !rb.cancelled_before_start.is_empty() {
            let names: Vec<String> = rb.cancelled_before_start.iter().map(|n| code(n)).collect();
            let _ = writeln!(
                m,
                "\nRollback steps cancelled before they started ({}): {}",
                names.len(),
                names.join(", ")
            );
        }
    }

    // Notes
    let _ = writeln!(m, "\n## Notes\n");
    if r.notes.is_empty() {
        let _ = writeln!(m, "No notes.");
    } else {
        let _ = writeln!(m, "| Time (UTC) | Operator | Note |");
        let _ = writeln!(m, "|---|---|---|");
        for n in &r.notes {
            let _ = writeln!(
                m,
                "| {} | {} | {} |",
                clock(&n.ts, day),
                cell(&n.operator),
                cell(&n.text)
            );
        }
    }

    // Triggers
    let _ = writeln!(m, "\n## Triggers\n");
    if r.triggers.is_empty() {
        let _ = writeln!(m, "No trigger events.");
    } else {
        let _ = writeln!(m, "| Time (UTC) | Trigger | Event | Value | Details |");
        let _ = writeln!(m, "|---|---|---|---|---|");
        for t in &r.triggers {
            let what = t
                .event
                .strip_prefix("trigger_")
                .unwrap_or(&t.event)
                .replace('_', " ");
            let mut details = Vec::new();
            if let Some(x) = &t.reason {
                details.push(cell(x));
            }
            if let Some(x) = &t.operator {
                details.push(format!("by {}", cell(x)));
            }
            if let Some(x) = &t.error {
                details.push(cell(x));
            }
            if let Some(x) = &t.by {
                details.push(format!("by {}", cell(x)));
            }
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} |",
                clock(&t.ts, day),
                or_dash(t.trigger.as_deref()),
                what,
                num(t.value),
                if details.is_empty() {
                    "—".to_string()
                } else {
                    details.join("; ")
                }
            );
        }
    }

    // Metrics
    let _ = writeln!(m, "\n## Metrics\n");
    if r.metrics.is_empty() {
        let _ = writeln!(m, "No metrics were sampled.");
    } else {
        let _ = writeln!(
            m,
            "Raw values as sampled (the journal records no units).\n\n\
             | Metric | Samples | No data | Min | Median | Max | Last | Last error |"
        );
        let _ = writeln!(m, "|---|---|---|---|---|---|---|---|");
        for (id, s) in &r.metrics {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(id),
                s.samples,
                s.no_data,
                num(s.min),
                num(s.median),
                num(s.max),
                num(s.last),
                or_dash(s.last_error.as_deref())
            );
        }
    }

    // Rehearsal
    if let Some(h) = &r.rehearsal {
        let _ = writeln!(m, "\n## Rehearsal\n");
        let _ = writeln!(
            m,
            "- **From the trigger firing to the rollback decision:** {}",
            h.fired_to_decision_ms.map(human_ms).unwrap_or("—".into())
        );
        let _ = writeln!(
            m,
            "- **Rollback procedure:** {}",
            h.rollback_ms.map(human_ms).unwrap_or("—".into())
        );
    }
    m
}

fn step_table(m: &mut String, rows: &[StepRow], day: &str) {
    let _ = writeln!(
        m,
        "| Phase | Step | Status | Attempts | Start (UTC) | Duration | Confirmed by | Reason | Exit | Error |"
    );
    let _ = writeln!(m, "|---|---|---|---|---|---|---|---|---|---|");
    for s in rows {
        let exit = match (s.exit_code, s.http_status) {
            (Some(c), Some(h)) => format!("{c} / HTTP {h}"),
            (Some(c), None) => c.to_string(),
            (None, Some(h)) => format!("HTTP {h}"),
            (None, None) => "—".into(),
        };
        // What went wrong stands out.
        let status = if matches!(s.status.as_str(), "succeeded" | "confirmed" | "skipped") {
            s.status.clone()
        } else {
            format!("**{}**", s.status)
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&s.phase),
            cell(&s.step),
            status,
            attempts(s),
            s.start.as_deref().map(|t| clock(t, day)).unwrap_or("—".into()),
            if s.history.is_empty() {
                "—".into()
            } else {
                human_ms(s.duration_ms)
            },
            or_dash(s.by.as_deref()),
            or_dash(s.reason.as_deref()),
            exit,
            or_dash(s.error.as_deref())
        );
    }
}

/// The highest attempt, and what became of the earlier ones when they did not succeed:
/// `2 (1 failed)`.
fn attempts(s: &StepRow) -> String {
    let earlier = &s.history[..s.history.len().saturating_sub(1)];
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for a in earlier {
        let st = match a.status.as_str() {
            "succeeded" | "confirmed" | "skipped" => continue,
            "timed_out" => "timed out",
            other => other,
        };
        match counts.iter_mut().find(|(k, _)| *k == st) {
            Some((_, n)) => *n += 1,
            None => counts.push((st, 1)),
        }
    }
    if counts.is_empty() {
        return s.attempts.to_string();
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!("{} ({})", s.attempts, parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain() {
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(42.0), "42");
        assert_eq!(format_number(1.5), "1.5");
        assert_eq!(format_number(123.456789), "123.4568");
        assert_eq!(format_number(0.002), "0.002");
        assert_eq!(format_number(0.00123456), "0.001235");
        assert_eq!(format_number(-0.25), "-0.25");
        assert_eq!(format_number(1e9), "1000000000");
    }

    #[test]
    fn cells_are_escaped() {
        assert_eq!(cell("a|b\nc\r\nd"), "a\\|b c d");
    }

    #[test]
    fn clock_shows_the_date_only_on_another_day() {
        assert_eq!(clock("2026-11-26T21:07:27.790Z", "2026-11-26"), "21:07:27");
        assert_eq!(
            clock("2026-11-27T01:00:00.000Z", "2026-11-26"),
            "2026-11-27 01:00:00"
        );
    }
}
