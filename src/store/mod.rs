//! The shared store (SPEC §9): PostgreSQL, so that a run outlives its bastion and is seen from
//! every bastion. Local files stay the truth a run is written to first (the journal, fsynced,
//! and the step logs); the store gets a copy of them, in order and idempotently, in the
//! background, and holds the lease that says which `runbook` drives a run.
//!
//! - `config`: which store (`--store`, `RUNBOOK_STORE`, `config.toml`), its password, `sslmode`;
//! - `connect`: TLS (rustls) and connection errors in an operator's words;
//! - `schema`: the tables, created and migrated by `runbook` itself (`migrations/*.sql`);
//! - `replicate`: the background copy of the journal and logs, its backlog and how far behind it is;
//! - `lease`: the driver's lease, renewed, lost, or fenced by a newer driver;
//! - `link`: what the engine sees of all this (may a step start? what to journal?);
//! - `restore`: a run folder rebuilt from the store, for `resume` on another host.
//!
//! The engine and front ends know nothing of PostgreSQL: they read a `Link`.

pub mod config;
pub mod connect;
pub mod schema;

pub use config::{StoreConfig, resolve};

/// What went wrong with the store, said for an operator.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Message(String),
    /// The network or the server is down: worth trying again.
    #[error("{0}")]
    Unreachable(String),
    #[error(
        "the store {at} has schema version {found}, newer than this runbook knows ({known}): \
         upgrade runbook on this host; nothing was written to the store"
    )]
    Newer { at: String, found: i32, known: i32 },
}

/// A store that answered: reachable, logged into, its schema at this binary's version.
pub struct Store {
    pub config: StoreConfig,
}

impl Store {
    /// Connects once and migrates the schema: every mistake in the settings shows here, before
    /// anything of a run starts.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let mut client = connect::connect(&config).await?;
        schema::migrate(&mut client, &config.display()).await?;
        Ok(Store { config })
    }

    /// A fresh connection (the background tasks each keep their own and reconnect).
    pub async fn client(&self) -> Result<tokio_postgres::Client, StoreError> {
        connect::connect(&self.config).await
    }
}

/// The store the settings name (`--store`, `RUNBOOK_STORE`, `config.toml`), opened; `None`
/// without one. Any error means: nothing was started.
pub async fn from_settings(flag: Option<&str>) -> Result<Option<Store>, String> {
    let Some(config) = resolve(flag).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let origin = config.origin.clone();
    Store::open(config)
        .await
        .map(Some)
        .map_err(|e| format!("{e} (the store is set by {origin}; nothing was started)"))
}
