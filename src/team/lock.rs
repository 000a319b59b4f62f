//! Deploy locks (`[runbook] lock = "name"`, SPEC §8): at most one run holding a lock of a name at a
//! time in a state dir. The lock is an flock on `STATE_DIR/locks/<name>.lock`, held by the driver
//! for as long as it drives the run: released when it ends, also when it crashes (the kernel lets
//! go of a dead process's locks), taken again by `resume` and `takeover`. The file says who holds
//! it: `operator@host (pid N) RUN_DIR`.

use std::fs::File;
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

/// A deploy lock, held while this lives.
pub struct DeployLock {
    held: nix::fcntl::Flock<File>,
}

impl DeployLock {
    /// Names the run that holds the lock (once its folder exists).
    pub fn record_run(&mut self, run_dir: &Path) -> std::io::Result<()> {
        self.write(Some(run_dir))
    }

    fn write(&mut self, run_dir: Option<&Path>) -> std::io::Result<()> {
        let mut me = format!(
            "{}@{} (pid {})",
            crate::identity::operator(),
            crate::identity::host(),
            std::process::id()
        );
        if let Some(dir) = run_dir {
            let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
            me.push_str(&format!(" {}", dir.display()));
        }
        me.push('\n');
        self.held.set_len(0)?;
        self.held.rewind()?;
        self.held.write_all(me.as_bytes())
    }
}

impl std::fmt::Debug for DeployLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeployLock")
    }
}

/// Why a deploy lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "deploy lock `{name}` is held by {holder}; only one run holds it at a time (it is released when that run ends)"
    )]
    Held { name: String, holder: String },
    #[error("deploy lock `{name}`: cannot use {}: {source}", .path.display())]
    Io {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The state dir a run folder belongs to (`STATE_DIR/runs/<run>`).
pub fn state_dir_of(run_dir: &Path) -> Option<&Path> {
    run_dir.parent().filter(|p| p.ends_with("runs"))?.parent()
}

/// Takes the deploy lock `name` in `state_dir`, or says who holds it. It is taken before the run
/// folder is created (a refused run leaves nothing behind); `record_run` then names the run.
pub fn acquire(state_dir: &Path, name: &str) -> Result<DeployLock, LockError> {
    let folder = state_dir.join("locks");
    let path = folder.join(format!("{name}.lock"));
    let io = |source: std::io::Error| LockError::Io {
        name: name.to_string(),
        path: path.clone(),
        source,
    };
    crate::files::create_folder(state_dir, &folder).map_err(io)?;
    let file = crate::files::open_private_rw(&path).map_err(io)?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(held) => {
            let mut lock = DeployLock { held };
            lock.write(None).map_err(io)?;
            Ok(lock)
        }
        Err((mut file, _)) => {
            // The holder writes its name just after it takes the lock: give it a moment.
            let holder = crate::files::read_holder(&mut file, |holder| !holder.trim().is_empty());
            Err(LockError::Held {
                name: name.to_string(),
                holder: describe_holder(holder.trim()),
            })
        }
    }
}

/// `acquire`, trying again for up to `patience` while another holds it: a driver that just
/// handed the run over lets go of its lock a moment after its run's.
pub fn acquire_within(
    state_dir: &Path,
    name: &str,
    patience: std::time::Duration,
) -> Result<DeployLock, LockError> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        match acquire(state_dir, name) {
            Err(LockError::Held { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// "alice@bastion (pid 4242), driving the run /var/lib/runbook/runs/…" from the lock file's line.
fn describe_holder(line: &str) -> String {
    if line.is_empty() {
        return "another runbook process (it did not say who)".into();
    }
    match line.find(") ") {
        Some(i) => format!("{}, driving the run {}", &line[..=i], line[i + 2..].trim()),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_named_with_its_run() {
        assert_eq!(
            describe_holder("alice@bastion (pid 42) /srv/runs/x"),
            "alice@bastion (pid 42), driving the run /srv/runs/x"
        );
        assert_eq!(state_dir_of(Path::new("/s/runs/r1")), Some(Path::new("/s")));
        assert_eq!(state_dir_of(Path::new("/s/r1")), None);
    }

    #[test]
    fn a_second_holder_is_refused_and_the_lock_comes_back_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = acquire(dir.path(), "checkout").unwrap();
        first.record_run(&dir.path().join("runs/a")).unwrap();
        let err = acquire(dir.path(), "checkout").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("deploy lock `checkout` is held by"), "{text}");
        assert!(text.contains("runs/a"), "{text}");
        drop(first);
        acquire(dir.path(), "checkout").unwrap();
    }
}
