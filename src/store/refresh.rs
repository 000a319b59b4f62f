//! A run folder here brought up to date from the store, when the store's copy of the run is
//! newer: the run went on on another host since this host last drove it (a takeover back). The
//! folder is rebuilt beside it (`restore`) and swapped in; a folder that holds as much as the
//! store, or more (lines not yet copied when this host's driver died), is kept as it is: the
//! store's last line is this folder's line of that number. A folder that went its own way (lines
//! journaled here after another host took the run over, which the store never took) is not lost
//! in the swap: it is kept in `STATE_DIR/superseded/`, and said.

use std::path::{Path, PathBuf};

use super::{Store, StoreError, connect};

/// Brings `run_dir` (`STATE_DIR/runs/RUN`) up to date with the store. Returns whether it was
/// rebuilt. The caller makes sure nobody drives the run here (it holds no lock on it).
pub async fn refresh(store: &Store, run_dir: &Path) -> Result<bool, StoreError> {
    let run_id = super::lease::run_id(run_dir);
    let client = store.client().await?;
    let sql = |e: tokio_postgres::Error| connect::explain(&store.config, &e);
    let stored: i64 = client
        .query_one(
            "SELECT coalesce(max(seq), 0) FROM events WHERE run_id = $1",
            &[&run_id],
        )
        .await
        .map_err(sql)?
        .get(0);
    if stored == 0 {
        return Ok(false);
    }
    let text = std::fs::read(run_dir.join("journal.jsonl")).unwrap_or_default();
    let here = super::whole_lines(&text);
    let n = here.len() as i64;
    // The store's line of the number of this folder's last line, and its own last line.
    let rows = client
        .query(
            "SELECT seq, line FROM events WHERE run_id = $1 AND seq IN ($2, $3)",
            &[&run_id, &n.min(stored), &stored],
        )
        .await
        .map_err(sql)?;
    let same = |seq: i64| {
        let theirs = rows
            .iter()
            .find(|r| r.get::<_, i64>(0) == seq)
            .map(|r| r.get::<_, &str>(1));
        let mine = usize::try_from(seq - 1).ok().and_then(|i| here.get(i));
        matches!((theirs, mine), (Some(t), Some(m)) if t.as_bytes() == *m)
    };
    if same(stored) {
        // As much as the store, or more (lines not yet copied): this folder is the run's.
        return Ok(false);
    }
    // Behind the store, or gone its own way: only the start of the store's journal is safe to drop.
    let behind = n == 0 || (n < stored && same(n));
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
    if behind || keep(run_dir, &old, n) {
        let _ = std::fs::remove_dir_all(&aside);
    }
    Ok(true)
}

/// Keeps `old`, this host's own folder of the run in `run_dir` (`lines` journal lines), in
/// `STATE_DIR/superseded/RUN-<unix time>`, and says where. False when it stays where it is (said).
fn keep(run_dir: &Path, old: &Path, lines: i64) -> bool {
    let run_id = super::lease::run_id(run_dir);
    let Some(state_dir) = run_dir.parent().and_then(Path::parent) else {
        return false;
    };
    let kept_in = state_dir.join("superseded");
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let to = kept_in.join(format!("{run_id}-{secs}"));
    match crate::files::create_folder(state_dir, &kept_in).and_then(|()| std::fs::rename(old, &to)) {
        Ok(()) => {
            crate::say!(
                "runbook: this host's own folder of {run_id} ({lines} journal lines, some of them never \
                 in the store: the run went on elsewhere meanwhile) is kept in {}",
                to.display()
            );
            true
        }
        Err(e) => {
            crate::say!(
                "runbook: this host's own folder of {run_id} stays in {} (cannot move it to {}: {e})",
                old.display(),
                to.display()
            );
            false
        }
    }
}
