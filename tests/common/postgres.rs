//! A real PostgreSQL for the tests (Debian's `postgresql` package): a cluster `initdb`-ed in a
//! temporary folder, started on a free port on 127.0.0.1 as an unprivileged user (as root, the
//! system user `runbook-pg`, created when missing), with password authentication. Stopped and
//! removed when dropped.

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
        let pg = Postgres {
            port: super::free_port(),
            log: home.join("log"),
            data,
            bin,
            _dir: dir,
        };
        pg.start_again();
        pg.psql("postgres", "CREATE DATABASE runbook");
        pg
    }

    /// Starts the server (again), waiting until it takes connections.
    pub fn start_again(&self) {
        let out = as_service(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.data.display()
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

    /// `postgres://rb:PASSWORD@127.0.0.1:PORT/runbook?sslmode=disable`
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/runbook?sslmode=disable",
            self.port
        )
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
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
            ])
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
