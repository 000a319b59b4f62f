//! Titles, kinds and units for the report, looked up in the plan snapshots of the journal's
//! sessions (the latest first, so that a step added by a resumed session has its title too).

use crate::journal::snapshot::PlanSnapshot;

/// The plan snapshots of the journal's sessions, newest first when looked up.
#[derive(Default)]
pub(super) struct Plans(pub(super) Vec<PlanSnapshot>);

impl Plans {
    pub(super) fn step_title(
        &self,
        rollback: bool,
        phase: &str,
        step: &str,
    ) -> Option<(String, String, String)> {
        self.0.iter().rev().find_map(|p| {
            let ph = p.phase(rollback, phase)?;
            let s = ph.steps.iter().find(|s| s.id == step)?;
            Some((ph.title.clone(), s.title.clone(), s.kind.clone()))
        })
    }

    pub(super) fn phase_title(&self, rollback: bool, phase: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find_map(|p| p.phase(rollback, phase).map(|ph| ph.title.clone()))
    }

    pub(super) fn trigger_title(&self, id: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find_map(|p| p.trigger(id).map(|t| t.title.clone()))
    }

    pub(super) fn trigger_unit(&self, id: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find_map(|p| p.trigger_unit(id).map(|u| u.as_str().to_string()))
    }

    pub(super) fn metric(&self, id: &str) -> Option<(String, String)> {
        self.0
            .iter()
            .rev()
            .find_map(|p| p.metric(id).map(|m| (m.title.clone(), m.unit.clone())))
    }

    /// Phase ids in plan order (forward or rollback), as the latest snapshot has them.
    pub(super) fn phase_order(&self, rollback: bool) -> Vec<String> {
        self.0
            .last()
            .map(|p| p.phases_of(rollback).iter().map(|ph| ph.id.clone()).collect())
            .unwrap_or_default()
    }
}

/// Why the rollback started, in words: "the operator's call", "trigger error-rate (Error rate
/// above 1%) fired", "step deploy/canary failed (on_failure = \"rollback\")".
pub(super) fn reason_text(reason: &str, plans: &Plans) -> String {
    if reason == "operator" {
        return "the operator's call".into();
    }
    if let Some(id) = reason.strip_prefix("trigger:") {
        return match plans.trigger_title(id) {
            Some(t) => format!("trigger {id} ({t}) fired"),
            None => format!("trigger {id} fired"),
        };
    }
    if let Some(name) = reason.strip_prefix("step:") {
        let title = name
            .split_once('/')
            .and_then(|(p, s)| plans.step_title(false, p, s))
            .map(|(_, t, _)| format!(" ({t})"))
            .unwrap_or_default();
        return format!("step {name}{title} failed");
    }
    reason.to_string()
}
