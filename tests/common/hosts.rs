//! Bastion hosts for the shared store's tests: each "host" has a host name of its own for real
//! (its `runbook` runs in a UTS namespace of its own, `unshare --uts`, where the host name is
//! set, so `gethostname` tells the hosts apart), a state dir of its own, and runs `runbook` as
//! root or as a Unix user made for the test (`useradd`; removed when dropped). Everything lives
//! in one folder every user may read, with a copy of the binary they may all run. Needs root,
//! util-linux (`unshare`, `runuser`) and passwd (`useradd`): `.ci/run` runs as root and installs
//! them.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static USERS: AtomicUsize = AtomicUsize::new(0);

/// A folder every user may read, with the binary in it.
pub struct Site {
    dir: tempfile::TempDir,
    pub bin: PathBuf,
}

impl Site {
    pub fn new() -> Site {
        assert!(
            nix::unistd::geteuid().is_root(),
            "these tests set host names and create Unix users: run them as root (.ci/run does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("runbook-hosts")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.path().join("runbook");
        std::fs::copy(super::runbook_bin(), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        Site { dir, bin }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file every user may read.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    /// `config.toml` naming the store (and `store_lease`), used by every host of the site.
    pub fn store_config(&self, url: &str, lease: &str) {
        self.write(
            "config/runbook/config.toml",
            &format!("store = \"{url}\"\nstore_lease = \"{lease}\"\n"),
        );
    }

    /// A host of the site: its name and its state dir (`state-NAME`, made world-writable so that
    /// any user of the test may run there).
    pub fn host(&self, name: &str) -> Host {
        let state = self.dir.path().join(format!("state-{name}"));
        Host {
            name: name.to_string(),
            state,
            bin: self.bin.clone(),
            site: self.dir.path().to_path_buf(),
        }
    }
}

/// One bastion.
pub struct Host {
    pub name: String,
    pub state: PathBuf,
    bin: PathBuf,
    site: PathBuf,
}

impl Host {
    /// The shell words that run `runbook ARGS` on this host (as `user`, or root): for `Command`
    /// (`command`) or a tmux pane (`shell_line`).
    fn words(&self, user: Option<&User>, args: &[&str]) -> Vec<String> {
        let mut w: Vec<String> = vec![
            "unshare".into(),
            "--uts".into(),
            "sh".into(),
            "-c".into(),
            "echo \"$0\" > /proc/sys/kernel/hostname && shift && exec \"$@\"".into(),
            self.name.clone(),
            "-".into(),
        ];
        if let Some(u) = user {
            w.extend(["runuser".into(), "-u".into(), u.name.clone(), "--".into()]);
        }
        w.extend([
            "env".into(),
            format!("XDG_CONFIG_HOME={}", self.site.join("config").display()),
            "RUNBOOK_STORE=".into(),
            "PGPASSFILE=/nonexistent".into(),
        ]);
        w.push(self.bin.display().to_string());
        w.extend(args.iter().map(|a| a.to_string()));
        w
    }

    /// `runbook ARGS` on this host, with `--state-dir` added for commands that take it.
    pub fn command(&self, user: Option<&User>, args: &[&str]) -> Command {
        let words = self.words(user, args);
        let mut c = Command::new(&words[0]);
        c.args(&words[1..])
            .current_dir(&self.site)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// The same as one line for a shell (a tmux pane), each word quoted.
    pub fn shell_line(&self, user: Option<&User>, args: &[&str]) -> String {
        self.words(user, args)
            .iter()
            .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn state_arg(&self) -> String {
        self.state.display().to_string()
    }
}

/// A Unix user made for the test; removed (with whatever it still runs) when dropped.
pub struct User {
    pub name: String,
}

impl User {
    pub fn new(short: &str) -> User {
        let n = USERS.fetch_add(1, Ordering::SeqCst);
        let name = format!("rb{}{n}{short}", std::process::id() % 100_000);
        let out = Command::new("useradd")
            .args(["-M", "-N", "-s", "/bin/sh", &name])
            .output()
            .expect("useradd runs");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        User { name }
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("pkill").args(["-KILL", "-u", &self.name]).status();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let _ = Command::new("userdel")
            .arg(&self.name)
            .stderr(Stdio::null())
            .status();
    }
}
