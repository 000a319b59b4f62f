//! A tmux server of a test's own (`tmux -L NAME -f /dev/null`), for the tests that drive the real
//! binary in a terminal the way an operator does: commands to the server, a pane's screen, keys,
//! and waiting for a screen that has settled. The server is killed when dropped. tmux must be
//! installed (`.ci/run` installs it): without it a test fails and says so, it never skips.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SERVERS: AtomicUsize = AtomicUsize::new(0);

/// One tmux server; nothing runs on it until a session is made (`ok(&["new-session", ...])`).
pub struct TmuxServer {
    socket: String,
}

impl TmuxServer {
    /// A server named `runbook-TAG-PID-N`, unique among the tests running at once.
    pub fn new(tag: &str) -> TmuxServer {
        match Command::new("tmux").arg("-V").output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "`tmux -V` failed ({}): these tests need tmux; .ci/run installs it (apt-get install tmux)",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!(
                "tmux is not installed ({e}): these tests need it; .ci/run installs it (apt-get install tmux)"
            ),
        }
        let n = SERVERS.fetch_add(1, Ordering::Relaxed);
        TmuxServer {
            socket: format!("runbook-{tag}-{}-{n}", std::process::id()),
        }
    }

    /// The server's name, as `tmux -L` takes it.
    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// `tmux ARGS` on this server, not yet run (to add environment or arguments).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.env_remove("TMUX")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args);
        c
    }

    /// `tmux ARGS` on this server, run.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run tmux")
    }

    /// `tmux ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The visible screen of pane `target`, as text.
    pub fn screen(&self, target: &str) -> String {
        self.ok(&["capture-pane", "-p", "-t", target])
    }

    /// Keys sent to pane `target` (tmux's names: `Enter`, `C-c`, or text).
    pub fn keys(&self, target: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", target];
        args.extend_from_slice(keys);
        self.ok(&args);
    }

    /// Polls the screen of `target` until `ok` holds, then returns it; panics with the last
    /// screen after `limit`. A capture can land in the middle of a frame being drawn: only a
    /// screen that stays the same a moment later is taken as what the operator sees.
    pub fn wait_screen(
        &self,
        target: &str,
        what: &str,
        limit: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen(target);
            if ok(&s) {
                std::thread::sleep(Duration::from_millis(40));
                if self.screen(target) == s {
                    return s;
                }
                continue;
            }
            if start.elapsed() > limit {
                panic!("timed out after {limit:?} waiting for {what} on {target}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server (and so hangs up on whatever runs in it).
    pub fn kill(&self) {
        let _ = self.run(&["kill-server"]);
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        self.kill();
    }
}
