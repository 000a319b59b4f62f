//! The report's timeline rows for trigger events, and the one-line words for an event ("where did
//! the run stop"). `build` decides which events reach the timeline; this only words them.

use std::collections::BTreeMap;

use super::plans::Plans;
use super::{Report, TimelineRow, TriggerRow};
use crate::journal::Event;

/// A trigger event: into the trigger list and the timeline, with its title and unit.
#[allow(clippy::too_many_arguments)]
pub(super) fn trigger_event(
    r: &mut Report,
    plans: &Plans,
    latest: &BTreeMap<String, Option<f64>>,
    ts: &str,
    event: &str,
    trigger: Option<&String>,
    value: Option<f64>,
    details: impl FnOnce(&mut TriggerRow),
) {
    let mut t = TriggerRow {
        ts: ts.to_string(),
        event: event.to_string(),
        trigger: trigger.cloned(),
        title: trigger.and_then(|id| plans.trigger_title(id)),
        value,
        unit: trigger.and_then(|id| plans.trigger_unit(id)),
        reason: None,
        operator: None,
        error: None,
        by: None,
    };
    details(&mut t);
    let what = event.strip_prefix("trigger_").unwrap_or(event).replace('_', " ");
    r.timeline.push(TimelineRow {
        ts: t.ts.clone(),
        event: t.event.clone(),
        what,
        subject: t.trigger.clone(),
        title: t.title.clone(),
        value: t.value,
        unit: t.unit.clone(),
        by: t.operator.clone().or_else(|| t.by.clone()),
        detail: t.reason.clone().or_else(|| t.error.clone()),
        metrics: latest.clone(),
    });
    r.triggers.push(t);
}

/// The event's name as the journal spells it (`step_started`).
pub(super) fn event_name(e: &Event) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.get("event").and_then(|n| n.as_str()).map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// One line about an event, for "where did the run stop".
pub(super) fn summarize(e: &Event) -> String {
    match e {
        Event::RunStarted {
            mode, operator, host, ..
        } => format!("{mode} started by {operator}@{host}"),
        Event::StepStarted {
            phase,
            step,
            attempt,
            rollback,
        } => format!(
            "{}{phase}/{step} started (attempt {attempt})",
            if *rollback { "rollback step " } else { "" }
        ),
        Event::StepFinished(f) => format!(
            "{}{}/{} {} (attempt {})",
            if f.rollback { "rollback step " } else { "" },
            f.phase,
            f.step,
            f.status.as_str(),
            f.attempt
        ),
        Event::Note { operator, .. } => format!("note by {operator}"),
        Event::StoreBehind { .. }
        | Event::StoreCaughtUp { .. }
        | Event::StoreLeaseUnconfirmed { .. }
        | Event::StoreLeaseLost { .. }
        | Event::StoreLeaseRenewed { .. }
        | Event::StoreFenced { .. } => crate::journal::store_event::describe(e).unwrap_or_default(),
        Event::WriteFailed { file, .. } => format!("{file} could not be written"),
        Event::MetricsSampled { .. } => "metrics sampled".into(),
        Event::TriggerPending { trigger, .. } => format!("trigger {trigger} pending"),
        Event::TriggerFired { trigger, .. } => format!("trigger {trigger} fired"),
        Event::TriggerCleared { trigger, .. } => format!("trigger {trigger} cleared"),
        Event::TriggerAcknowledged { trigger, .. } => format!("trigger {trigger} acknowledged"),
        Event::TriggerUnknown { trigger, .. } => format!("trigger {trigger} unknown"),
        Event::FaultInjected { by } => format!("fault injected by {by}"),
        Event::RollbackStarted { reason, .. } => format!("rollback started ({reason})"),
        Event::RollbackFinished { status } => format!("rollback {status}"),
        Event::RehearsalFigures { .. } => "rehearsal figures".into(),
        Event::RunFinished { outcome, .. } => format!("run {}", outcome.as_str()),
        Event::Approval { .. } | Event::Handover { .. } => {
            crate::journal::team::describe(e).unwrap_or_default()
        }
        Event::NotifySent { .. } | Event::NotifyFailed { .. } | Event::NotifyRehearsed { .. } => {
            e.notify_words().unwrap_or_default()
        }
    }
}
