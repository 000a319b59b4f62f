//! A real PostgreSQL for the tests (Debian's `postgresql` package): a cluster `initdb`-ed in a
//! temporary folder, started on a free port on 127.0.0.1 as an unprivileged user (as root, the
//! system user `runbook-pg`, created when missing), with password authentication. Stopped and
//! removed when dropped. `start_in` starts it in a network namespace instead (`common::netns`),
//! listening on that namespace's address; the test then reaches it through its Unix socket.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The role the tests connect as, and its password.
pub const USER: &str = "rb";
pub const PASSWORD: &str = "s3cret-store-pw";
/// The system user the server runs as when the tests run as root.
const SERVICE_USER: &str = "runbook-pg";

pub struct Postgres {
    _dir: tempfile::TempDir,
    pub data: PathBuf,
    pub port: u16,
    bin: PathBuf,
    log: PathBuf,
    /// The network namespace it runs in, if not the test's own.
    netns: Option<String>,
    /// The address it listens on (and the clients' network, for `pg_hba.conf`).
    listen: String,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (/usr/lib/postgresql; .ci/run installs the postgresql package)")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// A command run as the service user (as root), else as ourselves; in `netns` if given.
fn as_service_in(netns: Option<&str>, program: &Path) -> Command {
    if let Some(ns) = netns {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, "runuser", "-u", SERVICE_USER, "--"])
            .arg(program);
        return c;
    }
    as_service(program)
}

/// A command run as the service user (as root), else as ourselves.
fn as_service(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", SERVICE_USER, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn ensure_service_user() {
    if !is_root() {
        return;
    }
    let known = Command::new("id")
        .arg(SERVICE_USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !known {
        // Several test binaries may race to create it: whoever loses finds it there.
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ])
            .stderr(Stdio::null())
            .status();
    }
    let ok = Command::new("id")
        .arg(SERVICE_USER)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "could not create the system user {SERVICE_USER}");
}

impl Postgres {
    /// A new cluster with the role `rb` (password `PASSWORD`) and the database `runbook`, running.
    pub fn start() -> Postgres {
        Postgres::start_on(None, "127.0.0.1")
    }

    /// `start`, in the network namespace `netns` (tests run as root), listening on `addr` and
    /// letting in clients of its /24.
    pub fn start_in(netns: &str, addr: &str) -> Postgres {
        Postgres::start_on(Some(netns.to_string()), addr)
    }

    fn start_on(netns: Option<String>, listen: &str) -> Postgres {
        use std::os::unix::fs::PermissionsExt as _;
        ensure_service_user();
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("runbook-pg-")
            .tempdir()
            .expect("temp dir");
        // The service user must reach its folder inside ours.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let home = dir.path().join("pg");
        std::fs::create_dir(&home).unwrap();
        let pwfile = home.join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", SERVICE_USER])
                .arg(&home)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = home.join("data");
        let out = as_service(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "scram-sha-256", "-U", USER, "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .current_dir(&home)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if netns.is_some() {
            use std::io::Write as _;
            let net = listen.rsplit_once('.').map_or(listen, |(n, _)| n);
            let mut hba = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("pg_hba.conf"))
                .unwrap();
            writeln!(hba, "host all all {net}.0/24 scram-sha-256").unwrap();
        }
        let pg = Postgres {
            // A namespace of its own has all its ports free.
            port: if netns.is_some() { 5432 } else { super::free_port() },
            log: home.join("log"),
            data,
            bin,
            _dir: dir,
            netns,
            listen: listen.to_string(),
        };
        pg.start_again();
        pg.psql("postgres", "CREATE DATABASE runbook");
        pg
    }

    /// Starts the server (again), waiting until it takes connections.
    pub fn start_again(&self) {
        let out = as_service_in(self.netns.as_deref(), &self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses={} -c fsync=off",
                self.port,
                self.data.display(),
                self.listen
            ))
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "30", "start"])
            .current_dir(self.data.parent().unwrap())
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Serves TLS only (`hostssl` for every client) with `cert`/`key` (PEM), and restarts.
    pub fn require_tls(&self, cert: &Path, key: &Path) {
        use std::io::Write as _;
        let home = self.data.parent().unwrap();
        for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
            std::fs::copy(from, self.data.join(to)).unwrap();
        }
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .unwrap();
        writeln!(
            conf,
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'"
        )
        .unwrap();
        std::fs::write(
            self.data.join("pg_hba.conf"),
            "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", SERVICE_USER])
                .arg(&self.data)
                .status()
                .unwrap();
            assert!(status.success());
        }
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            self.data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let _ = home;
        self.stop();
        self.start_again();
    }

    /// Stops the server at once (as a crash or a lost host would: no goodbye to clients).
    pub fn stop(&self) {
        let _ = as_service(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .current_dir(self.data.parent().unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// `postgres://rb:PASSWORD@127.0.0.1:PORT/runbook?sslmode=disable` (its address, in a namespace)
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@{}:{}/runbook?sslmode=disable",
            self.listen, self.port
        )
    }

    /// `config.toml` naming this store with a lease of `lease`, in the fixture's
    /// `config/runbook/` (the tests set `XDG_CONFIG_HOME` to the fixture's `config`).
    pub fn write_config(&self, fx: &super::Fixture, lease: &str) {
        std::fs::create_dir_all(fx.file("config/runbook")).unwrap();
        std::fs::write(
            fx.file("config/runbook/config.toml"),
            format!("store = \"{}\"\nstore_lease = \"{lease}\"\n", self.url()),
        )
        .unwrap();
    }

    /// `url()` with another `sslmode` (and whatever else goes after it, e.g. `&sslrootcert=…`).
    pub fn url_with(&self, ssl: &str) -> String {
        self.url().replace("sslmode=disable", ssl)
    }

    /// Runs SQL with psql against `db`; returns its unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql failed ({sql}): {e}"))
    }

    /// `psql`, with its error instead of a panic.
    pub fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        // In a namespace of its own, through its Unix socket (which no network cut touches).
        let host = match &self.netns {
            Some(_) => self.data.display().to_string(),
            None => "127.0.0.1".to_string(),
        };
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", &host, "-p", &self.port.to_string(), "-U", USER, "-d", db])
            .args(["-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .env("PGSSLMODE", "prefer")
            .output()
            .expect("run psql");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Waits until `sql` returns `want` (trimmed), or panics after `limit`. Errors (the tables
    /// not there yet) count as not yet.
    pub fn wait_for(&self, sql: &str, want: &str, limit: Duration) {
        let ok = super::wait_for(limit, || {
            std::thread::sleep(Duration::from_millis(80));
            self.try_psql("runbook", sql).is_ok_and(|o| o.trim() == want)
        });
        assert!(
            ok,
            "{sql} did not return {want} within {limit:?}: {}",
            self.psql("runbook", sql)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the store holds of runs, and whether it is exactly what a run folder holds.
impl Postgres {
    /// The journal lines of a run in the store, in order.
    pub fn lines_of(&self, run: &str) -> Vec<String> {
        let out = self.psql(
            "runbook",
            &format!("SELECT line FROM events WHERE run_id = '{run}' ORDER BY seq"),
        );
        out.lines().map(str::to_string).collect()
    }

    /// A log of a run in the store, put together from its chunks (hex, so bytes stay bytes).
    pub fn log_of(&self, run: &str, log: &str) -> Vec<u8> {
        let out = self.psql(
            "runbook",
            &format!(
                "SELECT encode(data, 'hex') FROM log_chunks WHERE run_id = '{run}' AND log = '{log}' ORDER BY \"offset\""
            ),
        );
        out.lines().flat_map(|l| hex(l.trim())).collect()
    }

    /// Every local journal line and log of the run folder `dir` is in the store, exactly, once.
    pub fn assert_replicated(&self, dir: &Path) {
        let run = dir.file_name().unwrap().to_string_lossy().into_owned();
        let local = local_lines(dir);
        assert!(!local.is_empty());
        let stored = self.lines_of(&run);
        assert_eq!(stored, local, "the store's events are the local journal's lines");
        let logs = local_logs(dir);
        assert!(!logs.is_empty(), "the run wrote logs");
        for (log, bytes) in logs {
            assert_eq!(self.log_of(&run, &log), bytes, "{log} in the store");
        }
        let seqs = self.psql(
            "runbook",
            &format!(
                "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM events WHERE run_id = '{run}'"
            ),
        );
        let n = local.len();
        assert_eq!(seqs.trim(), format!("{n}|{n}|1|{n}"));
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// The journal lines of a run folder.
pub fn local_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The `.log` files of a run folder, by their path in it.
pub fn local_logs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut logs: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| {
            (
                format!("logs/{}", e.file_name().to_string_lossy()),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    logs.sort();
    logs
}
