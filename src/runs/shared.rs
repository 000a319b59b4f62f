//! The runs of the shared store (SPEC §9) as a watcher on any host sees them: the store's runs,
//! each summarised from its journal lines through the same `standing` as a run folder, with its
//! driver taken from its lease (alive while the lease is held and not expired by the store's
//! clock; on this host its pid is looked at too) and what it waits for from other operators from
//! the lease row too (`waiting`: no driver is asked), beside the runs of the state dir that the
//! store does not have. Finding the run `attach` names, in the store.
//!
//! Reading the store is `crate::store::watch`'s; this module says what the rows mean.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Driver, Liveness, RunSummary};
use crate::journal::Record;
use crate::store::lease::Holder;
use crate::store::watch::{self, StoredRun};
use crate::store::{Store, StoreError, connect};

/// The driver's lease, as `ls --format json` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaseSummary {
    /// Bumped by every new driver (a resume, a takeover).
    pub epoch: i64,
    /// How long it holds yet, by the store's clock (negative: it expired, or was released).
    pub expires_in_ms: i64,
}

/// The store the settings name (`--store`, `RUNBOOK_STORE`, `config.toml`, as `run` resolves
/// it), connected and its schema checked; `None` without one. The error names the store and
/// where it was set.
pub async fn open(flag: Option<&str>) -> Result<Option<Store>, String> {
    let Some(config) = crate::store::resolve(flag).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let origin = config.origin.clone();
    Store::open(config)
        .await
        .map(Some)
        .map_err(|e| format!("{e} (the store is set by {origin})"))
}

/// The driver a lease names: alive while the lease holds (a driver on this host must also still
/// be running), gone once it expired or was released.
pub fn lease_driver(h: &Holder) -> Driver {
    let d = &h.driver;
    let pid = u32::try_from(d.pid).unwrap_or(0);
    let here = d.host == crate::identity::host();
    let alive = if h.expires_in <= 0.0 || (here && !super::runbook_alive(pid)) {
        Liveness::Gone
    } else {
        Liveness::Alive
    };
    Driver {
        operator: d.operator.clone(),
        host: d.host.clone(),
        pid,
        alive,
    }
}

/// Journal lines read as records; the first line that is not one is said (and skipped).
pub fn records_of(run_id: &str, lines: &[String]) -> (Vec<Record>, Option<String>) {
    let mut error = None;
    let mut records = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Record>(line) {
            Ok(r) => records.push(r),
            Err(e) if error.is_none() => {
                error = Some(format!(
                    "{run_id}: event {} in the store cannot be read: {e}",
                    i + 1
                ));
            }
            Err(_) => {}
        }
    }
    (records, error)
}

/// The folder of run `id` in this state dir, if it has one.
fn local_dir(state_dir: &Path, id: &str) -> Option<PathBuf> {
    let dir = state_dir.join("runs").join(id);
    dir.join("journal.jsonl").is_file().then_some(dir)
}

/// One run of the store, as `ls` shows it.
pub fn summarize(run: &StoredRun, state_dir: &Path) -> RunSummary {
    let (records, error) = records_of(&run.run_id, &run.lines);
    let driver = match &run.lease {
        Some(h) => Some(lease_driver(h)),
        // Registered, never leased (a run that died at its very start): who started it.
        None => super::started_by(&records).map(|(operator, host, pid)| Driver {
            alive: super::liveness(&host, pid),
            operator,
            host,
            pid,
        }),
    };
    let dir = local_dir(state_dir, &run.run_id);
    let mut s = super::summary(
        run.run_id.clone(),
        dir.as_deref(),
        &records,
        error,
        driver,
        super::Awaited::Lease(run.waiting.clone()),
    );
    s.lease = run.lease.as_ref().map(|h| LeaseSummary {
        epoch: h.epoch,
        expires_in_ms: (h.expires_in * 1000.0).round() as i64,
    });
    s.runbook.get_or_insert_with(|| run.runbook.clone());
    s.title.get_or_insert_with(|| run.title.clone());
    s
}

/// Every run of the store (with the lines `ls` needs).
pub async fn fetch(store: &Store) -> Result<Vec<StoredRun>, StoreError> {
    let client = store.client().await?;
    watch::runs(&client)
        .await
        .map_err(|e| connect::explain(&store.config, &e))
}

/// The store's runs, then the state dir's runs that the store does not have, by start.
pub fn list(stored: &[StoredRun], state_dir: &Path) -> std::io::Result<Vec<RunSummary>> {
    let mut out: Vec<RunSummary> = stored.iter().map(|r| summarize(r, state_dir)).collect();
    let known: HashSet<String> = stored.iter().map(|r| r.run_id.clone()).collect();
    out.extend(super::list_except(state_dir, &known)?);
    out.sort_by(|a, b| (&a.started, &a.id).cmp(&(&b.started, &b.id)));
    Ok(out)
}

/// The store's run `name` names (its id, or a unique part of it); without a name, the latest
/// live one. `Ok(None)`: the store has no such run (it may be a local one).
pub async fn find(store: &Store, name: Option<&str>) -> Result<Option<String>, String> {
    let client = store.client().await.map_err(|e| e.to_string())?;
    let sql = |e: tokio_postgres::Error| connect::explain(&store.config, &e).to_string();
    let Some(name) = name else {
        // The latest run whose lease holds.
        let row = client
            .query_opt(
                "SELECT r.run_id FROM runs r JOIN leases l USING (run_id)
                 WHERE l.expires_at > now() ORDER BY r.created_at DESC, r.run_id DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(sql)?;
        return Ok(row.map(|r| r.get(0)));
    };
    if watch::run(&client, name).await.map_err(sql)?.is_some() {
        return Ok(Some(name.to_string()));
    }
    let ids = watch::ids_like(&client, name).await.map_err(sql)?;
    match ids.len() {
        0 => Ok(None),
        1 => Ok(ids.into_iter().next()),
        _ => Err(format!(
            "`{name}` matches several runs in the store {}: {}; name one",
            store.config.display(),
            ids.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::lease::Driver as LeaseDriver;

    fn holder(host: &str, pid: i32, expires_in: f64) -> Holder {
        Holder {
            driver: LeaseDriver {
                operator: "alice".into(),
                host: host.into(),
                pid,
            },
            epoch: 2,
            expires_in,
        }
    }

    #[test]
    fn a_lease_that_holds_is_a_live_driver_and_an_expired_one_is_gone() {
        let elsewhere = format!("{}-elsewhere", crate::identity::host());
        assert_eq!(lease_driver(&holder(&elsewhere, 7, 12.5)).alive, Liveness::Alive);
        assert_eq!(lease_driver(&holder(&elsewhere, 7, -0.2)).alive, Liveness::Gone);
        assert_eq!(lease_driver(&holder(&elsewhere, 7, 0.0)).alive, Liveness::Gone);
    }

    #[test]
    fn on_this_host_a_held_lease_of_a_dead_process_is_gone() {
        // This test binary is not a `runbook`: a lease naming it is not held by a live driver.
        let me = std::process::id() as i32;
        assert_eq!(
            lease_driver(&holder(&crate::identity::host(), me, 12.5)).alive,
            Liveness::Gone
        );
    }

    #[test]
    fn a_line_that_is_not_an_event_is_said_once_and_skipped() {
        let lines = vec![
            r#"{"ts":"2026-11-29T12:00:00.000Z","event":"note","text":"hi","operator":"bob"}"#.to_string(),
            "{torn".to_string(),
            "also bad".to_string(),
        ];
        let (records, error) = records_of("r1", &lines);
        assert_eq!(records.len(), 1);
        assert!(
            error
                .unwrap()
                .starts_with("r1: event 2 in the store cannot be read")
        );
    }
}
