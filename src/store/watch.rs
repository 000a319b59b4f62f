//! The watchers' side of the store (`runbook ls` and `runbook attach` on any host): the runs it
//! holds with their leases, a run's journal lines after a given one, a step log's bytes after a
//! given offset, and the notifications (`LISTEN runbook_runs`, sent by the triggers of migration
//! 3 when the driver's copy commits) that say when there is more to read.
//!
//! Only reads: the store is written by the drivers' copy (`replicate`) and leases (`lease`).
//! What the lines mean (where a run stands, who drives it) is `crate::runs`'s.

use serde::Deserialize;
use tokio_postgres::Client;

use super::lease::{Driver, Holder};
use super::{StoreConfig, StoreError, connect};

/// The channel the triggers notify on.
pub const CHANNEL: &str = "runbook_runs";

/// A run in the store: its row, its lease (if one was ever taken) and its journal lines.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub run_id: String,
    pub runbook: String,
    pub title: String,
    /// Who started it, and where.
    pub operator: String,
    pub host: String,
    pub lease: Option<Holder>,
    /// What its driver waits for from other operators, as its lease row says (a step waiting for
    /// approvals); only meaningful while the lease holds.
    pub waiting: Option<crate::control::ApprovalWaiting>,
    /// Journal lines in order (`seq` from 1), as written on the driver's host.
    pub lines: Vec<String>,
}

/// What one notification says changed (migration 3's payloads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Change {
    pub run: String,
    /// Journal lines up to this one are in the store.
    #[serde(default)]
    pub seq: Option<i64>,
    /// This log's first `end` bytes are in the store.
    #[serde(default)]
    pub log: Option<String>,
    #[serde(default)]
    pub end: Option<i64>,
    /// The lease changed (taken, renewed, released, taken over).
    #[serde(default)]
    pub lease: Option<i64>,
}

impl Change {
    pub fn parse(payload: &str) -> Option<Change> {
        serde_json::from_str(payload).ok()
    }
}

/// Journal events that say nothing about where a run stands or who drives it: `ls` leaves
/// them in the store (a long run samples its metrics thousands of times).
const NOT_FOR_LS: &[&str] = &[
    "metrics_sampled",
    "notify_sent",
    "notify_failed",
    "notify_rehearsed",
];

fn holder_of(row: &tokio_postgres::Row, at: usize) -> Option<Holder> {
    let epoch: Option<i64> = row.get(at);
    Some(Holder {
        epoch: epoch?,
        driver: Driver {
            operator: row.get(at + 1),
            host: row.get(at + 2),
            pid: row.get(at + 3),
        },
        expires_in: row.get(at + 4),
    })
}

const RUN_COLUMNS: &str = "r.run_id, r.runbook, r.title, r.operator, r.host,
     l.epoch, l.operator, l.host, l.pid, extract(epoch FROM l.expires_at - now())::float8,
     l.waiting::text";

fn run_of(row: &tokio_postgres::Row) -> StoredRun {
    StoredRun {
        run_id: row.get(0),
        runbook: row.get(1),
        title: row.get(2),
        operator: row.get(3),
        host: row.get(4),
        lease: holder_of(row, 5),
        // A value that is not one (written by hand) is as good as none.
        waiting: row
            .get::<_, Option<&str>>(10)
            .and_then(|w| serde_json::from_str(w).ok()),
        lines: Vec::new(),
    }
}

/// Every run in the store with the journal lines that tell where it stands (all but metric
/// samples and notification outcomes), oldest first.
pub async fn runs(client: &Client) -> Result<Vec<StoredRun>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs r LEFT JOIN leases l USING (run_id)
                 ORDER BY r.created_at, r.run_id"
            ),
            &[],
        )
        .await?;
    let mut out: Vec<StoredRun> = rows.iter().map(run_of).collect();
    let skip: Vec<&str> = NOT_FOR_LS.to_vec();
    let lines = client
        .query(
            "SELECT run_id, line FROM events WHERE event <> ALL($1) ORDER BY run_id, seq",
            &[&skip],
        )
        .await?;
    let index: std::collections::HashMap<String, usize> = out
        .iter()
        .enumerate()
        .map(|(i, r)| (r.run_id.clone(), i))
        .collect();
    for row in &lines {
        let id: &str = row.get(0);
        if let Some(&i) = index.get(id) {
            out[i].lines.push(row.get(1));
        }
    }
    Ok(out)
}

/// One run of the store, without its lines (`lines` empty); `None` when the store lacks it.
pub async fn run(client: &Client, run_id: &str) -> Result<Option<StoredRun>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs r LEFT JOIN leases l USING (run_id) WHERE r.run_id = $1"
            ),
            &[&run_id],
        )
        .await?;
    Ok(row.as_ref().map(run_of))
}

/// The ids of the store's runs containing `part`, in order.
pub async fn ids_like(client: &Client, part: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT run_id FROM runs WHERE strpos(run_id, $1) > 0 ORDER BY run_id",
            &[&part],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The run's journal lines after line `after`, in order, with their numbers.
pub async fn lines_after(
    client: &Client,
    run_id: &str,
    after: i64,
) -> Result<Vec<(i64, String)>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT seq, line FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq",
            &[&run_id, &after],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// How many bytes of a log the store has (0 when none).
pub async fn log_len(client: &Client, run_id: &str, log: &str) -> Result<u64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT coalesce(max(\"offset\" + length(data)), 0)::int8 FROM log_chunks
             WHERE run_id = $1 AND log = $2",
            &[&run_id, &log],
        )
        .await?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// A log's bytes from offset `from` on, as far as they go without a gap (the copy writes a log in
/// order, so a gap is only ever a chunk not committed yet).
pub async fn log_from(
    client: &Client,
    run_id: &str,
    log: &str,
    from: u64,
) -> Result<Vec<u8>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT \"offset\", data FROM log_chunks
             WHERE run_id = $1 AND log = $2 AND \"offset\" + length(data) > $3 ORDER BY \"offset\"",
            &[&run_id, &log, &(from as i64)],
        )
        .await?;
    let mut out = Vec::new();
    let mut at = from;
    for r in &rows {
        let offset = r.get::<_, i64>(0) as u64;
        let data: &[u8] = r.get(1);
        if offset > at {
            break;
        }
        let skip = (at - offset) as usize;
        if skip < data.len() {
            out.extend_from_slice(&data[skip..]);
            at = offset + data.len() as u64;
        }
    }
    Ok(out)
}

/// What a listening connection hears; the receiver ends when the connection does (the store
/// went away: the caller reconnects).
pub type Notifications = tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::Notification>;

/// A connection that hears the store's notifications (`LISTEN runbook_runs`).
pub async fn listen(config: &StoreConfig) -> Result<(Client, Notifications), StoreError> {
    let (tx, notes) = tokio::sync::mpsc::unbounded_channel();
    let client = connect::connect_listening(config, tx).await?;
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| connect::explain(config, &e))?;
    Ok((client, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_triggers_payloads_are_read() {
        assert_eq!(
            Change::parse(r#"{"run" : "20261129T120000Z-rb", "seq" : 12}"#),
            Some(Change {
                run: "20261129T120000Z-rb".into(),
                seq: Some(12),
                log: None,
                end: None,
                lease: None,
            })
        );
        let log = Change::parse(r#"{"run" : "r", "log" : "logs/deploy--a--1.log", "end" : 4096}"#).unwrap();
        assert_eq!(log.log.as_deref(), Some("logs/deploy--a--1.log"));
        assert_eq!(log.end, Some(4096));
        assert_eq!(
            Change::parse(r#"{"run" : "r", "lease" : 3}"#).unwrap().lease,
            Some(3)
        );
        assert_eq!(Change::parse("not json"), None);
    }
}
