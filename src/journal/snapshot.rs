//! The plan snapshot carried by `run_started`: what a reader of the journal needs of the runbook
//! (phase and step ids and titles as shown, step kinds, metric units, trigger thresholds) without
//! the runbook file, which may have changed or be gone by the time the journal is read.
//!
//! Built from a checked `Runbook` (`PlanSnapshot::of`); read back by `report`, `resume` (to say
//! what changed in the file) and any front end that shows a run it did not start. Journals written
//! before the snapshot existed have none: readers fall back to ids.

use serde::{Deserialize, Serialize};

use crate::runbook::{Phase, Runbook, Step, StepKind, Threshold, TriggerKind, Unit};

/// The runbook as it was when a session started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PlanSnapshot {
    pub phases: Vec<PhaseSnapshot>,
    /// The `[rollback]` procedure's title, when the runbook has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_title: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback: Vec<PhaseSnapshot>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricSnapshot>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerSnapshot>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PhaseSnapshot {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    pub steps: Vec<StepSnapshot>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct StepSnapshot {
    pub id: String,
    /// As shown, after `${}`.
    pub title: String,
    /// `run`, `manual`, `watch` or `http`.
    pub kind: String,
    /// What the step does: the command, the manual instruction, the watch's duration, or the
    /// request (`GET https://...`). Secrets referenced in http fields stay `${NAME}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub irreversible: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct MetricSnapshot {
    pub id: String,
    pub title: String,
    /// `percent`, `seconds` or `number`, as in the runbook.
    pub unit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TriggerSnapshot {
    pub id: String,
    pub title: String,
    /// `metric`, `check`, `manual` or `alert`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// The `for` window, as a duration string (`5m`).
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// A check trigger's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// An alert trigger's alert, as a selector (`Name{service="checkout"}`), and where it is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
}

impl PlanSnapshot {
    pub fn of(rb: &Runbook) -> PlanSnapshot {
        let phases = |ps: &[Phase]| ps.iter().map(PhaseSnapshot::of).collect();
        PlanSnapshot {
            phases: phases(&rb.phases),
            rollback_title: rb.rollback.as_ref().map(|r| r.title.clone()),
            rollback: phases(rb.phases_of(true)),
            metrics: rb
                .metric
                .iter()
                .map(|m| MetricSnapshot {
                    id: m.id.clone(),
                    title: m.title.clone(),
                    unit: m.unit.as_str().to_string(),
                })
                .collect(),
            triggers: rb
                .triggers
                .iter()
                .map(|t| {
                    let mut s = TriggerSnapshot {
                        id: t.id.clone(),
                        title: t.title.clone(),
                        ..Default::default()
                    };
                    match &t.kind {
                        TriggerKind::Metric {
                            metric,
                            threshold,
                            for_,
                            ..
                        } => {
                            s.kind = "metric".into();
                            s.metric = Some(metric.clone());
                            match threshold {
                                Threshold::Above(x) => s.above = Some(*x),
                                Threshold::Below(x) => s.below = Some(*x),
                            }
                            s.for_ = Some(crate::duration::format_duration(*for_));
                        }
                        TriggerKind::Check { command, .. } => {
                            s.kind = "check".into();
                            s.check = Some(command.clone());
                        }
                        TriggerKind::Manual => s.kind = "manual".into(),
                        TriggerKind::Alert(a) => {
                            s.kind = "alert".into();
                            s.alert = Some(format!("{} from {}", a.selector(), a.source_text()));
                        }
                    }
                    s
                })
                .collect(),
        }
    }

    /// The phases of the forward plan, or of the rollback procedure.
    pub fn phases_of(&self, rollback: bool) -> &[PhaseSnapshot] {
        if rollback { &self.rollback } else { &self.phases }
    }

    pub fn phase(&self, rollback: bool, id: &str) -> Option<&PhaseSnapshot> {
        self.phases_of(rollback).iter().find(|p| p.id == id)
    }

    pub fn step(&self, rollback: bool, phase: &str, step: &str) -> Option<&StepSnapshot> {
        self.phase(rollback, phase)?.steps.iter().find(|s| s.id == step)
    }

    pub fn metric(&self, id: &str) -> Option<&MetricSnapshot> {
        self.metrics.iter().find(|m| m.id == id)
    }

    pub fn trigger(&self, id: &str) -> Option<&TriggerSnapshot> {
        self.triggers.iter().find(|t| t.id == id)
    }

    /// The unit a trigger's values are in: its metric's (none for check and manual triggers).
    pub fn trigger_unit(&self, id: &str) -> Option<Unit> {
        let metric = self.trigger(id)?.metric.as_deref()?;
        self.metric(metric).map(MetricSnapshot::unit)
    }

    /// Every text of the snapshot, for masking secrets.
    pub fn texts_mut(&mut self) -> Vec<&mut String> {
        let mut out: Vec<&mut String> = Vec::new();
        for p in self.phases.iter_mut().chain(self.rollback.iter_mut()) {
            out.push(&mut p.id);
            out.push(&mut p.title);
            out.extend(p.section.as_mut());
            for s in &mut p.steps {
                out.push(&mut s.id);
                out.push(&mut s.title);
                out.push(&mut s.kind);
                out.extend(s.what.as_mut());
            }
        }
        out.extend(self.rollback_title.as_mut());
        for m in &mut self.metrics {
            out.push(&mut m.id);
            out.push(&mut m.title);
            out.push(&mut m.unit);
        }
        for t in &mut self.triggers {
            out.push(&mut t.id);
            out.push(&mut t.title);
            out.push(&mut t.kind);
            out.extend(t.metric.as_mut());
            out.extend(t.for_.as_mut());
            out.extend(t.check.as_mut());
        }
        out
    }
}

impl PhaseSnapshot {
    fn of(p: &Phase) -> PhaseSnapshot {
        PhaseSnapshot {
            id: p.id.clone(),
            title: p.title.clone(),
            section: p.section.clone(),
            steps: p.steps.iter().map(StepSnapshot::of).collect(),
        }
    }
}

impl StepSnapshot {
    fn of(s: &Step) -> StepSnapshot {
        let what = match &s.kind {
            StepKind::Run(cmd) => Some(cmd.clone()),
            StepKind::Manual(instruction) => instruction.clone(),
            StepKind::Watch(d) => Some(crate::duration::format_duration(*d)),
            StepKind::Http(h) => Some(format!("{} {}", h.method, h.url)),
        };
        StepSnapshot {
            id: s.id.clone(),
            title: s.title.clone(),
            kind: s.kind.name().to_string(),
            what,
            irreversible: s.irreversible,
        }
    }
}

impl MetricSnapshot {
    /// The unit; one this version does not know reads as a plain number.
    pub fn unit(&self) -> Unit {
        match self.unit.as_str() {
            "percent" => Unit::Percent,
            "seconds" => Unit::Seconds,
            _ => Unit::Number,
        }
    }
}

/// How the forward plan or the rollback procedure differs between two snapshots: steps added,
/// removed, and edited (title, kind, or what it does), in plan order. Each line names the step.
pub fn differences(old: &PlanSnapshot, new: &PlanSnapshot) -> Vec<String> {
    let mut out = Vec::new();
    for rollback in [false, true] {
        let which = if rollback { "rollback step" } else { "step" };
        let steps = |p: &PlanSnapshot| -> Vec<(String, StepSnapshot)> {
            p.phases_of(rollback)
                .iter()
                .flat_map(|ph| {
                    ph.steps
                        .iter()
                        .map(move |s| (format!("{}/{}", ph.id, s.id), s.clone()))
                })
                .collect()
        };
        let (before, after) = (steps(old), steps(new));
        for (name, s) in &before {
            match after.iter().find(|(n, _)| n == name) {
                None => out.push(format!("{which} {name} removed (\"{}\")", s.title)),
                Some((_, now)) => {
                    let mut what = Vec::new();
                    if s.title != now.title {
                        what.push(format!("title \"{}\" → \"{}\"", s.title, now.title));
                    }
                    if s.kind != now.kind {
                        what.push(format!("kind {} → {}", s.kind, now.kind));
                    } else if s.what != now.what {
                        let label = match s.kind.as_str() {
                            "run" => "command",
                            "manual" => "instruction",
                            "watch" => "duration",
                            _ => "request",
                        };
                        let show = |w: &Option<String>| {
                            w.as_deref().map_or("(none)".to_string(), |w| format!("`{w}`"))
                        };
                        what.push(format!("{label} {} → {}", show(&s.what), show(&now.what)));
                    }
                    if s.irreversible != now.irreversible {
                        what.push(if now.irreversible {
                            "now irreversible".to_string()
                        } else {
                            "no longer irreversible".to_string()
                        });
                    }
                    if !what.is_empty() {
                        out.push(format!("{which} {name} edited: {}", what.join("; ")));
                    }
                }
            }
        }
        for (name, s) in &after {
            if !before.iter().any(|(n, _)| n == name) {
                out.push(format!("{which} {name} added (\"{}\")", s.title));
            }
        }
    }
    for t in &old.triggers {
        match new.trigger(&t.id) {
            None => out.push(format!("trigger {} removed (\"{}\")", t.id, t.title)),
            Some(now) if now != t => out.push(format!("trigger {} edited: {}", t.id, trigger_change(t, now))),
            Some(_) => {}
        }
    }
    for t in &new.triggers {
        if old.trigger(&t.id).is_none() {
            out.push(format!("trigger {} added (\"{}\")", t.id, t.title));
        }
    }
    out
}

/// What differs between two versions of a trigger, in the runbook's words.
fn trigger_change(a: &TriggerSnapshot, b: &TriggerSnapshot) -> String {
    let mut what = Vec::new();
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    let num = |v: Option<f64>| v.map_or("(none)".to_string(), |x| x.to_string());
    if a.title != b.title {
        what.push(format!("title \"{}\" → \"{}\"", a.title, b.title));
    }
    if a.kind != b.kind {
        what.push(format!("kind {} → {}", a.kind, b.kind));
    }
    if a.metric != b.metric {
        what.push(format!("metric {} → {}", opt(&a.metric), opt(&b.metric)));
    }
    if a.above != b.above {
        what.push(format!("above {} → {}", num(a.above), num(b.above)));
    }
    if a.below != b.below {
        what.push(format!("below {} → {}", num(a.below), num(b.below)));
    }
    if a.for_ != b.for_ {
        what.push(format!("for {} → {}", opt(&a.for_), opt(&b.for_)));
    }
    if a.check != b.check {
        what.push(format!("check `{}` → `{}`", opt(&a.check), opt(&b.check)));
    }
    what.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, title: &str, kind: &str, what: &str) -> StepSnapshot {
        StepSnapshot {
            id: id.into(),
            title: title.into(),
            kind: kind.into(),
            what: Some(what.into()),
            irreversible: false,
        }
    }

    fn plan(steps: Vec<StepSnapshot>) -> PlanSnapshot {
        PlanSnapshot {
            phases: vec![PhaseSnapshot {
                id: "deploy".into(),
                title: "Deploy".into(),
                section: None,
                steps,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn differences_name_added_removed_and_edited_steps() {
        let old = plan(vec![
            step("backup", "Back up", "run", "./backup.sh"),
            step("canary", "Canary", "run", "./deploy.sh 10"),
            step("gone", "Old check", "manual", "look"),
        ]);
        let new = plan(vec![
            step("backup", "Back up", "run", "./backup.sh"),
            step("canary", "Canary at 5%", "run", "./deploy.sh 5"),
            step("smoke", "Smoke test", "http", "GET http://x/"),
        ]);
        assert_eq!(
            differences(&old, &new),
            vec![
                "step deploy/canary edited: title \"Canary\" → \"Canary at 5%\"; command `./deploy.sh 10` → `./deploy.sh 5`",
                "step deploy/gone removed (\"Old check\")",
                "step deploy/smoke added (\"Smoke test\")",
            ]
        );
        assert!(differences(&old, &old).is_empty());
    }

    #[test]
    fn old_journals_without_a_snapshot_still_read() {
        let s: PlanSnapshot = serde_json::from_str(r#"{"phases":[]}"#).unwrap();
        assert_eq!(s, PlanSnapshot::default());
    }
}
