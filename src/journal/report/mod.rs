//! `runbook report JOURNAL`: a run's record as plain data (`Report`), ready for a retrospective.
//!
//! - `build`: one pass over the journal's records into a `Report` (pure); the plan snapshot in
//!   `run_started` gives titles, kinds and units (`plans`), so the runbook file is never read.
//!   Journals without a snapshot fall back to ids and raw values. `phases`: each phase's times;
//!   `metrics`: each metric's summary; `timeline`: trigger rows and the words for an event.
//! - `markdown`: the `Report` as Markdown, its values written by `cells`. `--format json` is the
//!   `Report` serialized as is, so both carry the same content.
//!
//! `load` reads the journal (and the tails of failed attempts' logs beside it); the command line
//! (`cli`) chooses the format and owns stdout, files and exit codes.

mod build;
mod cells;
mod markdown;
mod metrics;
mod phases;
mod plans;
mod timeline;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use build::build;
pub use cells::cell;
pub use markdown::markdown;

/// How many lines of a failed attempt's log the report shows.
pub const LOG_TAIL_LINES: usize = 10;

/// Why no report could be made. Every one is the reader's mistake or the disk's: exit 2.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Journal(String),
}

/// Reads the journal at `arg` (the file, or its run folder) and builds its report, with the last
/// lines of every failed attempt's log.
pub fn load(arg: &Path) -> Result<Report, ReportError> {
    let path = journal_path(arg).map_err(ReportError::Journal)?;
    let (records, torn) = match super::read(&path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(ReportError::Journal(e.to_string()));
        }
        Err(e) => {
            return Err(ReportError::Journal(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    if records.is_empty() {
        return Err(ReportError::Journal(format!(
            "{}: the journal holds no events",
            path.display()
        )));
    }
    let mut report = build(&path.display().to_string(), &records, torn);
    let run_dir = path.parent().unwrap_or(Path::new("."));
    add_log_tails(&mut report, |log| log_end(&run_dir.join(log)));
    Ok(report)
}

/// The report of a journal given as its text (the shared store's copy of a run's journal),
/// read by the same rules as a journal file; `name` says where it was read. Without the log
/// tails: `failed_logs` says which logs they come from, `add_log_tails` puts them in.
pub fn from_text(name: &str, text: &str) -> Result<Report, ReportError> {
    let (records, torn) = super::parse(text, name).map_err(|e| ReportError::Journal(e.to_string()))?;
    if records.is_empty() {
        return Err(ReportError::Journal(format!(
            "{name}: the journal holds no events"
        )));
    }
    Ok(build(name, &records, torn))
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

/// The most of a log's end that is read for its last lines.
pub const LOG_END_BYTES: u64 = 64 * 1024;

/// The end of a log: its last `LOG_END_BYTES` at most, and whether its start was left out.
#[derive(Debug, Clone)]
pub struct LogEnd {
    pub bytes: Vec<u8>,
    pub cut: bool,
}

/// The logs (relative to the run folder) whose last lines the report shows: those of the failed
/// attempts, each once.
pub fn failed_logs(report: &Report) -> Vec<String> {
    let mut logs: Vec<String> = attempt_rows(report)
        .filter(|a| a.failed())
        .filter_map(|a| a.log.clone())
        .collect();
    logs.sort();
    logs.dedup();
    logs
}

fn attempt_rows(report: &Report) -> impl Iterator<Item = &AttemptRow> {
    report
        .steps
        .iter()
        .chain(report.rollback.iter().flat_map(|r| r.steps.iter()))
        .flat_map(|row| row.history.iter())
}

/// The last lines of each failed attempt's log, from `end_of` (the run folder's file, or the
/// store's copy). Logs are masked when they are written (secrets never reach them); escapes and
/// control characters are removed here.
pub fn add_log_tails(report: &mut Report, mut end_of: impl FnMut(&str) -> std::io::Result<LogEnd>) {
    let rows = report
        .steps
        .iter_mut()
        .chain(report.rollback.iter_mut().flat_map(|r| r.steps.iter_mut()));
    for row in rows {
        for a in &mut row.history {
            if !a.failed() {
                continue;
            }
            let Some(log) = &a.log else { continue };
            a.log_tail = match end_of(log) {
                Ok(end) => log_tail(&end, LOG_TAIL_LINES),
                Err(e) => vec![format!("(the log cannot be read: {e})")],
            };
        }
    }
}

/// The end of the log file at `path`. Only the end of a large log is read.
fn log_end(path: &Path) -> std::io::Result<LogEnd> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let from = len.saturating_sub(LOG_END_BYTES);
    f.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    f.take(LOG_END_BYTES).read_to_end(&mut bytes)?;
    Ok(LogEnd { bytes, cut: from > 0 })
}

/// The last `n` lines of a log's end, cleaned for reading.
fn log_tail(end: &LogEnd, n: usize) -> Vec<String> {
    let mut lines: Vec<&[u8]> = end.bytes.split(|&b| b == b'\n').collect();
    if end.cut && lines.len() > 1 {
        // The first line read is cut: drop it.
        lines.remove(0);
    }
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let start = lines.len().saturating_sub(n);
    lines[start..].iter().map(|l| clean_line(l)).collect()
}

/// A log line fit for a report: a `\r` progress line in its last state, tabs expanded, then
/// cleaned as the front ends clean output (escapes removed, control characters replaced).
fn clean_line(line: &[u8]) -> String {
    // The last state of a `\r` progress line.
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let last = line.rsplit(|&b| b == b'\r').next().unwrap_or(b"");
    // Tabs are expanded to the next multiple of 8.
    let mut expanded = Vec::with_capacity(last.len());
    let mut column = 0;
    for &b in last {
        if b == b'\t' {
            let n = 8 - column % 8;
            expanded.extend(std::iter::repeat_n(b' ', n));
            column += n;
        } else {
            expanded.push(b);
            // UTF-8 continuation bytes do not take a column.
            if b & 0xc0 != 0x80 {
                column += 1;
            }
        }
    }
    crate::text::clean(&expanded).into_owned()
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
    /// Every phase that started (forward, then rollback), with its duration.
    pub phases: Vec<PhaseRow>,
    /// Forward steps, in the order they were first seen.
    pub steps: Vec<StepRow>,
    /// Forward steps a rollback cancelled before they ever started.
    pub cancelled_before_start: Vec<String>,
    /// Their titles as shown in the run (from the plan snapshot), by `phase/step`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub cancelled_titles: BTreeMap<String, String>,
    pub rollback: Option<RollbackInfo>,
    pub notes: Vec<NoteRow>,
    /// Trigger events as journaled (also in `timeline`).
    pub triggers: Vec<TriggerRow>,
    /// Triggers and decisions in order, each with the metric values of that moment.
    pub timeline: Vec<TimelineRow>,
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
    /// What differs from the plan the first session recorded (when both recorded one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<String>,
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
pub struct PhaseRow {
    pub id: String,
    /// From the plan snapshot; `None` for journals without one.
    pub title: Option<String>,
    pub rollback: bool,
    /// The first `step_started` of the phase.
    pub start: Option<String>,
    /// The last `step_finished` of the phase.
    pub end: Option<String>,
    pub duration_ms: Option<u64>,
    /// `succeeded` (every step done), `failed`, `cancelled` or `unfinished`.
    pub status: String,
    /// Steps of the phase that started.
    pub steps: usize,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct StepRow {
    pub phase: String,
    pub step: String,
    /// The phase's and the step's titles as shown in the run (from the plan snapshot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `run`, `manual`, `watch` or `http`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The last `step_finished`'s status, or "unfinished" when it started and never finished.
    pub status: String,
    /// The highest attempt seen (0: never started).
    pub attempts: u32,
    /// The first `step_started`.
    pub start: Option<String>,
    /// All attempts together.
    pub duration_ms: u64,
    /// Who confirmed it, skipped it or marked it done ("auto" under `--yes`).
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
    /// The attempt's log, relative to the run folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// A failed attempt's last log lines.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

impl AttemptRow {
    /// Failed or timed out: its log is worth reading.
    pub fn failed(&self) -> bool {
        matches!(self.status.as_str(), "failed" | "timed_out")
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RollbackInfo {
    /// As journaled: `operator`, `trigger:<id>` or `step:<phase>/<step>`.
    pub reason: Option<String>,
    /// The reason in words, with titles where the journal has them.
    pub reason_text: Option<String>,
    /// The operator who called for it, when one did.
    pub operator: Option<String>,
    /// Their words for why, when they gave any.
    pub note: Option<String>,
    /// The rollback procedure's title.
    pub title: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    /// From `rollback_finished`; None while it never finished.
    pub status: Option<String>,
    pub duration_ms: Option<u64>,
    pub steps: Vec<StepRow>,
    /// Rollback steps cancelled before they started.
    pub cancelled_before_start: Vec<String>,
    /// Their titles as shown in the run, by `phase/step`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub cancelled_titles: BTreeMap<String, String>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub value: Option<f64>,
    /// The unit of `value` (its metric's): `percent`, `seconds` or `number`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// One moment of the timeline: a trigger's change, or a decision (a go-ahead, a skip, a retry,
/// an acknowledgement, the rollback), with the metric values last sampled before it.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineRow {
    pub ts: String,
    /// The journal event behind it (`trigger_fired`, `step_finished`, `rollback_started`, ...).
    pub event: String,
    /// What happened, in words: `fired`, `skipped`, `retried`, `rollback started`, ...
    pub what: String,
    /// The trigger, or the step (`phase/step`), it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The subject's title, from the plan snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The trigger's value at that moment, in `unit`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Who decided (an operator, or "auto").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why, or what went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Every metric's value at that moment (`null`: no data).
    pub metrics: BTreeMap<String, Option<f64>>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct MetricSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `percent` (a ratio, shown ×100), `seconds` or `number`; absent in old journals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_cleaned() {
        assert_eq!(clean_line(b"\x1b[31merror\x1b[0m: boom"), "error: boom");
        assert_eq!(
            clean_line(b"progress 10%\rprogress 50%\rprogress 100%"),
            "progress 100%"
        );
        assert_eq!(clean_line(b"tab\there"), "tab     here");
    }

    #[test]
    fn a_log_tail_is_its_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        let tail = log_tail(&log_end(&p).unwrap(), 3);
        assert_eq!(tail, ["line 28", "line 29", "line 30"]);
        std::fs::write(&p, "only\n").unwrap();
        assert_eq!(log_tail(&log_end(&p).unwrap(), 3), ["only"]);
        // A log larger than what is read: its first, cut, line is left out.
        let big: String = (1..=20_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, big).unwrap();
        let end = log_end(&p).unwrap();
        assert!(end.cut && end.bytes.len() as u64 == LOG_END_BYTES);
        assert_eq!(log_tail(&end, 1), ["line 20000"]);
    }
}
