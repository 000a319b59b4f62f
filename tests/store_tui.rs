//! The shared store as the terminal UI shows it: the real binary in tmux at 80×24 without colour,
//! against a real PostgreSQL (`common::postgres`). The header's STORE BEHIND follows the copy also
//! once the run has ended and the screen stays open: when the store comes back and takes the rest,
//! the header says so, rather than showing a backlog that is gone.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Fixture;
use common::postgres::Postgres;
use common::runs::{WAITING, run_id, spawn_logged, the_run, wait_exit, wait_for_soak};
use common::tmux::TmuxServer;

/// `runbook run FILE --state-dir STATE EXTRA…` on its terminal UI in a new 80×24 tmux session
/// without colour, with the fixture's `config.toml` (whose store and lease `write_config` set);
/// `EXIT=<status>` is printed when it ends.
fn start_tui(fx: &Fixture, name: &str, rb: &Path, state: &Path, extra: &str) -> TmuxServer {
    let command = format!(
        "env NO_COLOR=1 XDG_CONFIG_HOME={} {} run {} --state-dir {}{extra}; echo EXIT=$?; sleep 600",
        fx.file("config").display(),
        common::runbook_bin().display(),
        rb.display(),
        state.display(),
    );
    let tmux = TmuxServer::new(name);
    tmux.ok(&["new-session", "-d", "-s", "run", "-x", "80", "-y", "24", &command]);
    tmux
}

/// The first line of a screen: the header.
fn header(screen: &str) -> String {
    screen.lines().next().unwrap_or_default().to_string()
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
    let tmux = start_tui(&fx, "store-tui", &rb, &state, &format!(" --store '{}'", pg.url()));
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
    let tmux = start_tui(&fx, "store-lease", &rb, &state, "");
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

#[test]
fn a_driver_fenced_in_a_long_watch_stops_it_at_once_and_its_screen_watches_the_new_driver() {
    let pg = Postgres::start();
    let fx = Fixture::new();
    pg.write_config(&fx, "3s");
    let rb = fx.write("rb.toml", WAITING);
    let (a, b) = (fx.file("state-a"), fx.file("state-b"));
    let tmux = start_tui(&fx, "store-fence", &rb, &a, "");
    wait_for_soak(&pg);
    let dir = the_run(&a);
    let id = run_id(&dir);
    let pid = common::event(&common::run_journal(&dir), "run_started")["pid"]
        .as_i64()
        .unwrap() as i32;
    // A freezes (a stopped VM, a partition) past its lease, in a five-minute watch; B resumes
    // the run from the store under a newer lease, and watches for 20 s.
    let pid = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let mut resume = std::process::Command::new(common::runbook_bin());
    resume
        .args([
            "resume",
            &id,
            "--headless",
            "--yes",
            "--var",
            "w=20s",
            "--state-dir",
        ])
        .arg(&b)
        .env("XDG_CONFIG_HOME", fx.file("config"))
        .current_dir(fx.path())
        .stdin(std::process::Stdio::null());
    // Killed if the test fails midway.
    let said = fx.file("b.out");
    let mut new = spawn_logged(resume, &said);
    // B holds the run once its first line is in the store under epoch 2 (a loaded machine may
    // take a while to start it; if B gave up, what it said is the failure).
    let took = common::wait_for(Duration::from_secs(90), || {
        std::thread::sleep(Duration::from_millis(200));
        if let Ok(Some(status)) = new.try_wait() {
            panic!("B ended before it held the run: {status:?}\n{}", fx.read("b.out"));
        }
        pg.psql(
            "runbook",
            &format!("SELECT count(*) > 0 FROM events WHERE run_id = '{id}' AND epoch = 2"),
        )
        .trim()
            == "t"
    });
    assert!(took, "B's lines never reached the store under epoch 2");
    // A comes back: at its next renewal it finds itself fenced, ends its own watch then and
    // there, and its screen goes on watching the run B drives, through the store.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let screen = tmux.wait_screen("run", "A watching B's run", Duration::from_secs(15), |s| {
        header(s).contains("WATCHING via store")
    });
    assert!(
        header(&screen).contains("drives") && !header(&screen).contains("ended"),
        "A watches while B is still in its 20 s watch:\n{screen}"
    );
    assert_eq!(wait_exit(new), Some(0), "{}", fx.read("b.out"));
    tmux.wait_screen("run", "the run's end", Duration::from_secs(20), |s| {
        header(s).contains("SUCCEEDED")
    });
    tmux.keys("run", &["q"]);
    let screen = tmux.wait_screen("run", "the exit", Duration::from_secs(20), |s| {
        s.contains("EXIT=")
    });
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(screen.contains("drives this run now"), "{screen}");
    let j = common::run_journal(&dir);
    assert_eq!(common::events(&j, "store_fenced").len(), 1, "{j:#?}");
    assert!(common::started(&j).iter().all(|s| !s.contains("third")));
    let ran = fx.read("third-ran-in");
    assert_eq!(ran.lines().count(), 1, "{ran}");
    assert!(ran.contains("state-b"), "{ran}");
}
