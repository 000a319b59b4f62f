//! Reading a runbook file: TOML with spans kept, every key and rule of the format checked, every
//! problem collected (not only the first) as a [`Diagnostic`] pointing at its line and column.
//!
//! Owns reading the file and the `Parser` that collects diagnostics. The work is split along the
//! format's own seams:
//!
//! - `schema`: which keys exist where (one `*_KEYS` list per table), ids, names;
//! - `values`: reading one typed value (string, number, duration, table of strings) with its span;
//! - `expand`: `${name}` substitution in the text the tool reads itself;
//! - `document`: the top level — `[runbook]`, `[vars]`, `[secrets]`, `[settings]`, `[metrics]`,
//!   `[rollback]` — and the checks that span tables (unique ids, references);
//! - `triggers`: `[[metric]]` and `[[trigger]]`; `alert`: the keys of an alert trigger;
//! - `steps`: `[[phase]]` and its `[[phase.step]]`s;
//! - `notify`: `[[notify]]` targets, their templates rendered against sample events.
//!
//! **Adding a key or a table.** A new key in an existing table: add it to that table's list in
//! `schema.rs` (unknown keys are reported from those lists, and "did you mean" draws on them), then
//! read it where that table is read (`document.rs`, `triggers.rs` or `steps.rs`) with one of the
//! readers in `values.rs`. A new top-level table: add its name to `schema::TOP_KEYS`, a `*_KEYS`
//! list for its keys (listed in `schema::known_key` too), and read it in `Parser::document`, from
//! a new file of this folder when it is more than a few lines.
//!
//! Leaves rendering to `diagnostic`, execution to `engine`.

mod alert;
mod document;
mod expand;
mod notify;
mod schema;
mod steps;
mod triggers;
mod values;

use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::Diagnostic;
use super::model::Runbook;

pub use schema::{derive_id, is_id};

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
