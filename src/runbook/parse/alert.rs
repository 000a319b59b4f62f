//! Alert triggers in a runbook file (SPEC §7): `alert`, `labels`, `source`, `alertmanager` and
//! `on_no_data`, checked with the rest of a `[[trigger]]`, every problem pointing at its key.
//!
//! What the alerting rule decides (its expression, its threshold, its `for`) stays in the rule:
//! the keys that would restate it here are refused, so that nobody believes a `for` in the runbook
//! changes when the alert fires. Polling the alerts is `metrics::alerts`'s business.

use std::ops::Range;

use super::{Parser, Subst, Table};
use crate::runbook::diagnostic::suggestion;
use crate::runbook::model::*;

/// Keys only an alert trigger has.
const ALERT_ONLY: &[&str] = &["labels", "source", "alertmanager"];

/// Keys of metric and check triggers, refused in an alert trigger.
const NOT_FOR_ALERTS: &[&str] = &["metric", "check", "above", "below", "interval", "timeout"];

impl Parser<'_> {
    /// The kind of a trigger that has an `alert` key; `None` when it cannot be built (the problems
    /// are reported).
    pub(super) fn alert_trigger(
        &mut self,
        t: &Table,
        span: &Range<usize>,
        id: &str,
        settings: &MetricsSettings,
    ) -> Option<TriggerKind> {
        let what = "[[trigger]]";
        let alert_span = t.get("alert").map_or(span.clone(), |v| v.span());
        let alert = self.text(t, "alert", what, Subst::Display)?;
        let mut ok = true;
        if alert.trim().is_empty() || alert.chars().any(char::is_control) {
            self.err(
                alert_span.clone(),
                format!("`alert` in trigger `{id}` must name an alerting rule's alert, found {alert:?}"),
            );
            ok = false;
        }
        for k in NOT_FOR_ALERTS {
            if let Some(v) = t.get(*k) {
                self.err(
                    v.span(),
                    format!(
                        "trigger `{id}` follows alert `{alert}`: `{k}` belongs to metric and check triggers; a trigger watches one thing"
                    ),
                );
                ok = false;
            }
        }
        if let Some(v) = t.get("for") {
            self.err(
                v.span(),
                format!(
                    "`for` of alert trigger `{id}` is the alerting rule's own: set it in the rule, where Prometheus applies it"
                ),
            );
            ok = false;
        }
        let labels = self.string_map(t, "labels", what, Some(Subst::Display));
        if let Some(lv) = t.get("labels")
            && let Some(lt) = lv.get_ref().as_table()
        {
            for (k, _) in lt.iter() {
                let name: &str = k.get_ref();
                if name == "alertname" {
                    self.err(
                        k.span(),
                        format!("the alert's name is `alert` (trigger `{id}`), not a label matcher"),
                    );
                    ok = false;
                } else if !is_label_name(name) {
                    self.err(
                        k.span(),
                        format!(
                            "label name `{name}` must be letters, digits and _, not starting with a digit"
                        ),
                    );
                    ok = false;
                }
            }
        }
        let source = self.raw_str(t, "source", what).map(|(s, sp)| (s.to_string(), sp));
        let alertmanager = self.text(t, "alertmanager", what, Subst::Display);
        let am_span = t.get("alertmanager").map(|v| v.span());
        if let (Some(url), Some(sp)) = (&alertmanager, &am_span)
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            self.err(
                sp.clone(),
                format!("`alertmanager` must be an http:// or https:// URL, found {url:?}"),
            );
            ok = false;
        }
        let source = match (source, alertmanager) {
            (None, Some(url)) => AlertSource::Alertmanager(url),
            (Some((s, _)), Some(url)) if s == "alertmanager" => AlertSource::Alertmanager(url),
            (Some((s, sp)), None) if s == "alertmanager" => {
                self.err(
                    sp,
                    format!(
                        "trigger `{id}` reads an Alertmanager: it needs `alertmanager = \"http://HOST:9093\"`"
                    ),
                );
                return None;
            }
            (Some((s, _)), am) if s == "prometheus" => {
                if am.is_some() {
                    self.err(
                        am_span.unwrap_or(span.clone()),
                        format!(
                            "`alertmanager` is read only with source = \"alertmanager\", and trigger `{id}` has source = \"prometheus\""
                        ),
                    );
                    ok = false;
                }
                AlertSource::Prometheus
            }
            (Some((s, sp)), _) => {
                let hint = suggestion(&s, ["prometheus", "alertmanager"]);
                self.err(
                    sp,
                    format!("source `{s}` is not one of \"prometheus\", \"alertmanager\"{hint}"),
                );
                return None;
            }
            (None, None) => AlertSource::Prometheus,
        };
        if source == AlertSource::Prometheus && settings.url.is_none() {
            self.err(
                alert_span,
                format!(
                    "alert trigger `{id}` reads Prometheus' alerts, and there is no [metrics] url: set it (--prometheus overrides it for a run), or give `alertmanager = URL`"
                ),
            );
            ok = false;
        }
        let on_no_data = self.on_no_data(t, what);
        ok.then_some(TriggerKind::Alert(AlertTrigger {
            alert,
            labels,
            source,
            on_no_data,
        }))
    }

    /// A trigger without `alert` may not use the keys of one.
    pub(super) fn refuse_alert_keys(&mut self, t: &Table, id: &str) {
        for k in ALERT_ONLY {
            if let Some(v) = t.get(*k) {
                self.err(
                    v.span(),
                    format!("`{k}` belongs to alert triggers, and trigger `{id}` has no `alert`"),
                );
            }
        }
    }

    /// `on_no_data`: what a trigger does when its source has nothing to say (default "warn").
    pub(super) fn on_no_data(&mut self, t: &Table, what: &str) -> OnNoData {
        match self.raw_str(t, "on_no_data", what) {
            None | Some(("warn", _)) => OnNoData::Warn,
            Some(("hold", _)) => OnNoData::Hold,
            Some(("rollback", _)) => OnNoData::Rollback,
            Some((o, s)) => {
                let hint = suggestion(o, ["warn", "hold", "rollback"]);
                let o = o.to_string();
                self.err(
                    s,
                    format!("on_no_data `{o}` is not one of \"warn\", \"hold\", \"rollback\"{hint}"),
                );
                OnNoData::Warn
            }
        }
    }
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
