//! Four-eyes approvals and deploy locks in a runbook file (SPEC §8): reading a step's
//! `approval = { count = N }` and `approvers = ["alice", "bob"]`, and `[runbook] lock = "name"`.
//! `parse` calls in here and keeps the diagnostics; waiting for approvals is the engine's.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, suggestion};

/// A step's approvals: how many operators other than the driver must approve it, and who may
/// (empty: anyone but the driver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub count: u32,
    pub approvers: Vec<String>,
}

/// The most approvals a step may ask for.
const MAX_COUNT: i64 = 10;

/// Reads `approval` and `approvers` of a step table (`what` names it in messages). `approvers`
/// alone means one approval by one of them.
pub fn step_approval(t: &DeTable, span: &Range<usize>, what: &str) -> (Option<Approval>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut count = None;
    if let Some(v) = t.get("approval") {
        match v.get_ref() {
            DeValue::Table(a) => {
                for (k, _) in a.iter() {
                    let name: &str = k.get_ref();
                    if name != "count" {
                        let hint = suggestion(name, ["count"]);
                        diags.push(Diagnostic::new(
                            k.span(),
                            format!("unknown key `{name}` in `approval` of {what}{hint}"),
                        ));
                    }
                }
                match a.get("count") {
                    // A misspelt `count` was reported just above.
                    None if !diags.is_empty() => {}
                    None => diags.push(Diagnostic::new(
                        v.span(),
                        format!("`approval` in {what} needs a `count` (approval = {{ count = 1 }})"),
                    )),
                    Some(c) => count = whole(c, what, &mut diags),
                }
            }
            other => diags.push(Diagnostic::new(
                v.span(),
                format!(
                    "`approval` in {what} must be a table such as {{ count = 1 }}, found {}",
                    other.type_str()
                ),
            )),
        }
    }
    let mut approvers = Vec::new();
    let mut approvers_span = None;
    if let Some(v) = t.get("approvers") {
        approvers_span = Some(v.span());
        match v.get_ref() {
            DeValue::Array(items) => {
                for item in items {
                    match item.get_ref() {
                        DeValue::String(s) if is_user_name(s) => {
                            if approvers.iter().any(|a| a == s.as_ref()) {
                                diags.push(Diagnostic::new(item.span(), format!("`{s}` is listed twice")));
                            } else {
                                approvers.push(s.to_string());
                            }
                        }
                        DeValue::String(s) => diags.push(Diagnostic::new(
                            item.span(),
                            format!("`{s}` is not a Unix user name (letters, digits, `_`, `-`, `.`)"),
                        )),
                        other => diags.push(Diagnostic::new(
                            item.span(),
                            format!(
                                "`approvers` in {what} lists Unix user names (strings), found {}",
                                other.type_str()
                            ),
                        )),
                    }
                }
                if items.is_empty() {
                    diags.push(Diagnostic::new(
                        v.span(),
                        "`approvers` is empty: nobody could approve; leave it out to let any operator but the driver approve",
                    ));
                }
            }
            other => diags.push(Diagnostic::new(
                v.span(),
                format!(
                    "`approvers` in {what} must be a list of Unix user names, found {}",
                    other.type_str()
                ),
            )),
        }
    }
    let count = match (count, t.get("approval"), approvers_span) {
        (Some(c), _, _) => c,
        // `approval` was there but wrong: already reported.
        (None, Some(_), _) => return (None, diags),
        (None, None, Some(_)) if !approvers.is_empty() => 1,
        _ => return (None, diags),
    };
    if !approvers.is_empty() && count as usize > approvers.len() {
        let at = t.get("approval").map_or_else(|| span.clone(), |v| v.span());
        diags.push(Diagnostic::new(
            at,
            format!(
                "{what} needs {count} approvals but lists only {} approver{}",
                approvers.len(),
                if approvers.len() == 1 { "" } else { "s" }
            ),
        ));
    }
    (Some(Approval { count, approvers }), diags)
}

fn whole(v: &Spanned<DeValue>, what: &str, diags: &mut Vec<Diagnostic>) -> Option<u32> {
    let n = match v.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    };
    match n {
        Some(n) if (1..=MAX_COUNT).contains(&n) => Some(n as u32),
        Some(n) => {
            diags.push(Diagnostic::new(
                v.span(),
                format!("`count` of `approval` in {what} must be between 1 and {MAX_COUNT}, found {n}"),
            ));
            None
        }
        None => {
            diags.push(Diagnostic::new(
                v.span(),
                format!(
                    "`count` of `approval` in {what} must be a whole number, found {}",
                    v.get_ref().type_str()
                ),
            ));
            None
        }
    }
}

/// A Unix user name as `useradd` accepts it (and as the kernel's uid is named back).
fn is_user_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Reads `[runbook] lock`: a name for a file in `STATE_DIR/locks`, so it is an id.
pub fn lock_name(t: &DeTable, what: &str) -> (Option<String>, Vec<Diagnostic>) {
    let Some(v) = t.get("lock") else {
        return (None, Vec::new());
    };
    match v.get_ref() {
        DeValue::String(s) if super::parse::is_id(s) => (Some(s.to_string()), Vec::new()),
        DeValue::String(s) => (
            None,
            vec![Diagnostic::new(
                v.span(),
                format!(
                    "lock name `{s}` must match [a-z0-9][a-z0-9_-]* (it names a file in STATE_DIR/locks)"
                ),
            )],
        ),
        other => (
            None,
            vec![Diagnostic::new(
                v.span(),
                format!("`lock` in {what} must be a string, found {}", other.type_str()),
            )],
        ),
    }
}
