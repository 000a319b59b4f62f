//! The phases of a run for the report: when each started and ended, and how it went.

use super::build::span_ms;
use super::plans::Plans;
use super::{PhaseRow, StepRow};

/// A phase by (rollback, id), with its first `step_started` and last `step_finished`.
pub(super) type PhaseTime = ((bool, String), Option<String>, Option<String>);

pub(super) fn phase_time(times: &mut Vec<PhaseTime>, rollback: bool, phase: &str, ts: &str, end: bool) {
    let i = match times.iter().position(|(k, _, _)| k.0 == rollback && k.1 == phase) {
        Some(i) => i,
        None => {
            times.push(((rollback, phase.to_string()), None, None));
            times.len() - 1
        }
    };
    let entry = &mut times[i];
    if end {
        entry.2 = Some(ts.to_string());
    } else if entry.1.is_none() {
        entry.1 = Some(ts.to_string());
    }
}

/// The phases that started, forward ones first, each in plan order when the plan is known.
pub(super) fn phases(times: &[PhaseTime], rows: &[(bool, StepRow)], plans: &Plans) -> Vec<PhaseRow> {
    let mut out = Vec::new();
    for rollback in [false, true] {
        let order = plans.phase_order(rollback);
        let mut these: Vec<&PhaseTime> = times
            .iter()
            .filter(|(k, start, _)| k.0 == rollback && start.is_some())
            .collect();
        these.sort_by_key(|(k, _, _)| order.iter().position(|id| *id == k.1).unwrap_or(usize::MAX));
        for ((_, id), start, end) in these {
            let steps: Vec<&StepRow> = rows
                .iter()
                .filter(|(rb, row)| *rb == rollback && &row.phase == id && row.start.is_some())
                .map(|(_, row)| row)
                .collect();
            let status = if steps.iter().any(|s| s.status == "unfinished") {
                "unfinished"
            } else if steps
                .iter()
                .any(|s| matches!(s.status.as_str(), "failed" | "timed_out"))
            {
                "failed"
            } else if steps
                .iter()
                .any(|s| matches!(s.status.as_str(), "cancelled" | "interrupted"))
            {
                "cancelled"
            } else {
                "succeeded"
            };
            out.push(PhaseRow {
                id: id.clone(),
                title: plans.phase_title(rollback, id),
                rollback,
                start: start.clone(),
                end: end.clone(),
                duration_ms: span_ms(start.as_deref(), end.as_deref()),
                status: status.into(),
                steps: steps.len(),
            });
        }
    }
    out
}
