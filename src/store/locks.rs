//! Deploy locks in the shared store (`[runbook] lock`, SPEC §8, §9): one row per lock name in
//! `locks`, so that at most one run on any host holds a lock of that name. Taken atomically (one
//! `INSERT … ON CONFLICT DO UPDATE … WHERE free`), before the run's folder exists; the run is
//! named in it once it does.
//!
//! When a row is free: its run ended (the row is deleted then), or its run's lease in `leases`
//! has expired or was released (its driver crashed or was cut off from the store for a whole
//! lease) and the row's own grace (`expires_at`, one lease length from when it was taken or
//! its run stopped) has passed. The run that holds a row takes it again at once (`resume`,
//! `takeover`, from any host). A run that stops without ending (interrupted, handed over) keeps
//! its row for one lease length, so that the new driver finds it still the run's; a holder on
//! this host whose process is dead holds nothing.

use std::time::Duration;

use super::{StoreConfig, StoreError, connect};

/// A deploy lock held in the store by this process.
#[derive(Debug)]
pub struct StoreLock {
    config: StoreConfig,
    pub name: String,
    run_id: Option<String>,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone holds it: "alice@bastion-a (pid 42), driving the run RUN in the shared store …".
    #[error("{holder}")]
    Held { holder: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Takes the lock `name` for the run `run_id` (`None`: a new run, whose folder does not exist
/// yet). Blocking: runs on a thread of its own (the caller is on the runtime's only thread,
/// before the run starts).
pub fn acquire_blocking(
    config: &StoreConfig,
    name: &str,
    run_id: Option<&str>,
) -> Result<StoreLock, LockError> {
    let lock = StoreLock {
        config: config.clone(),
        name: name.to_string(),
        run_id: run_id.map(str::to_string),
    };
    blocking(async move {
        lock.take().await?;
        Ok(lock)
    })
    .unwrap_or_else(|e| Err(LockError::Store(e)))
}

/// Runs `f` to its end on a thread and runtime of its own.
fn blocking<T: Send + 'static>(
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(f))
    })
    .join()
    .map_err(|_| StoreError::Message("the store's lock could not be taken (its thread failed)".into()))?
    .map_err(|e| StoreError::Message(format!("the store's lock could not be taken: {e}")))
}

impl StoreLock {
    async fn take(&self) -> Result<(), LockError> {
        let client = connect::connect(&self.config).await?;
        let sql = |e: tokio_postgres::Error| LockError::Store(connect::explain(&self.config, &e));
        let me = super::lease::Driver::me();
        let grace = self.config.lease.as_secs_f64();
        for attempt in 0..2 {
            let row = client
                .query_opt(
                    "INSERT INTO locks AS k (name, run_id, operator, host, pid, acquired_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, now(), now() + make_interval(secs => $6))
                     ON CONFLICT (name) DO UPDATE SET run_id = EXCLUDED.run_id, operator = EXCLUDED.operator,
                         host = EXCLUDED.host, pid = EXCLUDED.pid, acquired_at = now(),
                         expires_at = EXCLUDED.expires_at
                     WHERE ($2::text IS NOT NULL AND k.run_id = $2)
                        OR (k.expires_at < now() AND NOT EXISTS (
                                SELECT 1 FROM leases l WHERE l.run_id = k.run_id AND l.expires_at > now()))
                     RETURNING name",
                    &[&self.name, &self.run_id, &me.operator, &me.host, &me.pid, &grace],
                )
                .await
                .map_err(sql)?;
            if row.is_some() {
                return Ok(());
            }
            let holder = client
                .query_opt(
                    "SELECT operator, host, pid, run_id FROM locks WHERE name = $1",
                    &[&self.name],
                )
                .await
                .map_err(sql)?;
            let Some(h) = holder else { continue };
            let (operator, host, pid, run): (String, String, i32, Option<String>) =
                (h.get(0), h.get(1), h.get(2), h.get(3));
            // Its holder was on this host and is dead (the kernel would have freed a local lock).
            let dead_here = host == me.host && !std::path::Path::new(&format!("/proc/{pid}")).exists();
            if dead_here && attempt == 0 {
                client
                    .execute(
                        "DELETE FROM locks WHERE name = $1 AND host = $2 AND pid = $3",
                        &[&self.name, &host, &pid],
                    )
                    .await
                    .map_err(sql)?;
                continue;
            }
            let run = match run {
                Some(r) => format!("driving the run {r}"),
                None => "starting a run".into(),
            };
            return Err(LockError::Held {
                holder: format!(
                    "{operator}@{host} (pid {pid}), {run} (in the shared store {})",
                    self.config.display()
                ),
            });
        }
        Err(LockError::Held {
            holder: "another runbook (it let go and took it again while this one looked)".into(),
        })
    }

    /// Names the run that holds the lock (once its folder exists). Blocking, as `acquire_blocking`.
    pub fn record_run_blocking(&mut self, run_id: &str) -> Result<(), StoreError> {
        self.run_id = Some(run_id.to_string());
        let config = self.config.clone();
        let (name, run) = (self.name.clone(), run_id.to_string());
        let me = super::lease::Driver::me();
        blocking(async move {
            let client = connect::connect(&config).await?;
            client
                .execute(
                    "UPDATE locks SET run_id = $2 WHERE name = $1 AND host = $3 AND pid = $4",
                    &[&name, &run, &me.host, &me.pid],
                )
                .await
                .map_err(|e| connect::explain(&config, &e))?;
            Ok(())
        })?
    }

    /// The run stopped. `ended`: it reached its end (the row goes); otherwise (interrupted,
    /// handed over) the row stays the run's for one lease length, for whoever drives it next.
    /// Waits at most a few seconds: a store that does not answer lets the lease free it.
    pub async fn release(self, ended: bool) {
        let me = super::lease::Driver::me();
        let grace = self.config.lease.as_secs_f64();
        let work = async {
            let client = connect::connect(&self.config).await.ok()?;
            let (sql, params): (&str, Vec<&(dyn tokio_postgres::types::ToSql + Sync)>) = if ended {
                (
                    "DELETE FROM locks WHERE name = $1 AND host = $2 AND pid = $3",
                    vec![&self.name, &me.host, &me.pid],
                )
            } else {
                (
                    "UPDATE locks SET expires_at = now() + make_interval(secs => $4)
                     WHERE name = $1 AND host = $2 AND pid = $3",
                    vec![&self.name, &me.host, &me.pid, &grace],
                )
            };
            client.execute(sql, &params).await.ok()
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), work).await;
    }
}
