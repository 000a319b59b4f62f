//! A run folder rebuilt from the store, for `runbook resume RUN` on a host that does not have it
//! (the bastion that drove it is gone): `journal.jsonl` from `events` (in `seq` order) and each
//! step log from `log_chunks` (in offset order), in `STATE_DIR/runs/RUN`, with the journal's
//! private files. Then the run is resumed as any other.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{Store, StoreError, connect};

/// Rebuilds `STATE_DIR/runs/<run_id>` from the store. The folder must not exist yet.
pub async fn restore(store: &Store, run_id: &str, state_dir: &Path) -> Result<PathBuf, StoreError> {
    let cfg = &store.config;
    let at = cfg.display();
    let client = store.client().await?;
    let sql = |e: tokio_postgres::Error| connect::explain(cfg, &e);
    let found = client
        .query_opt("SELECT 1 FROM runs WHERE run_id = $1", &[&run_id])
        .await
        .map_err(sql)?;
    if found.is_none() {
        return Err(StoreError::Message(format!(
            "{run_id}: no such run here ({}) nor in the store {at}",
            state_dir.join("runs").display()
        )));
    }
    let lines = client
        .query(
            "SELECT seq, line FROM events WHERE run_id = $1 ORDER BY seq",
            &[&run_id],
        )
        .await
        .map_err(sql)?;
    let io =
        |what: &str, e: std::io::Error| StoreError::Message(format!("cannot rebuild the run in {what}: {e}"));
    let run_dir = crate::journal::create_named_run_dir(state_dir, run_id)
        .map_err(|e| io(&state_dir.join("runs").join(run_id).display().to_string(), e))?;
    let mut text = String::new();
    for (i, row) in lines.iter().enumerate() {
        let seq: i64 = row.get(0);
        if seq != i as i64 + 1 {
            return Err(StoreError::Message(format!(
                "the store {at} lacks event {} of run {run_id}: it cannot be rebuilt",
                i + 1
            )));
        }
        text.push_str(row.get::<_, &str>(1));
        text.push('\n');
    }
    write_file(&run_dir.join("journal.jsonl"), text.as_bytes()).map_err(|e| io("journal.jsonl", e))?;
    let chunks = client
        .query(
            "SELECT log, \"offset\", data FROM log_chunks WHERE run_id = $1 ORDER BY log, \"offset\"",
            &[&run_id],
        )
        .await
        .map_err(sql)?;
    let mut current: Option<(String, std::fs::File, i64)> = None;
    for row in &chunks {
        let log: String = row.get(0);
        let offset: i64 = row.get(1);
        let data: &[u8] = row.get(2);
        // Only paths of the form logs/NAME are ours; anything else is not written.
        let Some(name) = log
            .strip_prefix("logs/")
            .filter(|n| !n.contains('/') && !n.starts_with('.'))
        else {
            continue;
        };
        if current.as_ref().is_none_or(|(l, _, _)| *l != log) {
            let file = crate::journal::create_private_file(&run_dir.join("logs").join(name))
                .map_err(|e| io(&log, e))?;
            current = Some((log.clone(), file, 0));
        }
        if let Some((_, file, end)) = current.as_mut() {
            if offset != *end {
                // A gap cannot happen with chunks written in order; keep what is whole.
                continue;
            }
            file.write_all(data).map_err(|e| io(&log, e))?;
            *end += data.len() as i64;
        }
    }
    for (_, file, _) in current.iter() {
        let _ = file.sync_all();
    }
    Ok(run_dir)
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = crate::journal::create_private_file(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
