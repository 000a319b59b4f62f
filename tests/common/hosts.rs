//! Bastions for the tests of the shared store: a `runbook` given a host name of its own (a UTS
//! namespace: `unshare --uts`, which needs root, as the tests run in CI; the name is written to
//! `/proc/sys/kernel/hostname` inside it), so that two processes on this machine are two hosts
//! to `runbook` (its identity is the kernel's host name), each with its own state dir and config
//! folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One bastion: its host name, its state dir and its `XDG_CONFIG_HOME`.
pub struct Host {
    pub name: String,
    pub state: PathBuf,
    pub config: PathBuf,
}

impl Host {
    /// Host `name`, with `ROOT/state-NAME` and `ROOT/config-NAME` (created).
    pub fn new(root: &Path, name: &str) -> Host {
        let state = root.join(format!("state-{name}"));
        let config = root.join(format!("config-{name}"));
        std::fs::create_dir_all(config.join("runbook")).unwrap();
        Host {
            name: name.to_string(),
            state,
            config,
        }
    }

    /// Writes this host's `config.toml` (the store's settings, say).
    pub fn configure(&self, toml: &str) {
        std::fs::write(self.config.join("runbook/config.toml"), toml).unwrap();
    }

    /// The words that run `runbook ARGS --state-dir STATE` on this host: `unshare --uts` gives it
    /// the host name, then `exec`s, so the process is `runbook` itself.
    pub fn argv(&self, args: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = [
            "unshare",
            "--uts",
            "sh",
            "-c",
            "printf %s \"$1\" > /proc/sys/kernel/hostname && shift && exec \"$@\"",
            "sh",
            &self.name,
            &super::runbook_bin().display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(args.iter().map(|s| s.to_string()));
        v.push("--state-dir".into());
        v.push(self.state.display().to_string());
        v
    }

    /// `runbook ARGS` on this host, its output piped, no stdin, its own config folder.
    pub fn runbook(&self, args: &[&str]) -> Command {
        let argv = self.argv(args);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env("XDG_CONFIG_HOME", &self.config)
            .env_remove("RUNBOOK_STORE")
            .env_remove("PGPASSFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// The same as one shell command line (for a tmux window), environment included.
    pub fn shell_line(&self, args: &[&str]) -> String {
        let words: Vec<String> = self.argv(args).iter().map(|w| quote(w)).collect();
        format!(
            "env -u RUNBOOK_STORE XDG_CONFIG_HOME={} TERM=tmux-256color LANG=C.UTF-8 {}",
            quote(&self.config.display().to_string()),
            words.join(" ")
        )
    }
}

/// A word for `sh`, in single quotes.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
