//! Reaching a run's driver from a shell command (`approve`, `note`, `takeover`): on the run's
//! control socket when the run is in this state dir and its driver answers there, else through
//! the shared store, when there is one (the driver is on another host, or the run is not here
//! at all). The commands print; this only finds the way and brings the answer back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::{ClientError, request};
use crate::control::{Request, Response};
use crate::store::{Store, StoreError};

/// What came of asking.
pub enum Asked {
    /// The driver answered (yes or no).
    Answered(Box<Response>),
    /// Nobody drives the run: no driver on its socket here, no valid lease in the store.
    /// `ended`: how it ended, when it has.
    NoDriver { ended: Option<String> },
    /// It could not be asked (permissions, a driver that does not answer, the store lost).
    Failed(String),
}

/// The run named on the command line, as found here and in the store.
pub struct Found {
    /// Its folder in this state dir, if it is here.
    pub dir: Option<PathBuf>,
    /// Its id (its folder's name).
    pub run_id: String,
    /// `--store`, when given.
    store_flag: Option<String>,
    /// The shared store, opened when it is first needed (a run whose driver answers here never
    /// waits for the store, nor fails with it).
    shared: std::cell::OnceCell<Result<Option<Shared>, String>>,
}

/// The shared store, and a runtime to talk to it from a shell command.
pub struct Shared {
    rt: tokio::runtime::Runtime,
    pub store: Store,
}

impl Shared {
    /// The store the settings name (`--store`, `RUNBOOK_STORE`, `config.toml`), opened; `None`
    /// without one.
    pub fn open(flag: Option<&str>) -> Result<Option<Shared>, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start: {e}"))?;
        let store = rt.block_on(crate::store::from_settings(flag))?;
        Ok(store.map(|store| Shared { rt, store }))
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn ask(&self, run_id: &str, req: &Request) -> Result<Response, StoreError> {
        self.block_on(crate::store::requests::request(&self.store, run_id, req))
    }
}

/// Finds the run: here (a folder, its journal, an id under the state dir) or in the store.
/// `Err((2, message))` when it is in neither.
pub fn find(run: &Path, state_dir: &Path, store_flag: Option<&str>) -> Result<Found, (i32, String)> {
    let mut found = Found {
        dir: None,
        run_id: String::new(),
        store_flag: store_flag.map(str::to_string),
        shared: std::cell::OnceCell::new(),
    };
    match super::find_run(run, state_dir) {
        Ok(dir) => {
            found.run_id = crate::store::lease::run_id(&dir);
            found.dir = Some(dir);
            return Ok(found);
        }
        Err(e) => {
            let shared = found.shared().map_err(|e| (2, e))?;
            let Some(s) = shared.filter(|_| crate::store::is_run_id(run)) else {
                return Err((2, e));
            };
            let id = run.display().to_string();
            let standing = s
                .block_on(crate::store::requests::standing(&s.store, &id))
                .map_err(|e| (2, e.to_string()))?;
            if standing.is_none() {
                return Err((
                    2,
                    format!(
                        "{id}: no such run here ({}) nor in the shared store {}",
                        state_dir.join("runs").display(),
                        s.store.config.display()
                    ),
                ));
            }
            found.run_id = id;
        }
    }
    Ok(found)
}

impl Found {
    /// The shared store, when one is set (opened on first use).
    pub fn shared(&self) -> Result<Option<&Shared>, String> {
        self.shared
            .get_or_init(|| Shared::open(self.store_flag.as_deref()))
            .as_ref()
            .map(Option::as_ref)
            .map_err(Clone::clone)
    }

    /// Asks the run's driver: on its socket here, else through the store.
    pub fn ask(&self, req: &Request) -> Asked {
        if let Some(dir) = &self.dir {
            match request(dir, req) {
                Ok(r) => return Asked::Answered(Box::new(r)),
                Err(ClientError::NoDriver) => {}
                Err(e) => return Asked::Failed(e.to_string()),
            }
        }
        let shared = match self.shared() {
            Ok(Some(s)) => s,
            Ok(None) => {
                return Asked::NoDriver {
                    ended: self.dir.as_deref().and_then(ended_here),
                };
            }
            Err(e) => return Asked::Failed(e),
        };
        match shared.ask(&self.run_id, req) {
            Ok(r) => Asked::Answered(Box::new(r)),
            Err(StoreError::NoDriver) => Asked::NoDriver {
                ended: self.ended_in_store(),
            },
            Err(e) => Asked::Failed(e.to_string()),
        }
    }

    /// How the run ended, by the store's copy of its journal.
    fn ended_in_store(&self) -> Option<String> {
        let shared = self.shared().ok().flatten()?;
        shared
            .block_on(crate::store::requests::standing(&shared.store, &self.run_id))
            .ok()
            .flatten()
            .flatten()
    }

    /// After its driver agreed to hand the run over: waits until that driver has released the
    /// run's lease in the store (it copies what it has first), at most a minute.
    pub fn wait_released(&self) -> Result<(), String> {
        let Some(shared) = self.shared()? else {
            return Ok(());
        };
        let limit = Duration::from_secs(60);
        match shared.block_on(crate::store::requests::wait_undriven(
            &shared.store,
            &self.run_id,
            limit,
        )) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "the driver agreed to hand over but still holds the run's lease in the store after {}s",
                limit.as_secs()
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The run's folder here, ready to go on with: rebuilt from the store when this host lacks it,
/// brought up to date when the store's copy is newer (the run went on on another host). Prints
/// what it did; on failure the exit status (2).
pub fn sync_folder(found: &mut Found, state_dir: &Path) -> Result<PathBuf, i32> {
    let fail = |e: String| {
        crate::say!("runbook: {e}");
        2
    };
    let shared = found.shared().map_err(fail)?;
    // The lease is this process's before the folder is compared with the store or rebuilt from
    // it (see `store::lease::fence`); the resume that follows keeps that epoch.
    if let Some(s) = &shared {
        let (config, id) = (&s.store.config, &found.run_id);
        let fenced = async {
            let c = s.store.client().await?;
            let steal = crate::store::lease::may_take(&c, config, id).await?;
            crate::store::lease::fence(&c, config, id, steal).await
        };
        s.block_on(fenced).map_err(|e| fail(e.to_string()))?;
    }
    let dir = match (&found.dir, shared) {
        (Some(dir), None) => return Ok(dir.clone()),
        (None, None) => return Err(fail(format!("{}: no such run here", found.run_id))),
        (Some(dir), Some(s)) => {
            let rebuilt = s
                .block_on(crate::store::refresh::refresh(&s.store, dir))
                .map_err(|e| fail(e.to_string()))?;
            if rebuilt {
                crate::say!(
                    "runbook: brought {} up to date from the store {} (the run went on on another host)",
                    dir.display(),
                    s.store.config.display()
                );
            }
            dir.clone()
        }
        (None, Some(s)) => {
            let dir = s
                .block_on(crate::store::restore::restore(&s.store, &found.run_id, state_dir))
                .map_err(|e| fail(e.to_string()))?;
            crate::say!(
                "runbook: rebuilt {} from the store {}",
                dir.display(),
                s.store.config.display()
            );
            dir
        }
    };
    found.dir = Some(dir.clone());
    Ok(dir)
}

/// How the run in `run_dir` ended, if its journal says it did (and no session started after).
pub fn ended_here(run_dir: &Path) -> Option<String> {
    let (records, _) = crate::journal::read(&run_dir.join("journal.jsonl")).ok()?;
    let info = crate::journal::resume::info(&records)?;
    info.finished.map(|o| o.as_str().replace('_', " "))
}
