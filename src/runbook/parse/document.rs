//! The top level of a runbook: `[runbook]`, `[vars]` (and `--var` overrides), `[secrets]`,
//! `[settings]`, `[metrics]`, the lists of metrics, triggers and phases, `[rollback]`, and the checks
//! that span them (unique ids, references). A new top-level table is read here.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::DeValue;

use super::schema::*;
use super::{Parser, Subst, Table, normalize};
use crate::runbook::diagnostic::suggestion;
use crate::runbook::model::*;

impl Parser<'_> {
    pub(super) fn document(
        &mut self,
        root: &Table,
        path: &Path,
        base: &Path,
        overrides: &[(String, String)],
    ) -> Result<Runbook, String> {
        self.check_keys(root, TOP_KEYS, "the top level");

        // [vars] first: everything else may refer to them.
        if let Some(v) = root.get("vars")
            && let Some(t) = self.table(v, "[vars]")
        {
            for (k, val) in t.iter() {
                let name: &str = k.get_ref();
                if !is_env_name(name) {
                    self.err(k.span(), format!("variable name `{name}` must be letters, digits and _ (it is exported to commands' environment)"));
                }
                match val.get_ref() {
                    DeValue::String(s) => self.vars.push((name.to_string(), s.to_string())),
                    other => {
                        let found = other.type_str();
                        self.err(
                            val.span(),
                            format!("variable `{name}` must be a string, found {found} (quote it)"),
                        );
                    }
                }
            }
        }
        for (name, value) in overrides {
            match self.vars.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = value.clone(),
                None => {
                    let known: Vec<&str> = self.vars.iter().map(|(n, _)| n.as_str()).collect();
                    let hint = suggestion(name, known.iter().copied());
                    let list = if known.is_empty() {
                        "the runbook has no [vars]".to_string()
                    } else {
                        format!("known: {}", known.join(", "))
                    };
                    return Err(format!(
                        "--var {name}: no such variable in {}{hint} ({list})",
                        path.display()
                    ));
                }
            }
        }

        let mut secrets = Vec::new();
        if let Some(v) = root.get("secrets")
            && let Some(t) = self.table(v, "[secrets]")
        {
            for (k, val) in t.iter() {
                let name: &str = k.get_ref();
                if !is_env_name(name) {
                    self.err(
                        k.span(),
                        format!("secret name `{name}` must be letters, digits and _"),
                    );
                }
                if self.vars.iter().any(|(n, _)| n == name) {
                    self.err(k.span(), format!("`{name}` is both a var and a secret"));
                }
                let what = format!("secret `{name}`");
                let Some(st) = self.table(val, &what) else {
                    continue;
                };
                self.check_keys(st, &["env", "file"], &what);
                let env = self.verbatim(st, "env", &what);
                let file = self.verbatim(st, "file", &what);
                let source = match (env, file) {
                    (Some(e), None) => SecretSource::Env(e),
                    (None, Some(f)) => SecretSource::File(base.join(f)),
                    _ => {
                        self.err(
                            val.span(),
                            format!(
                                "{what} needs exactly one of `env` or `file`, e.g. {{ env = \"{name}\" }}"
                            ),
                        );
                        continue;
                    }
                };
                self.secret_names.push(name.to_string());
                secrets.push(SecretSpec {
                    name: name.to_string(),
                    source,
                    span: val.span(),
                });
            }
        }

        let mut title = String::new();
        let mut description = None;
        let mut id = None;
        let mut lock = None;
        match root.get("runbook") {
            None if misspelt(root, "runbook") => {}
            None => self.err(0..0, "missing [runbook] table with a `title`"),
            Some(v) => {
                if let Some(t) = self.table(v, "[runbook]") {
                    self.check_keys(t, RUNBOOK_KEYS, "[runbook]");
                    title = self
                        .required_text(t, &v.span(), "title", "[runbook]", Subst::Display)
                        .unwrap_or_default();
                    description = self.text(t, "description", "[runbook]", Subst::Display);
                    let (name, problems) = crate::runbook::approval::lock_name(t, "[runbook]");
                    self.diags.extend(problems);
                    lock = name;
                    if let Some((raw, span)) = self.raw_str(t, "id", "[runbook]") {
                        let raw = raw.to_string();
                        self.check_id(&raw, span);
                        id = Some(raw);
                    }
                }
            }
        }
        let id = id.unwrap_or_else(|| {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let d = derive_id(&stem);
            if d.is_empty() { "runbook".into() } else { d }
        });

        let mut settings = Settings {
            shell: "sh".into(),
            workdir: base.to_path_buf(),
            kill_grace: Duration::from_secs(10),
        };
        if let Some(v) = root.get("settings")
            && let Some(t) = self.table(v, "[settings]")
        {
            self.check_keys(t, SETTINGS_KEYS, "[settings]");
            if let Some(s) = self.verbatim(t, "shell", "[settings]") {
                settings.shell = s;
            }
            if let Some(w) = self.text(t, "workdir", "[settings]", Subst::Display) {
                settings.workdir = normalize(&base.join(w));
            }
            if let Some(d) = self.duration(t, "kill_grace", "[settings]") {
                settings.kill_grace = d;
            }
        }

        let mut metrics = MetricsSettings {
            url: None,
            interval: Duration::from_secs(5),
            headers: Vec::new(),
        };
        if let Some(v) = root.get("metrics")
            && let Some(t) = self.table(v, "[metrics]")
        {
            self.check_keys(t, METRICS_KEYS, "[metrics]");
            metrics.url = self.text(t, "url", "[metrics]", Subst::Display);
            if let Some(d) = self.duration(t, "interval", "[metrics]") {
                if d.is_zero() {
                    self.err(
                        t.get("interval").map(|v| v.span()).unwrap_or(v.span()),
                        "`interval` in [metrics] must be more than 0s",
                    );
                }
                metrics.interval = d;
            }
            metrics.headers = self.string_map(t, "headers", "[metrics]", Some(Subst::Request));
        }

        let mut metric_list: Vec<Metric> = Vec::new();
        if let Some(v) = root.get("metric") {
            for (span, t) in self.tables(v, "metric") {
                if let Some(m) = self.metric(t, span.clone()) {
                    if metric_list.iter().any(|o| o.id == m.id) {
                        self.err(span, format!("duplicate metric id `{}`", m.id));
                    }
                    metric_list.push(m);
                }
            }
        }

        let mut phases = Vec::new();
        match root.get("phase") {
            None if misspelt(root, "phase") => {}
            None => self.err(0..0, "a runbook needs at least one [[phase]] with steps"),
            Some(v) => {
                for (span, t) in self.tables(v, "phase") {
                    if let Some(p) = self.phase(t, span.clone(), base, "[[phase]]") {
                        if phases.iter().any(|o: &Phase| o.id == p.id) {
                            self.err(span, format!("duplicate phase id `{}`", p.id));
                        }
                        phases.push(p);
                    }
                }
            }
        }

        let mut rollback = None;
        if let Some(v) = root.get("rollback")
            && let Some(t) = self.table(v, "[rollback]")
        {
            self.check_keys(t, ROLLBACK_KEYS, "[rollback]");
            let title = self
                .text(t, "title", "[rollback]", Subst::Display)
                .unwrap_or_else(|| "Rollback".into());
            let mut rphases: Vec<Phase> = Vec::new();
            match t.get("phase") {
                None => self.err(v.span(), "[rollback] needs at least one [[rollback.phase]]"),
                Some(pv) => {
                    for (span, pt) in self.tables(pv, "rollback.phase") {
                        if let Some(p) = self.phase(pt, span.clone(), base, "[[rollback.phase]]") {
                            if rphases.iter().chain(phases.iter()).any(|o| o.id == p.id) {
                                self.err(
                                    span,
                                    format!(
                                        "duplicate phase id `{}` (rollback phases need ids of their own)",
                                        p.id
                                    ),
                                );
                            }
                            rphases.push(p);
                        }
                    }
                }
            }
            rollback = Some(Rollback {
                title,
                phases: rphases,
            });
        }

        let mut triggers: Vec<Trigger> = Vec::new();
        if let Some(v) = root.get("trigger") {
            for (span, t) in self.tables(v, "trigger") {
                if let Some(tr) = self.trigger(t, span.clone(), &metric_list, &phases, &metrics) {
                    if triggers.iter().any(|o| o.id == tr.id) {
                        self.err(span, format!("duplicate trigger id `{}`", tr.id));
                    }
                    triggers.push(tr);
                }
            }
        }

        // on_failure = "rollback" needs somewhere to go.
        if rollback.is_none()
            && let Some(v) = root.get("phase")
            && let DeValue::Array(items) = v.get_ref()
        {
            for item in items.iter() {
                let Some(pt) = item.get_ref().as_table() else {
                    continue;
                };
                let Some(steps) = pt.get("step").and_then(|s| s.get_ref().as_array()) else {
                    continue;
                };
                for st in steps.iter() {
                    if let Some(of) = st.get_ref().as_table().and_then(|t| t.get("on_failure"))
                        && of.get_ref().as_str() == Some("rollback")
                    {
                        self.err(of.span(), "`on_failure = \"rollback\"` needs a [rollback] procedure, and this runbook has none");
                    }
                }
            }
        }

        let notify = self.notify_targets(root.get("notify"), &title);

        Ok(Runbook {
            notify,
            id,
            title,
            description,
            lock,
            file: path.to_path_buf(),
            sha256: String::new(),
            vars: self.vars.clone(),
            secrets,
            settings,
            metrics,
            metric: metric_list,
            triggers,
            phases,
            rollback,
        })
    }

    pub(super) fn check_id(&mut self, id: &str, span: Range<usize>) {
        if !is_id(id) {
            self.err(
                span,
                format!("id `{id}` must start with a-z or 0-9 and contain only a-z, 0-9, - and _"),
            );
        }
    }

    /// The explicit `id`, or one derived from the title.
    pub(super) fn id_or_derived(&mut self, t: &Table, span: &Range<usize>, what: &str) -> Option<String> {
        if let Some((raw, s)) = self.raw_str(t, "id", what) {
            let raw = raw.to_string();
            self.check_id(&raw, s);
            return Some(raw);
        }
        let (title, s) = self.raw_str(t, "title", what)?;
        let derived = derive_id(&title.replace("${", "").replace('}', ""));
        if derived.is_empty() {
            self.err(
                s,
                format!("cannot derive an id from this title; give the {what} an `id`"),
            );
            return None;
        }
        let _ = span;
        Some(derived)
    }
}
