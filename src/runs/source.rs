//! The one seam through which a watcher (`runbook attach`) reads a run: its folder on this host
//! (`follow`: inotify on the journal and the running step's log) or the shared store (`remote`:
//! LISTEN/NOTIFY, from any host). Both give the same `Followed` changes, so the screen that shows
//! them is one. `open` chooses: the run's folder when its driver is on this host (the fastest
//! way, and its control socket is there), else the store when one is set and has the run.

use std::path::{Path, PathBuf};

use super::follow::{Followed, Follower};
use super::remote::StoreFollower;
use super::{Driver, shared};
use crate::control::{Request, Response};
use crate::journal::{Event, Record};
use crate::store::{Store, StoreConfig};

/// Where a watched run is read from.
pub enum Source {
    Local(Follower),
    Store(Box<StoreFollower>),
}

impl Source {
    /// Waits until something changed, and returns it.
    pub async fn next(&mut self) -> std::io::Result<Vec<Followed>> {
        match self {
            Source::Local(f) => f.next().await,
            Source::Store(s) => Ok(s.next().await),
        }
    }

    /// Follows a step's log (relative to the run folder) from now on; returns what it holds.
    /// `tail`: the step has been running a while; only the end of what it wrote so far.
    pub async fn follow_log(&mut self, rel: &str, tail: bool) -> Vec<Followed> {
        match self {
            Source::Local(f) => f.follow_log(rel, tail),
            Source::Store(s) => s.follow_log(rel, tail).await,
        }
    }

    /// Stops following the step's log (the step ended), after reading what is left of it.
    pub async fn stop_log(&mut self) -> Vec<Followed> {
        match self {
            Source::Local(f) => f.stop_log(),
            Source::Store(s) => s.stop_log().await,
        }
    }

    /// The end of a log of the run (at most `max` bytes, from a line's start), e.g. of a step
    /// the watcher selected.
    pub async fn read_log(&mut self, rel: &str, max: u64) -> Result<Vec<u8>, String> {
        match self {
            Source::Local(f) => crate::files::read_tail(&f.dir().join(rel), max),
            Source::Store(s) => s.read_log(rel, max).await,
        }
    }

    /// The run's id (its folder's name).
    pub fn run_id(&self) -> String {
        match self {
            Source::Local(f) => f
                .dir()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Source::Store(s) => s.run_id().to_string(),
        }
    }

    /// The run's folder, when it is read from one on this host.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            Source::Local(f) => Some(f.dir()),
            Source::Store(_) => None,
        }
    }

    /// The store it is read from (`user@host:port/db`), when it is.
    pub fn store(&self) -> Option<String> {
        match self {
            Source::Local(_) => None,
            Source::Store(s) => Some(s.store()),
        }
    }

    /// Where the run's files are, as the screen names them: its folder, or
    /// `store:USER@HOST:PORT/DB/RUN`.
    pub fn shown_as(&self) -> String {
        match self {
            Source::Local(f) => f.dir().display().to_string(),
            Source::Store(s) => format!("store:{}/{}", s.store(), s.run_id()),
        }
    }

    /// Where the driver takes this watcher's requests (notes, approvals, `hello`).
    pub fn requests(&self) -> Requests {
        match self {
            Source::Local(f) => Requests::Socket(f.dir().to_path_buf()),
            Source::Store(s) => Requests::Store {
                config: Box::new(s.config().clone()),
                run_id: s.run_id().to_string(),
            },
        }
    }

    /// Who drives the run now: its lock file (local), or its lease (store).
    pub fn driver(&self, records: &[Record]) -> Option<Driver> {
        match self {
            Source::Local(f) => super::driver_of(f.dir(), records),
            Source::Store(s) => s.driver(records),
        }
    }
}

/// Where a run's driver takes requests from a watcher.
#[derive(Debug, Clone)]
pub enum Requests {
    /// Its control socket, in the run folder on this host (the kernel tells it who asks).
    Socket(PathBuf),
    /// The shared store's `requests`, from another host (see `store::requests` for who asks).
    Store {
        config: Box<StoreConfig>,
        run_id: String,
    },
}

impl Requests {
    /// Sends `request` to the driver and waits for its answer.
    pub async fn ask(self, request: &Request) -> Result<Response, String> {
        match self {
            Requests::Socket(dir) => {
                let req = request.clone();
                tokio::task::spawn_blocking(move || {
                    crate::team::client::request(&dir, &req).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| e.to_string())?
            }
            Requests::Store { config, run_id } => {
                crate::store::requests::request(&Store::with_config(*config), &run_id, request)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// Whether the run in `dir` is driven (or was last) from this host. Not when its latest change
/// of hands here sent it elsewhere: handed over to another host, or fenced by a newer driver's
/// lease (this folder then stops growing; the store has the rest).
fn driven_here(dir: &Path) -> bool {
    let records = crate::journal::read(&dir.join("journal.jsonl"))
        .map(|(r, _)| r)
        .unwrap_or_default();
    let here = crate::identity::host();
    let left = records.iter().rev().find_map(|r| match &r.event {
        Event::RunStarted { .. } => Some(false),
        Event::Handover { at, .. } => Some(at.host != here),
        Event::StoreFenced { .. } => Some(true),
        _ => None,
    });
    left != Some(true) && super::driver_of(dir, &records).is_some_and(|d| d.host == here)
}

fn open_local(dir: &Path) -> Result<(Source, Vec<Followed>), String> {
    Follower::open(dir)
        .map(|(f, now)| (Source::Local(f), now))
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))
}

/// Opens the run `name` names (see `open`) in a one-thread runtime and hands it to `then`, whose
/// result is the exit status: 1 when no runtime can start, 2 with the reason when there is no
/// such run to read.
pub fn with_run<F, Fut>(state_dir: &Path, name: Option<&str>, store: Option<&str>, then: F) -> i32
where
    F: FnOnce(Source, Vec<Followed>) -> Fut,
    Fut: std::future::Future<Output = i32>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            crate::say!("runbook: cannot start: {e}");
            return 1;
        }
    };
    runtime.block_on(async {
        match open(state_dir, name, store).await {
            Ok((source, now)) => then(source, now).await,
            Err(e) => {
                crate::say!("runbook: {e}");
                2
            }
        }
    })
}

/// The run `name` names (the latest live one without a name), opened for watching: in this
/// state dir when its driver is on this host, else in the shared store when one is set (`--store`,
/// `RUNBOOK_STORE`, `config.toml`) and has it. Returns the run as it is now; what comes after
/// comes from `Source::next`.
pub async fn open(
    state_dir: &Path,
    name: Option<&str>,
    store: Option<&str>,
) -> Result<(Source, Vec<Followed>), String> {
    let local: Result<PathBuf, _> = super::find(state_dir, name);
    if let Ok(dir) = &local
        && driven_here(dir)
    {
        return open_local(dir);
    }
    let Some(store) = shared::open(store).await? else {
        return open_local(&local.map_err(|e| e.to_string())?);
    };
    let at = store.config.display();
    let origin = store.config.origin.clone();
    match shared::find(&store, name)
        .await
        .map_err(|e| format!("{e} (the store is set by {origin})"))?
    {
        Some(id) => StoreFollower::open(&store.config, &id)
            .await
            .map(|(f, now)| (Source::Store(Box::new(f)), now))
            .map_err(|e| format!("{e} (the store is set by {origin})")),
        None => match local {
            Ok(dir) => open_local(&dir),
            Err(e) => Err(format!("{e}; nor in the store {at}")),
        },
    }
}
