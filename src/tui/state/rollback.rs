//! Why a rollback runs, in the words the screen shows (the banner and the remark line): who
//! called it and what they said, which trigger fired, which step failed — as the report says it,
//! by id (the sidebar and `m` have the titles; the 80×24 banner has two rows).

use super::App;

impl App {
    /// `called by alice: the canary looks wrong`, `trigger error-rate fired`, `step
    /// canary/deploy failed`; the operator and their words are added to a trigger's or a step's.
    pub fn rollback_words(&self, reason: &str, operator: Option<&str>, note: Option<&str>) -> String {
        let mut words = if reason == "operator" {
            format!("called by {}", operator.unwrap_or("the operator"))
        } else if let Some(id) = reason.strip_prefix("trigger:") {
            format!("trigger {id} fired")
        } else if let Some(name) = reason.strip_prefix("step:") {
            format!("step {name} failed")
        } else {
            reason.to_string()
        };
        if reason != "operator"
            && let Some(o) = operator
        {
            words.push_str(&format!(", called by {o}"));
        }
        if let Some(n) = note.map(str::trim).filter(|n| !n.is_empty()) {
            words.push_str(&format!(": {n}"));
        }
        words
    }
}
