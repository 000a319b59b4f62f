//! Reading `[[notify]]` targets (SPEC §6): every key checked, every problem reported at its line
//! and column, and a template rendered against a sample of each event it is sent for, so that a
//! template that would fail (or send a body that is not JSON) is found by `validate`, not at 3 a.m.
//!
//! What the targets send is `super::super::notify`'s; delivering it is `crate::notify`'s.

use std::time::Duration;

use toml::de::DeValue;

use super::schema::{NOTIFY_KEYS, misspelt};
use super::{Parser, Subst, Table, Value};
use crate::runbook::diagnostic::suggestion;
use crate::runbook::model::{NotifyFormat, NotifyTarget};
use crate::runbook::notify::{self as format, DEFAULT_ON, EVENT_NAMES};
const FORMATS: &[&str] = &["slack", "json", "template"];
const METHODS: &[&str] = &["POST", "PUT", "PATCH", "GET", "DELETE"];

impl Parser<'_> {
    /// Every `[[notify]]` table; `title` is the runbook's, for rendering templates.
    pub(super) fn notify_targets(&mut self, v: Option<&Value>, title: &str) -> Vec<NotifyTarget> {
        let Some(v) = v else { return Vec::new() };
        let mut out: Vec<NotifyTarget> = Vec::new();
        for (span, t) in self.tables(v, "notify") {
            if let Some(n) = self.notify_target(t, span.clone(), title) {
                if out.iter().any(|o| o.id == n.id) {
                    self.err(span, format!("duplicate notify id `{}`", n.id));
                }
                out.push(n);
            }
        }
        out
    }

    fn notify_target(
        &mut self,
        t: &Table,
        span: std::ops::Range<usize>,
        title: &str,
    ) -> Option<NotifyTarget> {
        let what = "[[notify]]";
        self.check_keys(t, NOTIFY_KEYS, what);
        let id = match self.raw_str(t, "id", what) {
            Some((raw, s)) => {
                let raw = raw.to_string();
                self.check_id(&raw, s);
                Some(raw)
            }
            None => {
                if t.get("id").is_none() && !misspelt(t, "id") {
                    self.err(
                        span.clone(),
                        "[[notify]] needs an `id` (the journal names the target by it)",
                    );
                }
                None
            }
        };
        let url = self.required_text(t, &span, "url", what, Subst::Request);
        if let (Some(u), Some(v)) = (&url, t.get("url")) {
            let scheme_ok = u.starts_with("http://") || u.starts_with("https://") || u.starts_with("${");
            if !scheme_ok {
                self.err(
                    v.span(),
                    "`url` in [[notify]] must start with http:// or https://",
                );
            }
        }
        let method = match self.raw_str(t, "method", what) {
            None => "POST".to_string(),
            Some((m, s)) => {
                let up = m.to_ascii_uppercase();
                if !METHODS.contains(&up.as_str()) {
                    let hint = suggestion(&up, METHODS.iter().copied());
                    self.err(
                        s,
                        format!("method `{m}` is not one of POST, PUT, PATCH, GET, DELETE{hint}"),
                    );
                }
                up
            }
        };
        let headers = self.string_map(t, "headers", what, Some(Subst::Request));
        if let Some(DeValue::Table(h)) = t.get("headers").map(|v| v.get_ref()) {
            for (k, _) in h.iter() {
                let name: &str = k.get_ref();
                if !is_header_name(name) {
                    self.err(k.span(), format!("`{name}` is not an HTTP header name"));
                }
            }
        }
        let template = self.text(t, "template", what, Subst::Request);
        let format = match self.raw_str(t, "format", what) {
            None | Some(("slack", _)) => Some(NotifyFormat::Slack),
            Some(("json", _)) => Some(NotifyFormat::Json),
            Some(("template", s)) => match &template {
                Some(body) => Some(NotifyFormat::Template(body.clone())),
                None => {
                    self.err(s, "format = \"template\" needs a `template`: the request body");
                    None
                }
            },
            Some((f, s)) => {
                let hint = suggestion(f, FORMATS.iter().copied());
                let f = f.to_string();
                self.err(
                    s,
                    format!("format `{f}` is not one of \"slack\", \"json\", \"template\"{hint}"),
                );
                None
            }
        };
        if template.is_some()
            && !matches!(format, Some(NotifyFormat::Template(_)) | None)
            && let Some(v) = t.get("template")
        {
            self.err(
                v.span(),
                "`template` is used only with format = \"template\" (add it, or remove the template)",
            );
        }
        let on = self.notify_on(t);
        let waiting_after = match self.duration(t, "waiting_after", what) {
            Some(d) if d.is_zero() => {
                let s = t.get("waiting_after").map(|v| v.span()).unwrap_or(span.clone());
                self.err(s, "`waiting_after` in [[notify]] must be more than 0s");
                d
            }
            Some(d) => d,
            None => Duration::from_secs(120),
        };
        if let (Some(v), false) = (t.get("waiting_after"), on.iter().any(|e| e == format::WAITING)) {
            self.err(
                v.span(),
                "`waiting_after` applies to the `waiting` event, and this target's `on` does not name it",
            );
        }
        let target = NotifyTarget {
            id: id?,
            url: url?,
            format: format?,
            on,
            headers,
            method,
            waiting_after,
        };
        if let (NotifyFormat::Template(body), Some(v)) = (&target.format, t.get("template")) {
            self.check_template(&target, body, v, title);
        }
        Some(target)
    }

    /// `on`: known event names, at least one.
    fn notify_on(&mut self, t: &Table) -> Vec<String> {
        let Some(v) = t.get("on") else {
            return DEFAULT_ON.iter().map(|s| s.to_string()).collect();
        };
        let DeValue::Array(items) = v.get_ref() else {
            let found = v.get_ref().type_str();
            self.err(
                v.span(),
                format!("`on` in [[notify]] must be a list of event names, found {found}"),
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.err(
                v.span(),
                "`on` in [[notify]] is empty: this target would never be sent anything",
            );
        }
        let mut on = Vec::new();
        for it in items.iter() {
            match it.get_ref() {
                DeValue::String(s) if EVENT_NAMES.contains(&s.as_ref()) => on.push(s.to_string()),
                DeValue::String(s) => {
                    let name: &str = s.as_ref();
                    let hint = suggestion(name, EVENT_NAMES.iter().copied());
                    self.err(
                        it.span(),
                        format!("`{name}` is not an event a target can be sent{hint}"),
                    );
                }
                other => {
                    let found = other.type_str();
                    self.err(
                        it.span(),
                        format!("an event name must be a string, found {found}"),
                    );
                }
            }
        }
        on
    }

    /// Renders the template against a sample of every event in `on`: it must render, and, unless
    /// the headers say another Content-Type, be JSON.
    fn check_template(&mut self, target: &NotifyTarget, body: &str, v: &Value, title: &str) {
        let json = format::content_type(target).is_none_or(|c| c.contains("json"));
        let secrets: Vec<(String, String)> = self
            .secret_names
            .iter()
            .map(|n| (n.clone(), format!("sample-{n}")))
            .collect();
        for name in &target.on {
            let Some(record) = format::sample(name) else {
                continue;
            };
            let ctx = format::context(&record, &format::sample_run(title, &self.vars, name));
            let problem = match format::render(body, &ctx, &secrets) {
                Err(e) => Some((
                    format!("the template does not render for `{name}`: {e}"),
                    format::error_line(&e),
                )),
                Ok(out) if json => match serde_json::from_str::<serde_json::Value>(&out) {
                    Ok(_) => None,
                    Err(e) => Some((
                        format!(
                            "the template's body for `{name}` is not JSON ({e}); escape text with `|tojson` or `|json_escape`, or set a Content-Type header"
                        ),
                        Some(e.line()),
                    )),
                },
                Ok(_) => None,
            };
            if let Some((message, line)) = problem {
                let span = self.template_line(v, body, line);
                self.err(span, message);
                // One problem per template: the next event would most likely say the same.
                return;
            }
        }
    }

    /// The span of line `line` (from 1) of a template inside its TOML string, where the string's
    /// text appears as written; else the whole string.
    fn template_line(&self, v: &Value, body: &str, line: Option<usize>) -> std::ops::Range<usize> {
        let span = v.span();
        let (Some(line), Some(lit)) = (line, self.src.get(span.clone())) else {
            return span;
        };
        let raw = match v.get_ref() {
            DeValue::String(s) => s.as_ref(),
            _ => body,
        };
        let Some(pos) = lit.find(raw) else { return span };
        let offset: usize = raw
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum();
        let start = span.start + pos + offset.min(raw.len());
        let len = raw[offset.min(raw.len())..]
            .find('\n')
            .unwrap_or(raw.len() - offset.min(raw.len()));
        start..start + len.max(1)
    }
}

/// An HTTP header name: a token (RFC 9110: letters, digits and ``!#$%&'*+-.^_`|~``).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
