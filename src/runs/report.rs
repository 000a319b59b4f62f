//! Which journal `runbook report RUN` reads: a journal file or a run folder as it is; a run id
//! (or a unique part of one), this state dir's run when it has the folder — a local folder wins
//! — else, with a shared store set, the store's copy of the run (SPEC §8, §9: `report` works
//! across hosts). The store's copy is its journal lines and the ends of the failed attempts'
//! logs, read with the queries `attach` follows a run with (`store::watch`) and made into the
//! report by the same code as a journal file (`journal::report`), so that the report is the one
//! the driver's host gives.
//!
//! The report itself is `journal::report`'s; printing it is the command line's.

use std::collections::HashMap;
use std::path::Path;

use tokio_postgres::Client;

use crate::journal::report::{self, LOG_END_BYTES, LogEnd, Report};
use crate::store::{Store, connect, watch};

/// The report of the run `arg` names. The error is the whole message for the user (exit 2).
pub fn load(arg: &Path, state_dir: &Path, store_flag: Option<&str>) -> Result<Report, String> {
    let by_id = arg.components().count() == 1 && !arg.is_absolute();
    // A path that exists, or a name that cannot be a run's id: the file or folder it names.
    if arg.symlink_metadata().is_ok() || !by_id {
        return report::load(arg).map_err(|e| e.to_string());
    }
    let local = state_dir.join("runs").join(arg);
    if local.join("journal.jsonl").is_file() {
        return report::load(&local).map_err(|e| e.to_string());
    }
    // Resolved first: without a store no runtime is started.
    let Some(config) = crate::store::resolve(store_flag).map_err(|e| e.to_string())? else {
        return Err(format!(
            "{}: no such journal, run folder, nor run in {} (a run of another host is read from \
             the shared store: --store URL, RUNBOOK_STORE, or `store` in config.toml)",
            arg.display(),
            state_dir.join("runs").display()
        ));
    };
    let origin = config.origin.clone();
    let name = arg.display().to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    runtime.block_on(async {
        let Some(store) = super::shared::open(store_flag).await? else {
            return Err(format!("{name}: no shared store is set"));
        };
        let set_by = |e: String| format!("{e} (the store is set by {origin})");
        // One connection for it all: the one that opened the store.
        let client = store.opened_client().await.map_err(|e| set_by(e.to_string()))?;
        let sql = |e: tokio_postgres::Error| set_by(connect::explain(&store.config, &e).to_string());
        // The run's id, else a unique part of one (as `attach` takes it).
        let id = match watch::run(&client, &name).await.map_err(sql)? {
            Some(_) => Some(name.clone()),
            None => super::shared::find(&store, Some(&name)).await.map_err(set_by)?,
        };
        let Some(id) = id else {
            return Err(set_by(format!(
                "{name}: no such run here ({}) nor in the shared store {}",
                state_dir.join("runs").display(),
                store.config.display()
            )));
        };
        from_store(&store, &client, &id).await.map_err(set_by)
    })
}

/// The report of run `id` from the store's copy of its journal and logs.
async fn from_store(store: &Store, client: &Client, id: &str) -> Result<Report, String> {
    let sql = |e: tokio_postgres::Error| connect::explain(&store.config, &e).to_string();
    let lines = watch::lines_after(client, id, 0).await.map_err(sql)?;
    // The lines as the journal file holds them: numbered from 1, one a line.
    let mut text = String::new();
    for (i, (seq, line)) in lines.iter().enumerate() {
        if *seq != i as i64 + 1 {
            return Err(format!(
                "the shared store {} lacks event {} of run {id} (its driver has not copied it yet?)",
                store.config.display(),
                i + 1
            ));
        }
        text.push_str(line);
        text.push('\n');
    }
    let name = format!("{id} in the shared store {}", store.config.display());
    let mut report = report::from_text(&name, &text).map_err(|e| e.to_string())?;
    let mut ends: HashMap<String, LogEnd> = HashMap::new();
    for log in report::failed_logs(&report) {
        let len = watch::log_len(client, id, &log).await.map_err(sql)?;
        let from = len.saturating_sub(LOG_END_BYTES);
        let bytes = watch::log_from(client, id, &log, from).await.map_err(sql)?;
        ends.insert(log, LogEnd { bytes, cut: from > 0 });
    }
    report::add_log_tails(&mut report, |log| {
        ends.get(log)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "not in the shared store"))
    });
    Ok(report)
}
