//! The journal: one vocabulary of events (`Event`), written as JSON Lines to
//! `STATE_DIR/runs/<UTC time>-<runbook id>/journal.jsonl`, each line fsynced before the run moves on.
//!
//! Owns the run folder layout (journal, `logs/`) and timestamps. The engine decides what happens;
//! this module only records it. Secrets are masked here too, as a last line of defence.
//!
//! - `event`: the events and their statuses, and masking secrets in them;
//! - `writer`: the open journal, its run lock, appending a line;
//! - `reader`: reading a journal back (`line`: one line into a record, quickly);
//! - `resume` and `report`: what is made of a journal read back;
//! - `snapshot`: the plan snapshot `run_started` carries, so that a reader needs no runbook file.

mod event;
mod line;
mod reader;
pub mod report;
pub mod resume;
pub mod snapshot;
pub mod store_event;
pub mod team;
mod writer;

use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use crate::files::{create_named_run_dir, create_private_file};
pub use event::{Event, Outcome, RollbackStatus, StepFinished, StepStatus};
pub use reader::{MAX_JOURNAL_BYTES, parse, read};
pub use writer::{Appender, Journal, OpenError, RunLock, lock_run};

/// A journal line: the time and the event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub ts: String,
    #[serde(flatten)]
    pub event: Event,
}

/// RFC 3339, UTC, milliseconds: `2026-11-26T20:45:12.123Z`.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Where runs are recorded when `--state-dir` is not given.
pub fn default_state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("runbook");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/runbook")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        assert_eq!(timestamp(t), "2023-11-14T22:13:20.123Z");
    }
}
