//! The shared store as the terminal UI shows it: the real binary in tmux at 80×24 without colour,
//! against a real PostgreSQL (`common::postgres`). The header's STORE BEHIND follows the copy also
//! once the run has ended and the screen stays open: when the store comes back and takes the rest,
//! the header says so, rather than showing a backlog that is gone.

mod common;

use std::time::Duration;

use common::Fixture;
use common::postgres::Postgres;
use common::tmux::TmuxServer;

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
    let tmux = TmuxServer::new("store-tui");
    tmux.ok(&["new-session", "-d", "-s", "run", "-x", "80", "-y", "24", &command]);
    let header = |s: &str| s.lines().next().unwrap_or_default().to_string();
    pg.wait_for(
        "SELECT count(*) > 0 FROM log_chunks",
        "t",
        Duration::from_secs(30),
    );
    // The store goes away while the step writes: the header says how far behind it is.
    pg.stop();
    tmux.wait_screen(
        "run",
        "STORE BEHIND in the header",
        Duration::from_secs(20),
        |s| header(s).contains("STORE BEHIND"),
    );
    // The run ends with the store still away; the screen stays, saying so.
    tmux.wait_screen("run", "the run's end", Duration::from_secs(30), |s| {
        header(s).contains("SUCCEEDED") && header(s).contains("STORE BEHIND")
    });
    // The store returns: the copy catches up, and the header no longer shows a backlog.
    pg.start_again();
    let screen = tmux.wait_screen("run", "STORE BEHIND gone", Duration::from_secs(20), |s| {
        header(s).contains("SUCCEEDED") && !s.contains("STORE BEHIND")
    });
    assert!(!screen.contains("EXIT="), "the screen is still open:\n{screen}");
    tmux.keys("run", &["q"]);
    let screen = tmux.wait_screen("run", "the exit", Duration::from_secs(20), |s| {
        s.contains("EXIT=")
    });
    assert!(screen.contains("EXIT=0"), "{screen}");
    let dir = common::run_dirs(&state).pop().unwrap();
    pg.assert_replicated(&dir);
}

#[test]
fn a_driver_that_cannot_renew_its_lease_says_so_in_the_header_and_starts_the_next_step_once_renewed() {
    let pg = Postgres::start();
    let fx = Fixture::new();
    pg.write_config(&fx, "3s");
    let rb = fx.write(
        "rb.toml",
        r#"
[runbook]
title = "Lease"
[[phase]]
title = "Work"
[[phase.step]]
title = "Slow"
run = "for i in $(seq 1 12); do echo tick $i; sleep 0.5; done"
[[phase.step]]
title = "Next"
run = "echo next > next-ran"
"#,
    );
    let state = fx.file("state");
    let command = format!(
        "env NO_COLOR=1 XDG_CONFIG_HOME={} {} run {} --state-dir {}; echo EXIT=$?; sleep 600",
        fx.file("config").display(),
        common::runbook_bin().display(),
        rb.display(),
        state.display(),
    );
    let tmux = TmuxServer::new("store-lease");
    tmux.ok(&["new-session", "-d", "-s", "run", "-x", "80", "-y", "24", &command]);
    let header = |s: &str| s.lines().next().unwrap_or_default().to_string();
    pg.wait_for(
        "SELECT count(*) > 0 FROM log_chunks",
        "t",
        Duration::from_secs(30),
    );
    // The store goes: renewals fail, and two thirds of the lease later nothing more starts.
    pg.stop();
    let screen = tmux.wait_screen("run", "the hold in the header", Duration::from_secs(20), |s| {
        header(s).contains("NO STORE LEASE: HOLDING")
    });
    assert!(!fx.exists("next-ran"), "{screen}");
    // The step in flight finishes; the next one waits.
    let screen = tmux.wait_screen("run", "the slow step's end", Duration::from_secs(20), |s| {
        s.contains("succeeded") && header(s).contains("NO STORE LEASE: HOLDING")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(!fx.exists("next-ran"), "{screen}");
    // The store returns: the lease is renewed, the next step runs, the run ends.
    pg.start_again();
    let screen = tmux.wait_screen("run", "the run's end", Duration::from_secs(30), |s| {
        header(s).contains("SUCCEEDED")
    });
    assert!(!header(&screen).contains("NO STORE LEASE"), "{screen}");
    assert!(fx.exists("next-ran"));
    tmux.keys("run", &["q"]);
    tmux.wait_screen("run", "the exit", Duration::from_secs(20), |s| {
        s.contains("EXIT=0")
    });
}
