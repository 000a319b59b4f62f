//! The schema of the format: which keys exist in which table, and the rules for ids and names.
//! Every table's keys are listed here once; unknown keys are reported, and misspellings
//! suggested, from these lists.

use super::Table;

pub(super) const TOP_KEYS: &[&str] = &[
    "runbook", "vars", "secrets", "settings", "metrics", "metric", "trigger", "phase", "rollback", "notify",
];
pub(super) const NOTIFY_KEYS: &[&str] = &[
    "id",
    "url",
    "format",
    "on",
    "template",
    "headers",
    "method",
    "waiting_after",
];
pub(super) const RUNBOOK_KEYS: &[&str] = &["title", "description", "id", "lock"];
pub(super) const SETTINGS_KEYS: &[&str] = &["shell", "workdir", "kill_grace"];
pub(super) const METRICS_KEYS: &[&str] = &["url", "interval", "headers"];
pub(super) const METRIC_KEYS: &[&str] = &["id", "title", "query", "command", "unit", "simulate"];
pub(super) const SIMULATE_KEYS: &[&str] = &["baseline", "jitter"];
pub(super) const TRIGGER_KEYS: &[&str] = &[
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
    "alert",
    "labels",
    "source",
    "alertmanager",
];
pub(super) const PHASE_KEYS: &[&str] = &["id", "title", "section", "step"];
pub(super) const STEP_KEYS: &[&str] = &[
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
pub(super) const STEP_KINDS: &[&str] = &["run", "manual", "watch", "http"];
pub(super) const HTTP_KEYS: &[&str] = &["url", "method", "headers", "body", "expect_status", "expect_body"];
pub(super) const ROLLBACK_KEYS: &[&str] = &["title", "phase"];
pub(super) const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Every key the format knows, anywhere.
pub(super) fn known_key(k: &str) -> bool {
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
        NOTIFY_KEYS,
    ]
    .iter()
    .any(|keys| keys.contains(&k))
}

/// Whether `t` holds an unknown key that is a misspelling of `key` (already reported with a
/// "did you mean"), so that its absence need not be reported a second time.
pub(super) fn misspelt(t: &Table, key: &str) -> bool {
    t.iter().any(|(k, _)| {
        let k: &str = k.get_ref();
        !known_key(k) && crate::runbook::diagnostic::did_you_mean(k, [key]).is_some()
    })
}

/// `[a-z0-9][a-z0-9_-]*`
pub fn is_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

pub(super) fn is_env_name(s: &str) -> bool {
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
