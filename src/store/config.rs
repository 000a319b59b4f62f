//! Which store, if any: `--store URL`, else `RUNBOOK_STORE`, else `store = "URL"` in
//! `$XDG_CONFIG_HOME/runbook/config.toml` (`~/.config/runbook/config.toml`). Also where the
//! password comes from (the URL, a password file, or `PGPASSFILE`/`~/.pgpass` as libpq reads it)
//! and how the URL's `sslmode` and `sslrootcert` are read. Connecting is `connect`'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// How TLS is used with the store: libpq's `sslmode`, of which these four are understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, without checking its certificate (libpq's default).
    Prefer,
    /// TLS or nothing, without checking the certificate.
    Require,
    /// TLS, the certificate checked against `sslrootcert` (else the public roots) and the host name.
    VerifyFull,
}

/// Where the store's address was found, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag,
    Env,
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag => write!(f, "--store"),
            Origin::Env => write!(f, "RUNBOOK_STORE"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A store to use: its connection settings, and how long a driver's lease lasts.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub pg: tokio_postgres::Config,
    pub ssl: SslMode,
    /// `sslrootcert=PATH`: the CA certificates (PEM) that sign the server's certificate.
    pub root_cert: Option<PathBuf>,
    /// The lease a driver holds (renewed every third of it); `store_lease` in the config file.
    pub lease: Duration,
    pub origin: Origin,
}

impl StoreConfig {
    /// `user@host:port/database`, never the password: for messages.
    pub fn display(&self) -> String {
        let user = self.pg.get_user().unwrap_or("?");
        let host = match self.pg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.pg.get_ports().first().copied().unwrap_or(5432);
        let db = self.pg.get_dbname().unwrap_or(user);
        format!("{user}@{host}:{port}/{db}")
    }
}

/// What is wrong with the store's settings. Nothing is started.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: {message}")]
    Url { origin: Origin, message: String },
    #[error("{0}")]
    File(String),
}

/// The lease a driver holds when `store_lease` does not say.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// The config file's keys about the store. Other keys belong to others and are left alone.
#[derive(Debug, Default, Deserialize)]
struct FileKeys {
    store: Option<toml::Spanned<String>>,
    store_password_file: Option<toml::Spanned<String>>,
    store_lease: Option<toml::Spanned<String>>,
}

/// `$XDG_CONFIG_HOME/runbook/config.toml`, else `~/.config/runbook/config.toml`.
pub fn config_file() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("runbook/config.toml");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".config/runbook/config.toml")
}

/// The store to use, if any: the flag, else the environment, else the config file.
pub fn resolve(flag: Option<&str>) -> Result<Option<StoreConfig>, ConfigError> {
    let path = config_file();
    let (keys, text) = match std::fs::read_to_string(&path) {
        Ok(text) => (parse_file(&path, &text)?, text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (FileKeys::default(), String::new()),
        Err(e) => return Err(ConfigError::File(format!("cannot read {}: {e}", path.display()))),
    };
    let at = |span: std::ops::Range<usize>| position(&path, &text, span.start);
    let lease = match &keys.store_lease {
        None => DEFAULT_LEASE,
        Some(s) => match crate::duration::parse_duration(s.get_ref()) {
            Ok(d) if d >= Duration::from_secs(1) => d,
            Ok(_) => {
                return Err(ConfigError::File(format!(
                    "{}: store_lease must be at least 1s",
                    at(s.span())
                )));
            }
            Err(e) => return Err(ConfigError::File(format!("{}: store_lease: {e}", at(s.span())))),
        },
    };
    let env = std::env::var("RUNBOOK_STORE").ok().filter(|v| !v.is_empty());
    let (url, origin) = match (flag, env, &keys.store) {
        (Some(f), _, _) => (f.to_string(), Origin::Flag),
        (None, Some(e), _) => (e, Origin::Env),
        (None, None, Some(s)) => (s.get_ref().clone(), Origin::File(path.clone())),
        (None, None, None) => return Ok(None),
    };
    let password_file = std::env::var_os("RUNBOOK_STORE_PASSWORD_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            keys.store_password_file
                .as_ref()
                .map(|s| PathBuf::from(s.get_ref()))
        });
    let mut cfg = parse_url(&url).map_err(|message| ConfigError::Url {
        origin: origin.clone(),
        message,
    })?;
    cfg.lease = lease;
    cfg.origin = origin;
    if cfg.pg.get_password().is_none() {
        if let Some(file) = password_file {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                ConfigError::File(format!(
                    "cannot read the store's password file {}: {e}",
                    file.display()
                ))
            })?;
            cfg.pg.password(text.trim_end_matches(['\n', '\r']));
        } else if let Some(pw) = pgpass_password(&cfg)? {
            cfg.pg.password(pw);
        }
    }
    Ok(Some(cfg))
}

fn parse_file(path: &Path, text: &str) -> Result<FileKeys, ConfigError> {
    // Only the store's keys are read here; the file may hold others.
    toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        ConfigError::File(format!("{}: {}", position(path, text, at), e.message()))
    })
}

/// `FILE:LINE:COLUMN` of a byte offset.
fn position(path: &Path, text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{}:{line}:{col}", path.display())
}

/// A `postgres://` URL: `sslmode` and `sslrootcert` are taken out and read here (the driver knows
/// fewer modes than libpq); the rest is the driver's.
pub fn parse_url(url: &str) -> Result<StoreConfig, String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(format!(
            "`{}` is not a PostgreSQL URL (postgres://USER@HOST[:PORT]/DATABASE)",
            mask_url(url)
        ));
    }
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut ssl = SslMode::Prefer;
    let mut root_cert = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "sslmode" => {
                ssl = match v {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(format!(
                            "sslmode `{other}` is not one runbook knows: disable, prefer, require or verify-full"
                        ));
                    }
                }
            }
            "sslrootcert" => root_cert = Some(PathBuf::from(percent_decode(v))),
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let mut pg: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| format!("`{}`: {e}", mask_url(&url)))?;
    if pg.get_user().is_none() {
        pg.user(crate::identity::operator());
    }
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(Duration::from_secs(5));
    }
    pg.application_name("runbook");
    Ok(StoreConfig {
        pg,
        ssl,
        root_cert,
        lease: DEFAULT_LEASE,
        origin: Origin::Flag,
    })
}

/// The URL with its password replaced by `***`, for messages.
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..auth_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..scheme_end], &rest[..colon], &rest[at..]),
        None => url.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The password for this store in `PGPASSFILE` (else `~/.pgpass`), read as libpq reads it:
/// `host:port:database:user:password`, `*` matches anything, `\` escapes `:` and `\`. Like libpq,
/// a file that others can read is not used (and we say so).
fn pgpass_password(cfg: &StoreConfig) -> Result<Option<String>, ConfigError> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = match std::env::var_os("PGPASSFILE").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".pgpass"),
            None => return Ok(None),
        },
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(ConfigError::File(format!(
            "{}: the password file can be read by others; make it private (chmod 600 {}) to use it",
            path.display(),
            path.display()
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ConfigError::File(format!("cannot read {}: {e}", path.display())))?;
    let host = match cfg.pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".into(),
    };
    let port = cfg.pg.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = cfg.pg.get_user().unwrap_or_default().to_string();
    let db = cfg.pg.get_dbname().unwrap_or(&user).to_string();
    let wanted = [host.as_str(), port.as_str(), db.as_str(), user.as_str()];
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            continue;
        }
        if fields[..4].iter().zip(wanted).all(|(f, w)| f == "*" || f == w) {
            return Ok(Some(fields[4].clone()));
        }
    }
    Ok(None)
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c)
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_root_cert_are_read_and_the_rest_is_the_drivers() {
        let c = parse_url(
            "postgres://rb:pw@db.internal:6543/runs?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(c.ssl, SslMode::VerifyFull);
        assert_eq!(c.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(c.display(), "rb@db.internal:6543/runs");
        assert_eq!(c.pg.get_password(), Some(&b"pw"[..]));
        assert_eq!(parse_url("postgres://rb@h/db").unwrap().ssl, SslMode::Prefer);
        let e = parse_url("postgres://rb@h/db?sslmode=verify-ca").unwrap_err();
        assert!(e.contains("sslmode `verify-ca`"), "{e}");
        let e = parse_url("mysql://rb:secret@h/db").unwrap_err();
        assert!(e.contains("mysql://rb:***@h/db") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn pgpass_lines_split_on_unescaped_colons() {
        assert_eq!(
            split_pgpass(r"h:5432:*:u:p\:w\\d"),
            ["h", "5432", "*", "u", r"p:w\d"]
        );
        assert_eq!(split_pgpass("h:1:d:u:a:b"), ["h", "1", "d", "u", "a:b"]);
    }
}
