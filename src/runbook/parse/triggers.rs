//! `[[metric]]` (a query or command, its unit, a simulation) and `[[trigger]]` (a threshold on a
//! metric, or a check command; its window, arming and what happens when it fires).

use std::ops::Range;
use std::time::Duration;

use super::schema::*;
use super::{Parser, Subst, Table};
use crate::runbook::diagnostic::suggestion;
use crate::runbook::model::*;

impl Parser<'_> {
    pub(super) fn metric(&mut self, t: &Table, span: Range<usize>) -> Option<Metric> {
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

    pub(super) fn trigger(
        &mut self,
        t: &Table,
        span: Range<usize>,
        metrics: &[Metric],
        phases: &[Phase],
        settings: &MetricsSettings,
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
        if t.get("alert").is_some() {
            let kind = self.alert_trigger(t, &span, &id, settings)?;
            return Some(Trigger {
                id,
                title,
                kind,
                armed_from,
                auto_rollback,
            });
        }
        self.refuse_alert_keys(t, &id);
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
                let on_no_data = self.on_no_data(t, what);
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
}
