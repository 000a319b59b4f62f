//! `[[phase]]` and its `[[phase.step]]`s: a step's kind (`run`, `manual`, `watch`, `http`), its
//! timeout, retries, failure policy, environment and folder.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::DeValue;

use super::schema::*;
use super::{Parser, Subst, Table, Value, normalize};
use crate::runbook::diagnostic::suggestion;
use crate::runbook::model::*;

impl Parser<'_> {
    pub(super) fn phase(&mut self, t: &Table, span: Range<usize>, base: &Path, what: &str) -> Option<Phase> {
        self.check_keys(t, PHASE_KEYS, what);
        let title = self.required_text(t, &span, "title", what, Subst::Display);
        let id = self.id_or_derived(t, &span, what);
        let section = self.text(t, "section", what, Subst::Display);
        let mut steps: Vec<Step> = Vec::new();
        let step_what = if what.starts_with("[[rollback") {
            "[[rollback.phase.step]]"
        } else {
            "[[phase.step]]"
        };
        if let Some(v) = t.get("step") {
            for (sspan, st) in self.tables(v, "phase.step") {
                if let Some(s) = self.step(st, sspan.clone(), base, step_what) {
                    if steps.iter().any(|o| o.id == s.id) {
                        let pid = id.as_deref().unwrap_or("?");
                        self.err(
                            sspan,
                            format!(
                                "duplicate step id `{}` in phase `{pid}` (give one of them an `id`)",
                                s.id
                            ),
                        );
                    }
                    steps.push(s);
                }
            }
        }
        if t.get("step").is_none() {
            let name = id.as_deref().unwrap_or("?");
            let step_table = if what.starts_with("[[rollback") {
                "[[rollback.phase.step]]"
            } else {
                "[[phase.step]]"
            };
            self.err(
                span,
                format!("{what} `{name}` has no steps; add at least one {step_table}"),
            );
        }
        Some(Phase {
            id: id?,
            title: title?,
            section,
            steps,
        })
    }

    pub(super) fn step(&mut self, t: &Table, span: Range<usize>, base: &Path, what: &str) -> Option<Step> {
        self.check_keys(t, STEP_KEYS, what);
        let title = self.required_text(t, &span, "title", what, Subst::Display);
        let id = self.id_or_derived(t, &span, what);
        let kinds: Vec<&str> = STEP_KINDS
            .iter()
            .copied()
            .filter(|k| t.get(*k).is_some())
            .collect();
        let kind = match kinds.as_slice() {
            [] => {
                self.err(
                    span.clone(),
                    format!("{what} needs one of `run`, `manual`, `watch` or `http`"),
                );
                None
            }
            [k] => self.step_kind(t, k, what),
            [_, second, ..] => {
                let sp = t.get(*second).map(|v| v.span()).unwrap_or(span.clone());
                self.err(
                    sp,
                    format!(
                        "a step has exactly one of `run`, `manual`, `watch`, `http`; this one has {}",
                        kinds
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                );
                None
            }
        };
        let timeout = self.duration_nonzero(t, "timeout", what);
        if let (Some(k), Some(v)) = (&kind, t.get("timeout"))
            && matches!(k, StepKind::Manual(_) | StepKind::Watch(_))
        {
            self.err(
                v.span(),
                format!("`timeout` applies to run and http steps, not {} steps", k.name()),
            );
        }
        let retries = self.integer(t, "retries", what, 100).unwrap_or(0) as u32;
        let retry_delay = self
            .duration(t, "retry_delay", what)
            .unwrap_or(Duration::from_secs(0));
        let on_failure = match self.raw_str(t, "on_failure", what) {
            None | Some(("ask", _)) => OnFailure::Ask,
            Some(("continue", _)) => OnFailure::Continue,
            Some(("rollback", _)) => OnFailure::Rollback,
            Some((o, s)) => {
                let hint = suggestion(o, ["ask", "continue", "rollback"]);
                let o = o.to_string();
                self.err(
                    s,
                    format!("on_failure `{o}` is not one of \"ask\", \"continue\", \"rollback\"{hint}"),
                );
                OnFailure::Ask
            }
        };
        let confirm = self.bool(t, "confirm", what).unwrap_or(false);
        let env = self.string_map_checked(t, "env", what, None, true);
        let irreversible = self.bool(t, "irreversible", what).unwrap_or(false);
        let workdir = self
            .text(t, "workdir", what, Subst::Display)
            .map(|w| normalize(&base.join(w)));
        let (approval, problems) = crate::runbook::approval::step_approval(t, &span, what);
        self.diags.extend(problems);
        Some(Step {
            id: id?,
            title: title?,
            kind: kind?,
            timeout,
            retries,
            retry_delay,
            on_failure,
            confirm,
            env,
            irreversible,
            workdir,
            approval,
        })
    }

    pub(super) fn step_kind(&mut self, t: &Table, kind: &str, what: &str) -> Option<StepKind> {
        let v = t.get(kind)?;
        match kind {
            "run" => {
                let cmd = self.verbatim(t, "run", what)?;
                if cmd.trim().is_empty() {
                    self.err(v.span(), "`run` is empty");
                }
                Some(StepKind::Run(cmd))
            }
            "manual" => match v.get_ref() {
                DeValue::Boolean(true) => Some(StepKind::Manual(None)),
                DeValue::String(_) => self
                    .text(t, "manual", what, Subst::Display)
                    .map(|s| StepKind::Manual(Some(s))),
                _ => {
                    self.err(v.span(), "`manual` must be true or an instruction string");
                    None
                }
            },
            "watch" => self.duration(t, "watch", what).map(StepKind::Watch),
            "http" => {
                let ht = self.table(v, "`http`")?;
                let hw = "`http`";
                self.check_keys(ht, HTTP_KEYS, hw);
                let url = self.required_text(ht, &v.span(), "url", hw, Subst::Request);
                let method = match self.raw_str(ht, "method", hw) {
                    None => "GET".to_string(),
                    Some((m, s)) => {
                        let up = m.to_ascii_uppercase();
                        if !HTTP_METHODS.contains(&up.as_str()) {
                            let hint = suggestion(&up, HTTP_METHODS.iter().copied());
                            self.err(s, format!("method `{m}` is not an HTTP method{hint}"));
                        }
                        up
                    }
                };
                let headers = self.string_map(ht, "headers", hw, Some(Subst::Request));
                let body = self.text(ht, "body", hw, Subst::Request);
                let expect_body = self.text(ht, "expect_body", hw, Subst::Request);
                let expect_status = match ht.get("expect_status") {
                    None => vec![200],
                    Some(sv) => {
                        let items: Vec<&Value> = match sv.get_ref() {
                            DeValue::Array(a) => a.iter().collect(),
                            _ => vec![sv],
                        };
                        let mut codes = Vec::new();
                        for it in items {
                            let code = match it.get_ref() {
                                DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
                                _ => None,
                            };
                            match code {
                                Some(c) if (100..=599).contains(&c) => codes.push(c as u16),
                                _ => self.err(
                                    it.span(),
                                    "`expect_status` must be an HTTP status (100-599) or a list of them",
                                ),
                            }
                        }
                        if matches!(sv.get_ref(), DeValue::Array(a) if a.is_empty()) {
                            self.err(sv.span(), "`expect_status` is empty");
                        }
                        codes
                    }
                };
                Some(StepKind::Http(HttpSpec {
                    url: url?,
                    method,
                    headers,
                    body,
                    expect_status,
                    expect_body,
                }))
            }
            _ => None,
        }
    }
}
