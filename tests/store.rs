//! The shared store (SPEC §9) against a real PostgreSQL (`common::postgres`): two `runbook`
//! processes with state dirs of their own stand for two bastions. A run is copied whole (the
//! journal's lines and the step logs, masked, byte for byte); a store stopped mid-run is caught
//! up with nothing lost or doubled; a run whose driver was killed with SIGKILL, its state dir
//! gone, is rebuilt and resumed on "host B"; a driver whose lease was taken over starts nothing
//! more; a wrong password and a newer schema are refused with clear messages.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Fixture;
use common::postgres::Postgres;
use common::runs::{WAITING, finish, run_id, the_run, wait_for_soak};

/// `runbook ARGS` with a config folder of the test's own (so that nobody's config.toml counts).
fn runbook(fx: &Fixture, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(common::runbook_bin());
    cmd.args(args)
        .env("XDG_CONFIG_HOME", fx.file("config"))
        .env_remove("RUNBOOK_STORE")
        .env_remove("PGPASSFILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir(fx.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// How many migrations this binary has (`src/store/migrations/NNNN_*.sql`): its schema version.
fn migrations() -> usize {
    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".sql")
        })
        .count()
}

fn state(fx: &Fixture, host: &str) -> PathBuf {
    fx.file(&format!("state-{host}"))
}

#[test]
fn a_whole_run_is_copied_to_the_store_masked_as_written_locally() {
    let pg = Postgres::start();
    let fx = Fixture::new();
    let rb = fx.write(
        "rollout.toml",
        r#"
[runbook]
title = "Replicated rollout"

[secrets]
TOKEN = { env = "DEPLOY_TOKEN" }

[[phase]]
title = "Deploy"

[[phase.step]]
title = "Build"
run = "for i in $(seq 1 2000); do echo build line $i; done; echo token is $TOKEN"

[[phase.step]]
title = "Check"
run = "echo checked >&2"
"#,
    );
    let st = state(&fx, "a");
    let url = pg.url();
    let child = runbook(
        &fx,
        &[
            "run",
            rb.to_str().unwrap(),
            "--headless",
            "--state-dir",
            st.to_str().unwrap(),
            "--store",
            &url,
        ],
        &[("DEPLOY_TOKEN", "tok-9f8e7d")],
    )
    .spawn()
    .unwrap();
    let run = finish(child, Duration::from_secs(60));
    run.expect_code(0);
    let dir = the_run(&st);
    pg.assert_replicated(&dir);
    let everything = pg.psql(
        "runbook",
        "SELECT string_agg(line, '') FROM events UNION ALL SELECT string_agg(encode(data, 'escape'), '') FROM log_chunks",
    );
    assert!(
        everything.contains("token is"),
        "the step's output is in the store"
    );
    assert!(
        !everything.contains("tok-9f8e7d"),
        "the secret is masked in the store too"
    );
    let lease = pg.psql(
        "runbook",
        &format!(
            "SELECT epoch, operator <> '', pid > 0, expires_at <= now() FROM leases WHERE run_id = '{}'",
            run_id(&dir)
        ),
    );
    assert_eq!(
        lease.trim(),
        "1|t|t|t",
        "the lease was taken once and released at the end"
    );
    // The build log's chunk (25 KB) is stored compressed, with lz4 rather than the slower pglz.
    let compression = pg.psql(
        "runbook",
        "SELECT DISTINCT pg_column_compression(data) FROM log_chunks WHERE pg_column_compression(data) IS NOT NULL",
    );
    assert_eq!(compression.trim(), "lz4");
    let row = pg.psql("runbook", "SELECT runbook, title FROM runs");
    assert_eq!(row.trim(), "rollout|Replicated rollout");
    let version = pg.psql("runbook", "SELECT max(version) FROM schema_version");
    assert_eq!(version.trim(), migrations().to_string());
}

#[test]
fn wrong_password_missing_database_and_newer_schema_are_refused_clearly() {
    let pg = Postgres::start();
    let fx = Fixture::new();
    let rb = fx.write(
        "rb.toml",
        "[runbook]\ntitle = \"T\"\n[[phase]]\ntitle = \"P\"\n[[phase.step]]\ntitle = \"S\"\nrun = \"touch ran\"\n",
    );
    let st = state(&fx, "a");
    let try_with = |url: &str| {
        let child = runbook(
            &fx,
            &[
                "run",
                rb.to_str().unwrap(),
                "--headless",
                "--state-dir",
                st.to_str().unwrap(),
            ],
            &[("RUNBOOK_STORE", url)],
        )
        .spawn()
        .unwrap();
        finish(child, Duration::from_secs(30))
    };
    let wrong = pg.url().replace(common::postgres::PASSWORD, "not-the-password");
    let run = try_with(&wrong);
    run.expect_code(2);
    assert!(
        run.stderr.contains(&format!(
            "the store rb@127.0.0.1:{}/runbook refused the password of user rb",
            pg.port
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("RUNBOOK_STORE"),
        "says where the store was set: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("not-the-password"),
        "never shows the password"
    );

    let run = try_with(&pg.url().replace("/runbook?", "/nosuchdb?"));
    run.expect_code(2);
    assert!(
        run.stderr.contains("database nosuchdb does not exist"),
        "{}",
        run.stderr
    );

    // A store written by a newer runbook: refused, nothing written to it.
    try_with(&pg.url()).expect_code(0);
    pg.psql(
        "runbook",
        "INSERT INTO schema_version (version, by_runbook) VALUES (7, '9.0.0')",
    );
    let before = pg.psql("runbook", "SELECT count(*) FROM events");
    let run = try_with(&pg.url());
    run.expect_code(2);
    assert!(
        run.stderr.contains(&format!(
            "has schema version 7, newer than this runbook knows ({})",
            migrations()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(pg.psql("runbook", "SELECT count(*) FROM events"), before);
    assert_eq!(
        common::run_dirs(&st).len(),
        1,
        "only the run before the refusals started"
    );
}

#[test]
fn a_store_stopped_for_20s_mid_run_is_caught_up_with_nothing_lost_or_doubled() {
    let pg = Postgres::start();
    let fx = Fixture::new();
    // The store set in the config file, with a lease that outlasts the outage.
    pg.write_config(&fx, "60s");
    let rb = fx.write(
        "rb.toml",
        r#"
[runbook]
title = "Through an outage"
[[phase]]
title = "Work"
[[phase.step]]
title = "Slow output"
run = "for i in $(seq 1 60); do echo tick $i; sleep 0.5; done"
[[phase.step]]
title = "After"
run = "echo after the outage"
"#,
    );
    let st = state(&fx, "a");
    let child = runbook(
        &fx,
        &[
            "run",
            rb.to_str().unwrap(),
            "--headless",
            "--state-dir",
            st.to_str().unwrap(),
        ],
        &[],
    )
    .spawn()
    .unwrap();
    assert!(common::wait_for(Duration::from_secs(20), || {
        std::thread::sleep(Duration::from_millis(80));
        pg.try_psql("runbook", "SELECT count(*) FROM log_chunks")
            .is_ok_and(|n| n.trim() != "0")
    }));
    pg.stop();
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(20));
    let dir = the_run(&st);
    let during = common::postgres::local_lines(&dir).len();
    pg.start_again();
    let run = finish(child, Duration::from_secs(90));
    run.expect_code(0);
    assert!(stopped.elapsed() >= Duration::from_secs(20));
    // The headless lines said how far behind the store was, and that it caught up.
    assert!(run.stdout.contains("store behind since"), "{}", run.stdout);
    assert!(
        run.stdout.contains("the shared store has caught up"),
        "{}",
        run.stdout
    );
    let j = common::journal_json(&dir.join("journal.jsonl"));
    let names = common::event_names(&j);
    assert!(names.contains(&"store_behind".to_string()), "{names:?}");
    assert!(names.contains(&"store_caught_up".to_string()), "{names:?}");
    let behind = common::event(&j, "store_behind");
    assert!(behind["bytes"].as_u64().unwrap() > 0, "{behind}");
    let ticks = std::fs::read_to_string(dir.join("logs/work--slow-output--1.log")).unwrap();
    assert_eq!(ticks.lines().count(), 60, "the step ran through the outage");
    assert!(
        during < common::postgres::local_lines(&dir).len(),
        "the run went on while the store was down"
    );
    pg.assert_replicated(&dir);
}

#[test]
fn resume_on_host_b_after_kill_9_of_the_driver_on_host_a_and_its_state_dir_gone() {
    let pg = Postgres::start();
    let fx = Fixture::new();
    pg.write_config(&fx, "3s");
    let rb = fx.write("rb.toml", WAITING);
    let (a, b) = (state(&fx, "a"), state(&fx, "b"));
    let mut driver = runbook(
        &fx,
        &[
            "run",
            rb.to_str().unwrap(),
            "--headless",
            "--yes",
            "--state-dir",
            a.to_str().unwrap(),
        ],
        &[],
    )
    .spawn()
    .unwrap();
    wait_for_soak(&pg);
    let dir_a = the_run(&a);
    let first_log = std::fs::read(dir_a.join("logs/deploy--first--1.log")).unwrap();
    let id = run_id(&dir_a);
    // Host A dies: its runbook killed outright, its disk gone.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(driver.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = driver.wait();
    std::fs::remove_dir_all(&a).unwrap();

    let child = runbook(
        &fx,
        &[
            "resume",
            &id,
            "--headless",
            "--yes",
            "--var",
            "w=1s",
            "--state-dir",
            b.to_str().unwrap(),
        ],
        &[],
    )
    .spawn()
    .unwrap();
    let run = finish(child, Duration::from_secs(60));
    run.expect_code(0);
    assert!(run.stderr.contains("rebuilt"), "{}", run.stderr);
    let dir_b = b.join("runs").join(&id);
    assert_eq!(the_run(&b), dir_b, "the run keeps its id on host B");
    assert_eq!(
        std::fs::read(dir_b.join("logs/deploy--first--1.log")).unwrap(),
        first_log,
        "the log of the step run on A is rebuilt on B"
    );
    let j = common::journal_json(&dir_b.join("journal.jsonl"));
    let trace = common::step_trace(&j);
    assert!(
        trace.iter().any(|s| s.contains("third")),
        "B went on to the end: {trace:?}"
    );
    let runs = common::events(&j, "run_started");
    assert_eq!(runs.len(), 2, "A's start and B's resume");
    assert_eq!(runs[1]["mode"], "resume");
    assert_eq!(
        common::events(&j, "step_finished")
            .iter()
            .filter(|e| e["step"] == "first")
            .count(),
        1,
        "the first step, done on A, is not run again"
    );
    assert_eq!(fx.read("third-ran-in").lines().count(), 1);
    pg.assert_replicated(&dir_b);
    let epochs = pg.psql(
        "runbook",
        &format!("SELECT DISTINCT epoch FROM events WHERE run_id = '{id}' ORDER BY epoch"),
    );
    assert_eq!(epochs.trim(), "1\n2", "A wrote under epoch 1, B under 2");
}

#[test]
fn a_driver_fenced_by_a_newer_lease_starts_nothing_more_and_says_who_took_over() {
    let pg = Postgres::start();
    let fx = Fixture::new();
    pg.write_config(&fx, "3s");
    let rb = fx.write("rb.toml", WAITING);
    let (a, b) = (state(&fx, "a"), state(&fx, "b"));
    let old = runbook(
        &fx,
        &[
            "run",
            rb.to_str().unwrap(),
            "--headless",
            "--yes",
            "--var",
            "w=6s",
            "--state-dir",
            a.to_str().unwrap(),
        ],
        &[],
    )
    .spawn()
    .unwrap();
    wait_for_soak(&pg);
    let id = run_id(&the_run(&a));
    // Driver A freezes (a partition, a stopped VM) past its lease; B takes the run over.
    let pid = nix::unistd::Pid::from_raw(old.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let child = runbook(
        &fx,
        &[
            "resume",
            &id,
            "--headless",
            "--yes",
            "--var",
            "w=1s",
            "--state-dir",
            b.to_str().unwrap(),
        ],
        &[],
    )
    .spawn()
    .unwrap();
    let new = finish(child, Duration::from_secs(60));
    new.expect_code(0);
    // A wakes up after its watch has passed: it must not start the third step.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let old = finish(old, Duration::from_secs(60));
    // The run is B's now, as after a hand-over: A ends without ending the run (exit 0).
    old.expect_code(0);
    assert!(
        old.stdout.contains("took over this run") || old.stderr.contains("took over this run"),
        "A says who took over:\n{}\n{}",
        old.stdout,
        old.stderr
    );
    let ran: Vec<String> = fx.read("third-ran-in").lines().map(str::to_string).collect();
    assert_eq!(ran.len(), 1, "only B ran the third step: {ran:?}");
    assert!(ran[0].contains("state-b"), "{ran:?}");
    let j = common::journal_json(&the_run(&a).join("journal.jsonl"));
    assert!(
        common::events(&j, "store_fenced").len() == 1,
        "A journaled that it was fenced: {:?}",
        common::event_names(&j)
    );
    assert!(common::started(&j).iter().all(|s| !s.contains("third")));
    // Nothing A wrote after B took over reached the store.
    let late = pg.psql(
        "runbook",
        &format!(
            "SELECT count(*) FROM events e WHERE run_id = '{id}' AND epoch = 1 AND seq > \
             (SELECT min(seq) FROM events WHERE run_id = '{id}' AND epoch = 2)"
        ),
    );
    assert_eq!(late.trim(), "0");
    pg.assert_replicated(&b.join("runs").join(&id));
}

/// `openssl ARGS` in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME-ca.pem`) and, signed by it, a certificate for 127.0.0.1 (`NAME.pem`, `NAME.key`).
fn certificates(dir: &Path, name: &str) {
    let ca = format!("{name}-ca");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[test]
fn sslmode_is_honoured_over_rustls() {
    let pg = Postgres::start();
    let fx = Fixture::new();
    certificates(fx.path(), "server");
    certificates(fx.path(), "stranger");
    pg.require_tls(&fx.file("server.pem"), &fx.file("server.key"));
    let rb = fx.write(
        "rb.toml",
        "[runbook]\ntitle = \"T\"\n[[phase]]\ntitle = \"P\"\n[[phase.step]]\ntitle = \"S\"\nrun = \"echo over tls\"\n",
    );
    let st = state(&fx, "a");
    let try_with = |url: &str| {
        let child = runbook(
            &fx,
            &[
                "run",
                rb.to_str().unwrap(),
                "--headless",
                "--state-dir",
                st.to_str().unwrap(),
                "--store",
                url,
            ],
            &[],
        )
        .spawn()
        .unwrap();
        finish(child, Duration::from_secs(30))
    };
    // The server takes TLS connections only: without TLS, it says no.
    let run = try_with(&pg.url_with("sslmode=disable"));
    run.expect_code(2);
    assert!(run.stderr.contains("does not let user rb in"), "{}", run.stderr);
    // require: encrypted, the certificate not checked.
    try_with(&pg.url_with("sslmode=require")).expect_code(0);
    // verify-full: the certificate must chain to sslrootcert and name the host.
    let good = format!(
        "sslmode=verify-full&sslrootcert={}",
        fx.file("server-ca.pem").display()
    );
    try_with(&pg.url_with(&good)).expect_code(0);
    let bad = format!(
        "sslmode=verify-full&sslrootcert={}",
        fx.file("stranger-ca.pem").display()
    );
    let run = try_with(&pg.url_with(&bad));
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("showed a TLS certificate that sslmode=verify-full does not accept"),
        "{}",
        run.stderr
    );
    let ssl = pg.psql("runbook", "SELECT count(*) FROM events");
    assert!(
        ssl.trim().parse::<u32>().unwrap() >= 8,
        "two runs went through TLS: {ssl}"
    );
}

#[test]
fn the_password_comes_from_pgpassfile_or_a_password_file_and_a_readable_pgpassfile_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let pg = Postgres::start();
    let fx = Fixture::new();
    let rb = fx.write(
        "rb.toml",
        "[runbook]\ntitle = \"T\"\n[[phase]]\ntitle = \"P\"\n[[phase.step]]\ntitle = \"S\"\nrun = \"true\"\n",
    );
    let st = state(&fx, "a");
    let bare = format!("postgres://rb@127.0.0.1:{}/runbook?sslmode=disable", pg.port);
    let try_with = |env: &[(&str, &str)]| {
        let child = runbook(
            &fx,
            &[
                "run",
                rb.to_str().unwrap(),
                "--headless",
                "--state-dir",
                st.to_str().unwrap(),
                "--store",
                &bare,
            ],
            env,
        )
        .spawn()
        .unwrap();
        finish(child, Duration::from_secs(30))
    };
    let pass = fx.write(
        "pgpass",
        &format!(
            "otherhost:*:*:*:wrong\n127.0.0.1:{}:runbook:rb:{}\n",
            pg.port,
            common::postgres::PASSWORD
        ),
    );
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    try_with(&[("PGPASSFILE", pass.to_str().unwrap())]).expect_code(0);
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = try_with(&[("PGPASSFILE", pass.to_str().unwrap())]);
    run.expect_code(2);
    assert!(run.stderr.contains("can be read by others"), "{}", run.stderr);
    let file = fx.write("store-password", &format!("{}\n", common::postgres::PASSWORD));
    try_with(&[("RUNBOOK_STORE_PASSWORD_FILE", file.to_str().unwrap())]).expect_code(0);
    let run = try_with(&[("HOME", fx.path().to_str().unwrap())]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("asks for user rb's password"),
        "{}",
        run.stderr
    );
    assert_eq!(
        common::run_dirs(&st).len(),
        2,
        "the two runs with a password ran, the others did not"
    );
}

#[test]
fn a_resume_on_host_b_fences_the_old_epoch_before_it_rebuilds_so_a_late_catch_up_of_host_a_adds_nothing() {
    let pg = Postgres::start();
    let fx = Fixture::new();
    pg.write_config(&fx, "3s");
    let rb = fx.write(
        "rb.toml",
        r#"
[runbook]
title = "Late"
[[phase]]
title = "Work"
[[phase.step]]
title = "Chatty"
run = "for i in $(seq 1 30); do echo line $i; sleep 0.1; done"
[[phase.step]]
title = "Soak"
watch = "5m"
"#,
    );
    let (a, b) = (state(&fx, "a"), state(&fx, "b"));
    // Killed if the test fails midway.
    let mut old = common::runs::Running(
        runbook(
            &fx,
            &[
                "run",
                rb.to_str().unwrap(),
                "--headless",
                "--state-dir",
                a.to_str().unwrap(),
            ],
            &[],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    pg.wait_for(
        "SELECT count(*) > 0 FROM log_chunks",
        "t",
        Duration::from_secs(30),
    );
    // The store goes away while A writes; A ends the step (and holds, without its lease), then
    // dies with lines the store never had (its folder marked), and its lease runs out.
    pg.stop();
    let dir_a = the_run(&a);
    let id = run_id(&dir_a);
    assert!(common::wait_for(Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(100));
        !common::events(&common::run_journal(&dir_a), "step_finished").is_empty()
    }));
    old.kill().unwrap();
    old.wait().unwrap();
    assert!(dir_a.join("store-copy").exists(), "A's copy was left unfinished");
    pg.start_again();
    pg.wait_for(
        &format!("SELECT expires_at < now() FROM leases WHERE run_id = '{id}'"),
        "t",
        Duration::from_secs(15),
    );
    // B gets as far as rebuilding the run from the store for its resume: here, in this process,
    // which then stays where a slow rebuild would be while A comes back.
    let dir_b = b.join("runs").join(&id);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = runbook::store::from_settings(Some(&pg.url()))
            .await
            .unwrap()
            .expect("a store");
        runbook::store::prepare_resume(Some(&store), Some(&dir_b), Some(&id), &b)
            .await
            .unwrap();
    });
    let rebuilt = common::postgres::local_lines(&dir_b);
    // A comes back: its next runbook catches up what the store lacks of its runs. Not this one:
    // B holds it under a newer epoch, taken before the rebuild.
    let other = fx.write("other.toml", common::runs::ANOTHER_RUN);
    let next = finish(
        runbook(
            &fx,
            &[
                "run",
                other.to_str().unwrap(),
                "--headless",
                "--state-dir",
                a.to_str().unwrap(),
            ],
            &[],
        )
        .spawn()
        .unwrap(),
        Duration::from_secs(60),
    );
    next.expect_code(0);
    assert_eq!(
        pg.lines_of(&id),
        rebuilt,
        "the store holds what B rebuilt its folder from, nothing of A's after it:\n{}",
        next.stderr
    );
    assert!(
        common::postgres::local_lines(&dir_a).len() > rebuilt.len(),
        "A had lines the store lacked"
    );
    assert!(next.stderr.contains("were not copied"), "{}", next.stderr);
}
