//! Masking secrets in an event before it is written: every text of every event (map keys
//! included), each field named so that a field added to an event cannot be forgotten here. What
//! counts as a secret is `secrets::Redactor`'s business.

use std::collections::BTreeMap;

use super::{Event, StepFinished};
use crate::secrets::Redactor;

impl Event {
    /// Masks secrets in every text of the event (map keys included). Every field is named, so
    /// that a field added to an event cannot be forgotten here.
    pub fn mask(&mut self, r: &Redactor) {
        let m = |s: &mut String| {
            if let Some(v) = r.redact(s.as_bytes()) {
                *s = String::from_utf8_lossy(&v).into_owned();
            }
        };
        let mo = |s: &mut Option<String>| {
            if let Some(s) = s {
                m(s);
            }
        };
        fn keys<V>(map: &mut BTreeMap<String, V>, r: &Redactor) {
            if map.keys().any(|k| r.redact(k.as_bytes()).is_some()) {
                *map = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (r.redact_str(&k), v))
                    .collect();
            }
        }
        match self {
            Event::RunStarted {
                runbook,
                title,
                file,
                sha256,
                operator,
                host,
                mode,
                vars,
                pid: _,
                plan,
            } => {
                for s in [runbook, title, file, sha256, operator, host, mode] {
                    m(s);
                }
                if let Some(plan) = plan {
                    plan.texts_mut().into_iter().for_each(m);
                }
                vars.values_mut().for_each(m);
                keys(vars, r);
            }
            Event::StepStarted {
                phase,
                step,
                attempt: _,
                rollback: _,
            } => {
                m(phase);
                m(step);
            }
            Event::StepFinished(f) => {
                let StepFinished {
                    phase,
                    step,
                    attempt: _,
                    rollback: _,
                    status: _,
                    duration_ms: _,
                    exit_code: _,
                    http_status: _,
                    log,
                    by,
                    metrics,
                    reason,
                    error,
                } = &mut **f;
                m(phase);
                m(step);
                for s in [log, by, reason, error] {
                    mo(s);
                }
                if let Some(metrics) = metrics {
                    keys(metrics, r);
                }
            }
            Event::Note { text, operator } => {
                m(text);
                m(operator);
            }
            Event::WriteFailed { file, error }
            | Event::StoreBehind {
                error, since: file, ..
            } => {
                m(file);
                m(error);
            }
            Event::StoreFenced { by, .. } => m(by),
            Event::StoreCaughtUp { .. }
            | Event::StoreLeaseUnconfirmed { .. }
            | Event::StoreLeaseLost { .. }
            | Event::StoreLeaseRenewed { .. } => {}
            Event::MetricsSampled { values, errors } => {
                keys(values, r);
                errors.values_mut().for_each(m);
                keys(errors, r);
            }
            Event::TriggerPending { trigger, value: _ } | Event::TriggerCleared { trigger, value: _ } => {
                m(trigger)
            }
            Event::TriggerFired {
                trigger,
                value: _,
                reason,
                labels,
            } => {
                m(trigger);
                mo(reason);
                if let Some(labels) = labels {
                    labels.values_mut().for_each(m);
                    keys(labels, r);
                }
            }
            Event::TriggerAcknowledged {
                trigger,
                value: _,
                operator,
            } => {
                m(trigger);
                mo(operator);
            }
            Event::TriggerUnknown { trigger, error } => {
                m(trigger);
                m(error);
            }
            Event::FaultInjected { by } => m(by),
            Event::RollbackStarted {
                reason,
                operator,
                note,
            } => {
                m(reason);
                mo(operator);
                mo(note);
            }
            Event::RollbackFinished { status: _ } => {}
            Event::RehearsalFigures {
                fired_to_decision_ms: _,
                rollback_ms: _,
            } => {}
            Event::Approval {
                phase,
                step,
                rollback: _,
                operator,
                from,
                metrics,
                simulated: _,
            } => {
                for s in [phase, step, operator] {
                    m(s);
                }
                from.mask(&m, &mo);
                keys(metrics, r);
            }
            Event::Handover {
                from,
                to,
                reason,
                at,
                consent: _,
            } => {
                for s in [from, to, reason] {
                    m(s);
                }
                at.mask(&m, &mo);
            }
            Event::RunFinished {
                outcome: _,
                exit_code: _,
                reason,
            } => mo(reason),
            Event::NotifySent {
                target,
                on,
                status: _,
                attempt: _,
            } => {
                m(target);
                m(on);
            }
            Event::NotifyFailed {
                target,
                on,
                status: _,
                attempt: _,
                error,
            } => {
                for s in [target, on, error] {
                    m(s);
                }
            }
            Event::NotifyRehearsed {
                target,
                on,
                method,
                url,
                body,
            } => {
                for s in [target, on, method, url, body] {
                    m(s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::Record;
    use super::*;

    #[test]
    fn masking_touches_values_never_the_json_around_them() {
        let r = Redactor::new(["false", "step-1"]);
        let mut e = Event::StepStarted {
            phase: "p".into(),
            step: "step-1".into(),
            attempt: 1,
            rollback: false,
        };
        e.mask(&r);
        let line = serde_json::to_string(&Record {
            ts: "t".into(),
            event: e,
        })
        .unwrap();
        assert_eq!(
            line,
            r#"{"ts":"t","event":"step_started","phase":"p","step":"***","attempt":1,"rollback":false}"#
        );
        let mut e = Event::MetricsSampled {
            values: [("false".to_string(), Some(1.0))].into(),
            errors: [("m".to_string(), "said false".to_string())].into(),
        };
        e.mask(&r);
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"metrics_sampled","values":{"***":1.0},"errors":{"m":"said ***"}}"#
        );
    }
}
