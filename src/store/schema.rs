//! The store's schema, created and migrated by `runbook` itself: numbered SQL files
//! (`migrations/NNNN_*.sql`), applied in order, each in a transaction, recorded in
//! `schema_version`. A store whose schema is newer than this binary knows is refused, never
//! written to.

use tokio_postgres::Client;

use super::StoreError;

/// Every migration: its number and its SQL. Append only; never change one that was released.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_runs.sql")),
    (2, include_str!("migrations/0002_requests_locks.sql")),
    (3, include_str!("migrations/0003_notify.sql")),
    (4, include_str!("migrations/0004_lease_waiting.sql")),
];

/// The schema version this binary writes.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Brings the store's schema up to `latest()`; refuses one that is newer. Concurrent `runbook`s
/// wait for each other (an advisory lock), so a migration runs once.
pub async fn migrate(client: &mut Client, at: &str) -> Result<(), StoreError> {
    let sql =
        |e: tokio_postgres::Error| StoreError::Message(format!("the store {at}: migrating its schema: {e}"));
    // A schema already at this version needs nothing: a role that may only read and write the
    // tables (not create them) uses the store as well as the one that made them.
    match current_version(client).await.map_err(sql)? {
        Some(current) if current == latest() => return Ok(()),
        Some(found) if found > latest() => {
            return Err(StoreError::Newer {
                at: at.to_string(),
                found,
                known: latest(),
            });
        }
        _ => {}
    }
    client
        .batch_execute(
            "SELECT pg_advisory_lock(7293847561);
             CREATE TABLE IF NOT EXISTS schema_version (
                 version    integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now(),
                 by_runbook text NOT NULL
             );",
        )
        .await
        .map_err(sql)?;
    let result = apply(client, at).await;
    let unlocked = client
        .batch_execute("SELECT pg_advisory_unlock(7293847561)")
        .await;
    result?;
    unlocked.map_err(sql)?;
    Ok(())
}

/// The schema's version, when there is a schema.
async fn current_version(client: &Client) -> Result<Option<i32>, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?;
    if !row.get::<_, bool>(0) {
        return Ok(None);
    }
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await?;
    Ok(Some(row.get(0)))
}

async fn apply(client: &mut Client, at: &str) -> Result<(), StoreError> {
    let sql =
        |e: tokio_postgres::Error| StoreError::Message(format!("the store {at}: migrating its schema: {e}"));
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await
        .map_err(sql)?;
    let current: i32 = row.get(0);
    if current > latest() {
        return Err(StoreError::Newer {
            at: at.to_string(),
            found: current,
            known: latest(),
        });
    }
    for (version, text) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let tx = client.transaction().await.map_err(sql)?;
        tx.batch_execute(text).await.map_err(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version, by_runbook) VALUES ($1, $2)",
            &[version, &env!("CARGO_PKG_VERSION")],
        )
        .await
        .map_err(sql)?;
        tx.commit().await.map_err(sql)?;
    }
    Ok(())
}
