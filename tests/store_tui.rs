//! The shared store as the terminal UI shows it: the real binary in tmux at 80×24 without colour,
//! against a real PostgreSQL (`common::postgres`). The header's STORE BEHIND follows the copy also
//! once the run has ended and the screen stays open: when the store comes back and takes the rest,
//! the header says so, rather than showing a backlog that is gone.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Fixture;
use common::postgres::Postgres;

/// A tmux server of the test's own, killed when dropped (a failing test included).
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let socket = format!("runbook-store-tui-{}", std::process::id());
        let status = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-x", "80", "-y", "24"])
            .arg(command)
            .status()
            .expect("tmux runs (.ci/run installs it)");
        assert!(status.success());
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `cond`, or panics showing it.
    fn wait(&self, what: &str, limit: Duration, cond: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let ok = common::wait_for(limit, || {
            std::thread::sleep(Duration::from_millis(100));
            last = self.screen();
            cond(&last)
        });
        assert!(ok, "{what} within {limit:?}; the screen:\n{last}");
        last
    }

    fn keys(&self, keys: &str) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", keys])
            .status();
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[test]
fn store_behind_leaves_the_header_when_the_store_catches_up_after_the_run_ended() {
    let pg = Postgres::start();
    let fx = Fixture::new();
    let rb = fx.write(
        "rb.toml",
        r#"
[runbook]
title = "Header"
[[phase]]
title = "Work"
[[phase.step]]
title = "Chatty"
run = "for i in $(seq 1 25); do echo line $i; sleep 0.2; done"
"#,
    );
    let state = fx.file("state");
    let command = format!(
        "env NO_COLOR=1 XDG_CONFIG_HOME={} {} run {} --state-dir {} --store '{}'; echo EXIT=$?; sleep 600",
        fx.file("config").display(),
        common::runbook_bin().display(),
        rb.display(),
        state.display(),
        pg.url()
    );
    let tmux = Tmux::start(&command);
    pg.wait_for(
        "SELECT count(*) > 0 FROM log_chunks",
        "t",
        Duration::from_secs(30),
    );
    // The store goes away while the step writes: the header says how far behind it is.
    pg.stop();
    tmux.wait("STORE BEHIND in the header", Duration::from_secs(20), |s| {
        s.lines().next().is_some_and(|l| l.contains("STORE BEHIND"))
    });
    // The run ends with the store still away; the screen stays, saying so.
    tmux.wait("the run's end", Duration::from_secs(30), |s| {
        s.contains("SUCCEEDED") && s.lines().next().is_some_and(|l| l.contains("STORE BEHIND"))
    });
    // The store returns: the copy catches up, and the header no longer shows a backlog.
    pg.start_again();
    let screen = tmux.wait("STORE BEHIND gone", Duration::from_secs(20), |s| {
        s.contains("SUCCEEDED") && !s.contains("STORE BEHIND")
    });
    assert!(!screen.contains("EXIT="), "the screen is still open:\n{screen}");
    tmux.keys("q");
    let screen = tmux.wait("the exit", Duration::from_secs(20), |s| s.contains("EXIT="));
    assert!(screen.contains("EXIT=0"), "{screen}");
    let dir = common::run_dirs(&state).pop().unwrap();
    pg.assert_replicated(&dir);
}
