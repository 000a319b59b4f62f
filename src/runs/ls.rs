//! `runbook ls`: the runs of a state dir as aligned text (two lines a run, to fit 80 columns) or
//! JSON; with a shared store, the store's runs and the state dir's that it does not have, each
//! said to be from one or the other. `list` and `shared::list` compute; this module only prints.

use std::io::IsTerminal;
use std::path::Path;

use unicode_width::UnicodeWidthStr;

use super::{Liveness, RunSummary, Standing};

/// `runbook ls [--format json] [--store URL]`: prints the runs; returns the exit status. A store
/// that is set and cannot be read is an error (exit 2), never an empty list.
pub fn main(state_dir: &Path, format: &str, store: Option<&str>) -> i32 {
    let stored = match read_store(store) {
        Ok(s) => s,
        Err(e) => {
            crate::say!("runbook: {e}");
            return 2;
        }
    };
    let listed = match &stored {
        Some(stored) => super::shared::list(stored, state_dir),
        None => super::list(state_dir),
    };
    let runs = match listed {
        Ok(r) => r,
        Err(e) => {
            crate::say!("runbook: cannot list {}: {e}", state_dir.join("runs").display());
            return 2;
        }
    };
    if format == "json" {
        match serde_json::to_string_pretty(&runs) {
            Ok(text) => crate::out!("{text}"),
            Err(e) => {
                crate::say!("runbook: {e}");
                return 1;
            }
        }
        return 0;
    }
    if runs.is_empty() {
        let store = stored.map_or_else(String::new, |_| " nor in the shared store".into());
        crate::say!("runbook: no runs in {}{store}", state_dir.join("runs").display());
        return 0;
    }
    crate::out_inline!("{}", text(&runs, width(), stored.is_some()));
    0
}

/// The shared store's runs, when a store is set (`None`: none is).
fn read_store(flag: Option<&str>) -> Result<Option<Vec<crate::store::watch::StoredRun>>, String> {
    // Resolved first: without a store, `ls` starts no runtime.
    if crate::store::resolve(flag).map_err(|e| e.to_string())?.is_none() {
        return Ok(None);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    runtime.block_on(async {
        let Some(store) = super::shared::open(flag).await? else {
            return Ok(None);
        };
        let origin = store.config.origin.clone();
        super::shared::fetch(&store)
            .await
            .map(Some)
            .map_err(|e| format!("{e} (the store is set by {origin})"))
    })
}

/// The width to fit: the terminal's, or `COLUMNS`; none for a pipe (a script gets every word).
fn width() -> Option<usize> {
    if std::io::stdout().is_terminal()
        && let Ok((w, _)) = crossterm::terminal::size()
    {
        return Some(w as usize);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&w| w > 0)
}

/// The driver's state in one word: `live`, `STALE` (it is gone and the run did not end), `ended`,
/// `unknown` (on another host).
pub fn state_word(r: &RunSummary) -> &'static str {
    let finished = matches!(r.standing, Standing::Finished { .. });
    match r.driver.as_ref().map(|d| d.alive) {
        _ if r.stale => "STALE",
        Some(Liveness::Alive) if !finished => "live",
        Some(Liveness::Unknown) if !finished => "unknown",
        _ if finished => "ended",
        _ => "unknown",
    }
}

/// `11-29 12:10` from an RFC 3339 time (the run id has the year).
fn short_time(ts: &str) -> String {
    match (ts.get(5..10), ts.get(11..16)) {
        (Some(d), Some(t)) => format!("{d} {t}"),
        _ => ts.to_string(),
    }
}

/// The table: a line of columns per run (id, start, driver, its state), then the runbook's title
/// and where the run stands, then what to type when nobody drives it. `shared`: a store is used,
/// and a column says where each run was found (`store`, or `local`: only in this state dir).
pub fn text(runs: &[RunSummary], width: Option<usize>, shared: bool) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let mut row = vec![
                r.id.clone(),
                r.started.as_deref().map(short_time).unwrap_or_else(|| "?".into()),
                r.driver.as_ref().map_or_else(
                    || "nobody".to_string(),
                    |d| format!("{}@{} pid {}", d.operator, d.host, d.pid),
                ),
                state_word(r).to_string(),
            ];
            if shared {
                row.push(
                    match r.source {
                        super::Found::Store => "store",
                        super::Found::Local => "local",
                    }
                    .to_string(),
                );
            }
            row
        })
        .collect();
    let mut head = vec![
        "RUN".to_string(),
        "STARTED".to_string(),
        "DRIVER".to_string(),
        "STATE".to_string(),
    ];
    if shared {
        head.push("IN".to_string());
    }
    let mut widths = vec![0usize; head.len()];
    for row in rows.iter().chain(std::iter::once(&head)) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.width());
        }
    }
    let line = |row: &Vec<String>| {
        let mut s = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            s.push_str(cell);
            if i + 1 < row.len() {
                s.push_str(&" ".repeat(w - cell.width() + 2));
            }
        }
        s.trim_end().to_string()
    };
    let fit = |s: String| match width {
        Some(w) => crate::text::fit(&s, w),
        None => s,
    };
    let mut out = String::new();
    out.push_str(&fit(line(&head)));
    out.push('\n');
    for (r, row) in runs.iter().zip(&rows) {
        out.push_str(&fit(line(row)));
        out.push('\n');
        let title = match (&r.title, &r.error) {
            (Some(t), _) => t.as_str(),
            (None, Some(_)) => "?",
            (None, None) => "(no run_started in its journal yet)",
        };
        let about = match &r.error {
            Some(e) => format!("  {title}: {e}"),
            None => format!("  {title}: {}", r.text),
        };
        out.push_str(&fit(about));
        out.push('\n');
        if let Some(next) = &r.next {
            let what = if next.starts_with("runbook takeover") {
                "take over"
            } else {
                "go on"
            };
            out.push_str(&fit(format!("  {what}: {next}")));
            out.push('\n');
        }
    }
    out
}
