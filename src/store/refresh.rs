//! A run folder here brought up to date from the store, when the store's copy of the run is
//! newer: the run went on on another host since this host last drove it (a takeover back). The
//! folder is rebuilt beside it (`restore`) and swapped in; a folder that holds as much as the
//! store, or more (lines not yet copied when this host's driver died), is kept as it is.

use std::path::{Path, PathBuf};

use super::{Store, StoreError, connect};

/// Brings `run_dir` (`STATE_DIR/runs/RUN`) up to date with the store. Returns whether it was
/// rebuilt. The caller makes sure nobody drives the run here (it holds no lock on it).
pub async fn refresh(store: &Store, run_dir: &Path) -> Result<bool, StoreError> {
    let run_id = super::lease::run_id(run_dir);
    let client = store.client().await?;
    let stored: i64 = client
        .query_one("SELECT count(*) FROM events WHERE run_id = $1", &[&run_id])
        .await
        .map_err(|e| connect::explain(&store.config, &e))?
        .get(0);
    let here = std::fs::read(run_dir.join("journal.jsonl"))
        .map(|b| b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count())
        .unwrap_or(0) as i64;
    if stored <= here {
        return Ok(false);
    }
    let io = |what: &Path, e: std::io::Error| {
        StoreError::Message(format!(
            "cannot bring {} up to date: {}: {e}",
            run_dir.display(),
            what.display()
        ))
    };
    let runs = run_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let aside = runs.join(format!(".incoming-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&aside);
    let fresh: PathBuf = super::restore::restore(store, &run_id, &aside).await?;
    let old = aside.join("before");
    std::fs::rename(run_dir, &old).map_err(|e| io(run_dir, e))?;
    if let Err(e) = std::fs::rename(&fresh, run_dir) {
        // Put the old folder back: never leave the run without one.
        let _ = std::fs::rename(&old, run_dir);
        return Err(io(&fresh, e));
    }
    let _ = std::fs::remove_dir_all(&aside);
    Ok(true)
}
