//! Reading a runbook file: TOML with spans kept, every key and rule of the format checked, every
//! problem collected (not only the first) as a [`Diagnostic`] pointing at its line and column.
//!
//! Owns the schema (which keys exist where), variable substitution (`${name}` in the text the tool
//! reads itself) and id derivation. Leaves rendering to `diagnostic`, execution to `engine`.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, suggestion};
use super::model::*;
use crate::duration::parse_duration;

/// The largest runbook file read; anything bigger is surely not a runbook.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a runbook could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read at all (missing, a folder, too big, not text).
    #[error("{file}: {message}")]
    Unreadable { file: String, message: String },
    /// The file was read and has problems; `render()` shows them with lines and carets.
    #[error("{file}: {} problem(s)", diagnostics.len())]
    Invalid {
        file: String,
        source_text: String,
        diagnostics: Vec<Diagnostic>,
    },
    /// A `--var` names no `[vars]` entry.
    #[error("{0}")]
    UnknownVar(String),
}

impl LoadError {
    /// The full text shown to the user.
    pub fn render(&self) -> String {
        match self {
            LoadError::Invalid {
                file,
                source_text,
                diagnostics,
            } => {
                let mut s = super::diagnostic::render(file, source_text, diagnostics);
                let n = diagnostics.len();
                s.push_str(&format!(
                    "{file}: {n} problem{} found; nothing was run\n",
                    if n == 1 { "" } else { "s" }
                ));
                s
            }
            other => format!("{other}\n"),
        }
    }
}

/// Reads and checks a runbook file. `overrides` are the `--var NAME=VALUE` pairs.
pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Runbook, LoadError> {
    let file = path.display().to_string();
    let unreadable = |message: String| LoadError::Unreadable {
        file: file.clone(),
        message,
    };
    let bytes = super::read_regular_file(path, MAX_FILE_BYTES).map_err(|e| {
        unreadable(match e {
            super::ReadError::Folder => {
                "is a folder, not a runbook file (give the .toml file inside it)".into()
            }
            super::ReadError::TooLarge { limit } => format!(
                "is larger than {0}; a runbook file may be at most {0}",
                super::size_text(limit)
            ),
            other => other.to_string(),
        })
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            return Err(unreadable(format!(
                "is not a text file (invalid UTF-8 at byte {at}); a runbook is TOML text"
            )));
        }
    };
    parse_str(path, &text, overrides)
}

/// Checks runbook text that was read from `path` (used for the file name, the folder commands run
/// in, and the runbook id).
pub fn parse_str(path: &Path, text: &str, overrides: &[(String, String)]) -> Result<Runbook, LoadError> {
    let file = path.display().to_string();
    let invalid = |diagnostics: Vec<Diagnostic>| LoadError::Invalid {
        file: file.clone(),
        source_text: text.to_string(),
        diagnostics,
    };
    if text.trim().is_empty() {
        return Err(invalid(vec![Diagnostic::new(
            0..0,
            "the file is empty; a runbook needs a [runbook] table with a title and at least one [[phase]]",
        )]));
    }
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let diags = errors
            .iter()
            .map(|e| {
                let span = e.span().unwrap_or(0..0);
                Diagnostic::new(
                    span.clone(),
                    format!("TOML syntax: {}", syntax_message(text, span, e.message())),
                )
            })
            .collect();
        return Err(invalid(diags));
    }
    let mut p = Parser {
        src: text,
        diags: Vec::new(),
        vars: Vec::new(),
        secret_names: Vec::new(),
    };
    let base = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    let mut rb = p
        .document(root.get_ref(), path, &base, overrides)
        .map_err(LoadError::UnknownVar)?;
    if !p.diags.is_empty() {
        return Err(invalid(p.diags));
    }
    rb.sha256 = hex(&Sha256::digest(text.as_bytes()));
    Ok(rb)
}

/// The parser's message, or a plainer one where the parser's would send the reader astray.
fn syntax_message(text: &str, span: Range<usize>, message: &str) -> String {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let before = text[line_start..start].trim_end();
    let after = text[start..line_end].trim();
    if before.ends_with('=') && (after.is_empty() || after.starts_with('#')) {
        return "missing value after `=`".into();
    }
    message.trim().to_string()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

type Table<'i> = DeTable<'i>;
type Value<'i> = Spanned<DeValue<'i>>;

const TOP_KEYS: &[&str] = &[
    "runbook", "vars", "secrets", "settings", "metrics", "metric", "trigger", "phase", "rollback",
];
const RUNBOOK_KEYS: &[&str] = &["title", "description", "id", "lock"];
const SETTINGS_KEYS: &[&str] = &["shell", "workdir", "kill_grace"];
const METRICS_KEYS: &[&str] = &["url", "interval", "headers"];
const METRIC_KEYS: &[&str] = &["id", "title", "query", "command", "unit", "simulate"];
const SIMULATE_KEYS: &[&str] = &["baseline", "jitter"];
const TRIGGER_KEYS: &[&str] = &[
    "id",
    "title",
    "metric",
    "above",
    "below",
    "for",
    "armed_from",
    "auto_rollback",
    "on_no_data",
    "check",
    "interval",
    "timeout",
];
const PHASE_KEYS: &[&str] = &["id", "title", "section", "step"];
const STEP_KEYS: &[&str] = &[
    "id",
    "title",
    "run",
    "manual",
    "watch",
    "http",
    "timeout",
    "retries",
    "retry_delay",
    "on_failure",
    "confirm",
    "env",
    "irreversible",
    "workdir",
    "approval",
    "approvers",
];
const STEP_KINDS: &[&str] = &["run", "manual", "watch", "http"];
const HTTP_KEYS: &[&str] = &["url", "method", "headers", "body", "expect_status", "expect_body"];
const ROLLBACK_KEYS: &[&str] = &["title", "phase"];
const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Where a piece of text comes from, which decides what `${name}` may refer to.
#[derive(Clone, Copy, PartialEq)]
enum Subst {
    /// Shown on screen: vars only; a secret here would leak.
    Display,
    /// Sent in a request: vars are substituted, `${SECRET}` is kept for the moment of the request.
    Request,
}

struct Parser<'s> {
    src: &'s str,
    diags: Vec<Diagnostic>,
    vars: Vec<(String, String)>,
    secret_names: Vec<String>,
}

impl<'s> Parser<'s> {
    fn err(&mut self, span: Range<usize>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, msg));
    }

    /// Reports every key of `t` that is not in `allowed`.
    fn check_keys(&mut self, t: &Table, allowed: &[&str], what: &str) {
        for (k, _) in t.iter() {
            let name: &str = k.get_ref();
            if !allowed.contains(&name) {
                let hint = suggestion(name, allowed.iter().copied());
                self.err(k.span(), format!("unknown key `{name}` in {what}{hint}"));
            }
        }
    }

    fn table<'t, 'i>(&mut self, v: &'t Value<'i>, what: &str) -> Option<&'t Table<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.err(
                    v.span(),
                    format!("{what} must be a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// An array of tables (`[[x]]`), each with its span.
    fn tables<'t, 'i>(&mut self, v: &'t Value<'i>, what: &str) -> Vec<(Range<usize>, &'t Table<'i>)> {
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| self.table(item, what).map(|t| (item.span(), t)))
                .collect(),
            other => {
                self.err(
                    v.span(),
                    format!(
                        "{what} must be an array of tables (written [[{what}]]), found {}",
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        }
    }

    fn raw_str<'t>(&mut self, t: &'t Table, key: &str, what: &str) -> Option<(&'t str, Range<usize>)> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.as_ref(), v.span())),
            other => {
                self.err(
                    v.span(),
                    format!("`{key}` in {what} must be a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A string read by the tool itself, with `${name}` substituted.
    fn text(&mut self, t: &Table, key: &str, what: &str, mode: Subst) -> Option<String> {
        let (raw, span) = self.raw_str(t, key, what)?;
        Some(self.expand(raw, span, mode))
    }

    /// A string used as given (commands: never substituted; the shell sees exported variables).
    fn verbatim(&mut self, t: &Table, key: &str, what: &str) -> Option<String> {
        self.raw_str(t, key, what).map(|(s, _)| s.to_string())
    }

    fn required_text(
        &mut self,
        t: &Table,
        span: &Range<usize>,
        key: &str,
        what: &str,
        mode: Subst,
    ) -> Option<String> {
        if t.get(key).is_none() {
            if !misspelt(t, key) {
                self.err(span.clone(), format!("{what} needs a `{key}`"));
            }
            return None;
        }
        self.text(t, key, what, mode)
    }

    fn bool(&mut self, t: &Table, key: &str, what: &str) -> Option<bool> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.err(
                    v.span(),
                    format!(
                        "`{key}` in {what} must be true or false, found {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    fn number(&mut self, t: &Table, key: &str, what: &str) -> Option<f64> {
        let v = t.get(key)?;
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|i| i as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                let found = v.get_ref().type_str();
                self.err(
                    v.span(),
                    format!("`{key}` in {what} must be a finite number, found {found}"),
                );
                None
            }
        }
    }

    fn integer(&mut self, t: &Table, key: &str, what: &str, max: i64) -> Option<i64> {
        let v = t.get(key)?;
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        match n {
            Some(n) if (0..=max).contains(&n) => Some(n),
            Some(n) => {
                self.err(
                    v.span(),
                    format!("`{key}` in {what} must be between 0 and {max}, found {n}"),
                );
                None
            }
            None => {
                let found = v.get_ref().type_str();
                self.err(
                    v.span(),
                    format!("`{key}` in {what} must be a whole number, found {found}"),
                );
                None
            }
        }
    }

    fn duration(&mut self, t: &Table, key: &str, what: &str) -> Option<Duration> {
        let v = t.get(key)?;
        let DeValue::String(raw) = v.get_ref() else {
            let found = v.get_ref().type_str();
            self.err(
                v.span(),
                format!(
                    "`{key}` in {what} must be a duration string such as \"90s\" or \"5m\", found {found}"
                ),
            );
            return None;
        };
        let raw: &str = raw.as_ref();
        let before = self.diags.len();
        let text = self.expand(raw, v.span(), Subst::Display);
        if self.diags.len() > before {
            return None;
        }
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                let from = if text != raw {
                    format!(" (from `{raw}`)")
                } else {
                    String::new()
                };
                self.err(v.span(), format!("`{key}` in {what}: {e}{from}"));
                None
            }
        }
    }

    /// A duration where zero makes no sense (a timeout: nothing could ever finish in it).
    fn duration_nonzero(&mut self, t: &Table, key: &str, what: &str) -> Option<Duration> {
        let d = self.duration(t, key, what)?;
        if d.is_zero() {
            let span = t.get(key).map(|v| v.span()).unwrap_or(0..0);
            self.err(span, format!("`{key}` in {what} must be more than 0s"));
            return None;
        }
        Some(d)
    }

    /// A table of string values (`env`, `headers`).
    fn string_map(&mut self, t: &Table, key: &str, what: &str, mode: Option<Subst>) -> Vec<(String, String)> {
        self.string_map_checked(t, key, what, mode, false)
    }

    /// `string_map`, where `env_names` asks that every key be a valid environment variable name.
    fn string_map_checked(
        &mut self,
        t: &Table,
        key: &str,
        what: &str,
        mode: Option<Subst>,
        env_names: bool,
    ) -> Vec<(String, String)> {
        let Some(v) = t.get(key) else { return Vec::new() };
        let Some(map) = self.table(v, &format!("`{key}` in {what}")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, val) in map.iter() {
            let name: &str = k.get_ref();
            if env_names && !is_env_name(name) {
                self.err(
                    k.span(),
                    format!("environment name `{name}` must be letters, digits and _"),
                );
            }
            match val.get_ref() {
                DeValue::String(s) => {
                    let s: &str = s.as_ref();
                    let s = match mode {
                        Some(m) => self.expand(s, val.span(), m),
                        None => s.to_string(),
                    };
                    out.push((name.to_string(), s));
                }
                other => {
                    let found = other.type_str();
                    self.err(
                        val.span(),
                        format!("`{key}.{name}` in {what} must be a string, found {found}"),
                    );
                }
            }
        }
        out
    }

    /// Substitutes `${name}` with vars. Undefined names are errors pointing at the reference;
    /// secrets are kept as references in request text and refused in displayed text.
    fn expand(&mut self, raw: &str, span: Range<usize>, mode: Subst) -> String {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        let mut consumed = 0;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(stripped) = after.strip_prefix("${") {
                // `$${` is a literal `${`
                out.push_str("${");
                consumed += i + 3;
                rest = stripped;
                continue;
            }
            if !after.starts_with('{') {
                out.push('$');
                consumed += i + 1;
                rest = after;
                continue;
            }
            let at = self.locate(span.clone(), raw, consumed + i);
            let Some(end) = after.find('}') else {
                self.err(at, "`${` without a closing `}` (write `$${` for a literal `${`)");
                out.push_str(&rest[i..]);
                return out;
            };
            let name = &after[1..end];
            let whole = &rest[i..i + 2 + end];
            if let Some((_, value)) = self.vars.iter().find(|(n, _)| n == name) {
                out.push_str(value);
            } else if self.secret_names.iter().any(|n| n == name) {
                if mode == Subst::Display {
                    self.err(
                        at,
                        format!("secret `{name}` cannot be used here: it would be shown on screen and in the journal"),
                    );
                }
                out.push_str(whole);
            } else {
                let known: Vec<&str> = self
                    .vars
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .chain(self.secret_names.iter().map(String::as_str))
                    .collect();
                let hint = suggestion(name, known.iter().copied());
                self.err(
                    at,
                    format!("`${{{name}}}` is not defined in [vars] or [secrets]{hint}"),
                );
                out.push_str(whole);
            }
            consumed += i + 2 + end;
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The span of byte `offset` of a string's value inside its literal, when the literal is a plain
    /// one whose text appears verbatim; otherwise the whole literal.
    fn locate(&self, span: Range<usize>, raw: &str, offset: usize) -> Range<usize> {
        let lit = self.src.get(span.clone()).unwrap_or("");
        if let Some(pos) = lit.find(raw) {
            let start = span.start + pos + offset;
            let end = raw[offset..].find('}').map_or(start + 2, |e| start + e + 1);
            return start..end;
        }
        span
    }

    fn document(
        &mut self,
        root: &Table,
        path: &Path,
        base: &Path,
        overrides: &[(String, String)],
    ) -> Result<Runbook, String> {
        self.check_keys(root, TOP_KEYS, "the top level");

        // [vars] first: everything else may refer to them.
        if let Some(v) = root.get("vars")
            && let Some(t) = self.table(v, "[vars]")
        {
            for (k, val) in t.iter() {
                let name: &str = k.get_ref();
                if !is_env_name(name) {
                    self.err(k.span(), format!("variable name `{name}` must be letters, digits and _ (it is exported to commands' environment)"));
                }
                match val.get_ref() {
                    DeValue::String(s) => self.vars.push((name.to_string(), s.to_string())),
                    other => {
                        let found = other.type_str();
                        self.err(
                            val.span(),
                            format!("variable `{name}` must be a string, found {found} (quote it)"),
                        );
                    }
                }
            }
        }
        for (name, value) in overrides {
            match self.vars.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = value.clone(),
                None => {
                    let known: Vec<&str> = self.vars.iter().map(|(n, _)| n.as_str()).collect();
                    let hint = suggestion(name, known.iter().copied());
                    let list = if known.is_empty() {
                        "the runbook has no [vars]".to_string()
                    } else {
                        format!("known: {}", known.join(", "))
                    };
                    return Err(format!(
                        "--var {name}: no such variable in {}{hint} ({list})",
                        path.display()
                    ));
                }
            }
        }

        let mut secrets = Vec::new();
        if let Some(v) = root.get("secrets")
            && let Some(t) = self.table(v, "[secrets]")
        {
            for (k, val) in t.iter() {
                let name: &str = k.get_ref();
                if !is_env_name(name) {
                    self.err(
                        k.span(),
                        format!("secret name `{name}` must be letters, digits and _"),
                    );
                }
                if self.vars.iter().any(|(n, _)| n == name) {
                    self.err(k.span(), format!("`{name}` is both a var and a secret"));
                }
                let what = format!("secret `{name}`");
                let Some(st) = self.table(val, &what) else {
                    continue;
                };
                self.check_keys(st, &["env", "file"], &what);
                let env = self.verbatim(st, "env", &what);
                let file = self.verbatim(st, "file", &what);
                let source = match (env, file) {
                    (Some(e), None) => SecretSource::Env(e),
                    (None, Some(f)) => SecretSource::File(base.join(f)),
                    _ => {
                        self.err(
                            val.span(),
                            format!(
                                "{what} needs exactly one of `env` or `file`, e.g. {{ env = \"{name}\" }}"
                            ),
                        );
                        continue;
                    }
                };
                self.secret_names.push(name.to_string());
                secrets.push(SecretSpec {
                    name: name.to_string(),
                    source,
                    span: val.span(),
                });
            }
        }

        let mut title = String::new();
        let mut description = None;
        let mut id = None;
        let mut lock = None;
        match root.get("runbook") {
            None if misspelt(root, "runbook") => {}
            None => self.err(0..0, "missing [runbook] table with a `title`"),
            Some(v) => {
                if let Some(t) = self.table(v, "[runbook]") {
                    self.check_keys(t, RUNBOOK_KEYS, "[runbook]");
                    title = self
                        .required_text(t, &v.span(), "title", "[runbook]", Subst::Display)
                        .unwrap_or_default();
                    description = self.text(t, "description", "[runbook]", Subst::Display);
                    let (name, problems) = super::approval::lock_name(t, "[runbook]");
                    self.diags.extend(problems);
                    lock = name;
                    if let Some((raw, span)) = self.raw_str(t, "id", "[runbook]") {
                        let raw = raw.to_string();
                        self.check_id(&raw, span);
                        id = Some(raw);
                    }
                }
            }
        }
        let id = id.unwrap_or_else(|| {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let d = derive_id(&stem);
            if d.is_empty() { "runbook".into() } else { d }
        });

        let mut settings = Settings {
            shell: "sh".into(),
            workdir: base.to_path_buf(),
            kill_grace: Duration::from_secs(10),
        };
        if let Some(v) = root.get("settings")
            && let Some(t) = self.table(v, "[settings]")
        {
            self.check_keys(t, SETTINGS_KEYS, "[settings]");
            if let Some(s) = self.verbatim(t, "shell", "[settings]") {
                settings.shell = s;
            }
            if let Some(w) = self.text(t, "workdir", "[settings]", Subst::Display) {
                settings.workdir = normalize(&base.join(w));
            }
            if let Some(d) = self.duration(t, "kill_grace", "[settings]") {
                settings.kill_grace = d;
            }
        }

        let mut metrics = MetricsSettings {
            url: None,
            interval: Duration::from_secs(5),
            headers: Vec::new(),
        };
        if let Some(v) = root.get("metrics")
            && let Some(t) = self.table(v, "[metrics]")
        {
            self.check_keys(t, METRICS_KEYS, "[metrics]");
            metrics.url = self.text(t, "url", "[metrics]", Subst::Display);
            if let Some(d) = self.duration(t, "interval", "[metrics]") {
                if d.is_zero() {
                    self.err(
                        t.get("interval").map(|v| v.span()).unwrap_or(v.span()),
                        "`interval` in [metrics] must be more than 0s",
                    );
                }
                metrics.interval = d;
            }
            metrics.headers = self.string_map(t, "headers", "[metrics]", Some(Subst::Request));
        }

        let mut metric_list: Vec<Metric> = Vec::new();
        if let Some(v) = root.get("metric") {
            for (span, t) in self.tables(v, "metric") {
                if let Some(m) = self.metric(t, span.clone()) {
                    if metric_list.iter().any(|o| o.id == m.id) {
                        self.err(span, format!("duplicate metric id `{}`", m.id));
                    }
                    metric_list.push(m);
                }
            }
        }

        let mut phases = Vec::new();
        match root.get("phase") {
            None if misspelt(root, "phase") => {}
            None => self.err(0..0, "a runbook needs at least one [[phase]] with steps"),
            Some(v) => {
                for (span, t) in self.tables(v, "phase") {
                    if let Some(p) = self.phase(t, span.clone(), base, "[[phase]]") {
                        if phases.iter().any(|o: &Phase| o.id == p.id) {
                            self.err(span, format!("duplicate phase id `{}`", p.id));
                        }
                        phases.push(p);
                    }
                }
            }
        }

        let mut rollback = None;
        if let Some(v) = root.get("rollback")
            && let Some(t) = self.table(v, "[rollback]")
        {
            self.check_keys(t, ROLLBACK_KEYS, "[rollback]");
            let title = self
                .text(t, "title", "[rollback]", Subst::Display)
                .unwrap_or_else(|| "Rollback".into());
            let mut rphases: Vec<Phase> = Vec::new();
            match t.get("phase") {
                None => self.err(v.span(), "[rollback] needs at least one [[rollback.phase]]"),
                Some(pv) => {
                    for (span, pt) in self.tables(pv, "rollback.phase") {
                        if let Some(p) = self.phase(pt, span.clone(), base, "[[rollback.phase]]") {
                            if rphases.iter().chain(phases.iter()).any(|o| o.id == p.id) {
                                self.err(
                                    span,
                                    format!(
                                        "duplicate phase id `{}` (rollback phases need ids of their own)",
                                        p.id
                                    ),
                                );
                            }
                            rphases.push(p);
                        }
                    }
                }
            }
            rollback = Some(Rollback {
                title,
                phases: rphases,
            });
        }

        let mut triggers: Vec<Trigger> = Vec::new();
        if let Some(v) = root.get("trigger") {
            for (span, t) in self.tables(v, "trigger") {
                if let Some(tr) = self.trigger(t, span.clone(), &metric_list, &phases) {
                    if triggers.iter().any(|o| o.id == tr.id) {
                        self.err(span, format!("duplicate trigger id `{}`", tr.id));
                    }
                    triggers.push(tr);
                }
            }
        }

        // on_failure = "rollback" needs somewhere to go.
        if rollback.is_none()
            && let Some(v) = root.get("phase")
            && let DeValue::Array(items) = v.get_ref()
        {
            for item in items.iter() {
                let Some(pt) = item.get_ref().as_table() else {
                    continue;
                };
                let Some(steps) = pt.get("step").and_then(|s| s.get_ref().as_array()) else {
                    continue;
                };
                for st in steps.iter() {
                    if let Some(of) = st.get_ref().as_table().and_then(|t| t.get("on_failure"))
                        && of.get_ref().as_str() == Some("rollback")
                    {
                        self.err(of.span(), "`on_failure = \"rollback\"` needs a [rollback] procedure, and this runbook has none");
                    }
                }
            }
        }

        Ok(Runbook {
            id,
            title,
            description,
            lock,
            file: path.to_path_buf(),
            sha256: String::new(),
            vars: self.vars.clone(),
            secrets,
            settings,
            metrics,
            metric: metric_list,
            triggers,
            phases,
            rollback,
        })
    }

    fn check_id(&mut self, id: &str, span: Range<usize>) {
        if !is_id(id) {
            self.err(
                span,
                format!("id `{id}` must start with a-z or 0-9 and contain only a-z, 0-9, - and _"),
            );
        }
    }

    /// The explicit `id`, or one derived from the title.
    fn id_or_derived(&mut self, t: &Table, span: &Range<usize>, what: &str) -> Option<String> {
        if let Some((raw, s)) = self.raw_str(t, "id", what) {
            let raw = raw.to_string();
            self.check_id(&raw, s);
            return Some(raw);
        }
        let (title, s) = self.raw_str(t, "title", what)?;
        let derived = derive_id(&title.replace("${", "").replace('}', ""));
        if derived.is_empty() {
            self.err(
                s,
                format!("cannot derive an id from this title; give the {what} an `id`"),
            );
            return None;
        }
        let _ = span;
        Some(derived)
    }

    fn metric(&mut self, t: &Table, span: Range<usize>) -> Option<Metric> {
        let what = "[[metric]]";
        self.check_keys(t, METRIC_KEYS, what);
        let id = match self.raw_str(t, "id", what) {
            Some((raw, s)) => {
                let raw = raw.to_string();
                self.check_id(&raw, s);
                raw
            }
            None => {
                if t.get("id").is_none() {
                    self.err(span.clone(), "[[metric]] needs an `id` (triggers refer to it)");
                }
                return None;
            }
        };
        let title = self
            .text(t, "title", what, Subst::Display)
            .unwrap_or_else(|| id.clone());
        let query = self.text(t, "query", what, Subst::Request);
        let command = self.verbatim(t, "command", what);
        let source = match (query, command) {
            (Some(q), None) => MetricSource::Query(q),
            (None, Some(c)) => MetricSource::Command(c),
            (Some(_), Some(_)) => {
                self.err(
                    span,
                    format!("metric `{id}` has both `query` and `command`; keep one"),
                );
                return None;
            }
            (None, None) => {
                self.err(
                    span,
                    format!("metric `{id}` needs a `query` (Prometheus) or a `command`"),
                );
                return None;
            }
        };
        let unit = match self.raw_str(t, "unit", what) {
            None => Unit::Number,
            Some(("percent", _)) => Unit::Percent,
            Some(("seconds", _)) => Unit::Seconds,
            Some(("number", _)) => Unit::Number,
            Some((other, s)) => {
                let hint = suggestion(other, ["percent", "seconds", "number"]);
                let other = other.to_string();
                self.err(
                    s,
                    format!("unit `{other}` is not one of \"percent\", \"seconds\", \"number\"{hint}"),
                );
                Unit::Number
            }
        };
        let mut simulate = Simulate::default();
        if let Some(sv) = t.get("simulate")
            && let Some(st) = self.table(sv, "`simulate`")
        {
            self.check_keys(st, SIMULATE_KEYS, "`simulate`");
            simulate.baseline = self.number(st, "baseline", "`simulate`").unwrap_or(0.0);
            simulate.jitter = self.number(st, "jitter", "`simulate`").unwrap_or(0.0).abs();
        }
        Some(Metric {
            id,
            title,
            source,
            unit,
            simulate,
        })
    }

    fn trigger(
        &mut self,
        t: &Table,
        span: Range<usize>,
        metrics: &[Metric],
        phases: &[Phase],
    ) -> Option<Trigger> {
        let what = "[[trigger]]";
        self.check_keys(t, TRIGGER_KEYS, what);
        let title = self.required_text(t, &span, "title", what, Subst::Display)?;
        let id = self.id_or_derived(t, &span, what)?;
        let metric = self.raw_str(t, "metric", what).map(|(s, sp)| (s.to_string(), sp));
        let check = self.verbatim(t, "check", what);
        let above = self.number(t, "above", what);
        let below = self.number(t, "below", what);
        let armed_from = match self.raw_str(t, "armed_from", what) {
            Some((p, sp)) => {
                let p = p.to_string();
                if !phases.iter().any(|ph| ph.id == p) {
                    let hint = suggestion(&p, phases.iter().map(|ph| ph.id.as_str()));
                    self.err(sp, format!("`armed_from` names no phase: `{p}`{hint}"));
                }
                Some(p)
            }
            None => None,
        };
        let auto_rollback = self.duration(t, "auto_rollback", what);
        let metric_only = ["above", "below", "for", "on_no_data"];
        let check_only = ["interval", "timeout"];
        let kind = match (metric, check) {
            (Some(_), Some(_)) => {
                self.err(
                    span,
                    format!("trigger `{id}` has both `metric` and `check`; a trigger watches one thing"),
                );
                return None;
            }
            (Some((m, msp)), None) => {
                if !metrics.iter().any(|x| x.id == m) {
                    let hint = suggestion(&m, metrics.iter().map(|x| x.id.as_str()));
                    self.err(
                        msp,
                        format!("trigger `{id}` refers to metric `{m}`, which is not defined{hint}"),
                    );
                }
                for k in check_only {
                    if let Some(v) = t.get(k) {
                        self.err(
                            v.span(),
                            format!(
                                "`{k}` belongs to check triggers; metrics are polled at [metrics] interval"
                            ),
                        );
                    }
                }
                let threshold = match (above, below) {
                    (Some(a), None) => Threshold::Above(a),
                    (None, Some(b)) => Threshold::Below(b),
                    _ => {
                        self.err(
                            span,
                            format!("metric trigger `{id}` needs exactly one of `above` or `below`"),
                        );
                        return None;
                    }
                };
                let for_ = self.duration(t, "for", what).unwrap_or_default();
                let on_no_data = match self.raw_str(t, "on_no_data", what) {
                    None | Some(("warn", _)) => OnNoData::Warn,
                    Some(("hold", _)) => OnNoData::Hold,
                    Some(("rollback", _)) => OnNoData::Rollback,
                    Some((o, s)) => {
                        let hint = suggestion(o, ["warn", "hold", "rollback"]);
                        let o = o.to_string();
                        self.err(
                            s,
                            format!("on_no_data `{o}` is not one of \"warn\", \"hold\", \"rollback\"{hint}"),
                        );
                        OnNoData::Warn
                    }
                };
                TriggerKind::Metric {
                    metric: m,
                    threshold,
                    for_,
                    on_no_data,
                }
            }
            (None, Some(command)) => {
                for k in metric_only {
                    if let Some(v) = t.get(k) {
                        self.err(
                            v.span(),
                            format!("`{k}` belongs to metric triggers, and trigger `{id}` is a check"),
                        );
                    }
                }
                let interval = self
                    .duration(t, "interval", what)
                    .unwrap_or(Duration::from_secs(30));
                if interval.is_zero() {
                    self.err(
                        span.clone(),
                        format!("trigger `{id}`: `interval` must be more than 0s"),
                    );
                }
                let timeout = self
                    .duration_nonzero(t, "timeout", what)
                    .unwrap_or(interval.min(Duration::from_secs(60)));
                TriggerKind::Check {
                    command,
                    interval,
                    timeout,
                }
            }
            (None, None) => {
                for k in metric_only.iter().chain(check_only.iter()) {
                    if let Some(v) = t.get(*k) {
                        self.err(
                            v.span(),
                            format!("`{k}` needs a `metric` or `check` in trigger `{id}`"),
                        );
                    }
                }
                TriggerKind::Manual
            }
        };
        Some(Trigger {
            id,
            title,
            kind,
            armed_from,
            auto_rollback,
        })
    }

    fn phase(&mut self, t: &Table, span: Range<usize>, base: &Path, what: &str) -> Option<Phase> {
        self.check_keys(t, PHASE_KEYS, what);
        let title = self.required_text(t, &span, "title", what, Subst::Display);
        let id = self.id_or_derived(t, &span, what);
        let section = self.text(t, "section", what, Subst::Display);
        let mut steps: Vec<Step> = Vec::new();
        let step_what = if what.starts_with("[[rollback") {
            "[[rollback.phase.step]]"
        } else {
            "[[phase.step]]"
        };
        if let Some(v) = t.get("step") {
            for (sspan, st) in self.tables(v, "phase.step") {
                if let Some(s) = self.step(st, sspan.clone(), base, step_what) {
                    if steps.iter().any(|o| o.id == s.id) {
                        let pid = id.as_deref().unwrap_or("?");
                        self.err(
                            sspan,
                            format!(
                                "duplicate step id `{}` in phase `{pid}` (give one of them an `id`)",
                                s.id
                            ),
                        );
                    }
                    steps.push(s);
                }
            }
        }
        if t.get("step").is_none() {
            let name = id.as_deref().unwrap_or("?");
            let step_table = if what.starts_with("[[rollback") {
                "[[rollback.phase.step]]"
            } else {
                "[[phase.step]]"
            };
            self.err(
                span,
                format!("{what} `{name}` has no steps; add at least one {step_table}"),
            );
        }
        Some(Phase {
            id: id?,
            title: title?,
            section,
            steps,
        })
    }

    fn step(&mut self, t: &Table, span: Range<usize>, base: &Path, what: &str) -> Option<Step> {
        self.check_keys(t, STEP_KEYS, what);
        let title = self.required_text(t, &span, "title", what, Subst::Display);
        let id = self.id_or_derived(t, &span, what);
        let kinds: Vec<&str> = STEP_KINDS
            .iter()
            .copied()
            .filter(|k| t.get(*k).is_some())
            .collect();
        let kind = match kinds.as_slice() {
            [] => {
                self.err(
                    span.clone(),
                    format!("{what} needs one of `run`, `manual`, `watch` or `http`"),
                );
                None
            }
            [k] => self.step_kind(t, k, what),
            [_, second, ..] => {
                let sp = t.get(*second).map(|v| v.span()).unwrap_or(span.clone());
                self.err(
                    sp,
                    format!(
                        "a step has exactly one of `run`, `manual`, `watch`, `http`; this one has {}",
                        kinds
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                );
                None
            }
        };
        let timeout = self.duration_nonzero(t, "timeout", what);
        if let (Some(k), Some(v)) = (&kind, t.get("timeout"))
            && matches!(k, StepKind::Manual(_) | StepKind::Watch(_))
        {
            self.err(
                v.span(),
                format!("`timeout` applies to run and http steps, not {} steps", k.name()),
            );
        }
        let retries = self.integer(t, "retries", what, 100).unwrap_or(0) as u32;
        let retry_delay = self
            .duration(t, "retry_delay", what)
            .unwrap_or(Duration::from_secs(0));
        let on_failure = match self.raw_str(t, "on_failure", what) {
            None | Some(("ask", _)) => OnFailure::Ask,
            Some(("continue", _)) => OnFailure::Continue,
            Some(("rollback", _)) => OnFailure::Rollback,
            Some((o, s)) => {
                let hint = suggestion(o, ["ask", "continue", "rollback"]);
                let o = o.to_string();
                self.err(
                    s,
                    format!("on_failure `{o}` is not one of \"ask\", \"continue\", \"rollback\"{hint}"),
                );
                OnFailure::Ask
            }
        };
        let confirm = self.bool(t, "confirm", what).unwrap_or(false);
        let env = self.string_map_checked(t, "env", what, None, true);
        let irreversible = self.bool(t, "irreversible", what).unwrap_or(false);
        let workdir = self
            .text(t, "workdir", what, Subst::Display)
            .map(|w| normalize(&base.join(w)));
        let (approval, problems) = super::approval::step_approval(t, &span, what);
        self.diags.extend(problems);
        Some(Step {
            id: id?,
            title: title?,
            kind: kind?,
            timeout,
            retries,
            retry_delay,
            on_failure,
            confirm,
            env,
            irreversible,
            workdir,
            approval,
        })
    }

    fn step_kind(&mut self, t: &Table, kind: &str, what: &str) -> Option<StepKind> {
        let v = t.get(kind)?;
        match kind {
            "run" => {
                let cmd = self.verbatim(t, "run", what)?;
                if cmd.trim().is_empty() {
                    self.err(v.span(), "`run` is empty");
                }
                Some(StepKind::Run(cmd))
            }
            "manual" => match v.get_ref() {
                DeValue::Boolean(true) => Some(StepKind::Manual(None)),
                DeValue::String(_) => self
                    .text(t, "manual", what, Subst::Display)
                    .map(|s| StepKind::Manual(Some(s))),
                _ => {
                    self.err(v.span(), "`manual` must be true or an instruction string");
                    None
                }
            },
            "watch" => self.duration(t, "watch", what).map(StepKind::Watch),
            "http" => {
                let ht = self.table(v, "`http`")?;
                let hw = "`http`";
                self.check_keys(ht, HTTP_KEYS, hw);
                let url = self.required_text(ht, &v.span(), "url", hw, Subst::Request);
                let method = match self.raw_str(ht, "method", hw) {
                    None => "GET".to_string(),
                    Some((m, s)) => {
                        let up = m.to_ascii_uppercase();
                        if !HTTP_METHODS.contains(&up.as_str()) {
                            let hint = suggestion(&up, HTTP_METHODS.iter().copied());
                            self.err(s, format!("method `{m}` is not an HTTP method{hint}"));
                        }
                        up
                    }
                };
                let headers = self.string_map(ht, "headers", hw, Some(Subst::Request));
                let body = self.text(ht, "body", hw, Subst::Request);
                let expect_body = self.text(ht, "expect_body", hw, Subst::Request);
                let expect_status = match ht.get("expect_status") {
                    None => vec![200],
                    Some(sv) => {
                        let items: Vec<&Value> = match sv.get_ref() {
                            DeValue::Array(a) => a.iter().collect(),
                            _ => vec![sv],
                        };
                        let mut codes = Vec::new();
                        for it in items {
                            let code = match it.get_ref() {
                                DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
                                _ => None,
                            };
                            match code {
                                Some(c) if (100..=599).contains(&c) => codes.push(c as u16),
                                _ => self.err(
                                    it.span(),
                                    "`expect_status` must be an HTTP status (100-599) or a list of them",
                                ),
                            }
                        }
                        if matches!(sv.get_ref(), DeValue::Array(a) if a.is_empty()) {
                            self.err(sv.span(), "`expect_status` is empty");
                        }
                        codes
                    }
                };
                Some(StepKind::Http(HttpSpec {
                    url: url?,
                    method,
                    headers,
                    body,
                    expect_status,
                    expect_body,
                }))
            }
            _ => None,
        }
    }
}

/// Every key the format knows, anywhere.
fn known_key(k: &str) -> bool {
    [
        TOP_KEYS,
        RUNBOOK_KEYS,
        SETTINGS_KEYS,
        METRICS_KEYS,
        METRIC_KEYS,
        SIMULATE_KEYS,
        TRIGGER_KEYS,
        PHASE_KEYS,
        STEP_KEYS,
        HTTP_KEYS,
        ROLLBACK_KEYS,
    ]
    .iter()
    .any(|keys| keys.contains(&k))
}

/// Whether `t` holds an unknown key that is a misspelling of `key` (already reported with a
/// "did you mean"), so that its absence need not be reported a second time.
fn misspelt(t: &Table, key: &str) -> bool {
    t.iter().any(|(k, _)| {
        let k: &str = k.get_ref();
        !known_key(k) && super::diagnostic::did_you_mean(k, [key]).is_some()
    })
}

/// `[a-z0-9][a-z0-9_-]*`
pub fn is_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// "Database backup completed" → `database-backup-completed`; a long one is cut at a word's end
/// (64 characters at most).
pub fn derive_id(title: &str) -> String {
    let mut id = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c.to_ascii_lowercase());
        } else if !id.is_empty() && !id.ends_with('-') {
            id.push('-');
        }
    }
    while id.ends_with('-') {
        id.pop();
    }
    if id.len() > 64 {
        // The id is ASCII; cut after the last whole word that fits, or at 64 for one long word.
        let cut = id[..=64].rfind('-').filter(|&i| i > 0).unwrap_or(64);
        id.truncate(cut);
        while id.ends_with('-') {
            id.pop();
        }
    }
    id
}

/// Removes `.` and `..` components without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_derived_from_titles() {
        assert_eq!(
            derive_id("Database backup completed"),
            "database-backup-completed"
        );
        assert_eq!(
            derive_id("Deploy new version to 10% of instances"),
            "deploy-new-version-to-10-of-instances"
        );
        assert_eq!(derive_id("  --  "), "");
        let long = derive_id(&"words ".repeat(20));
        assert_eq!(long, ["words"; 10].join("-"));
        assert_eq!(derive_id(&"x".repeat(70)), "x".repeat(64));
        assert!(is_id("app-deploy"));
        assert!(!is_id("App"));
        assert!(!is_id("-x"));
    }
}
