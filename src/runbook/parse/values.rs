//! Reading one value of a table — a string, a bool, a number, an integer, a duration, a table of
//! strings — with a diagnostic at its span when it has the wrong type or shape.

use std::ops::Range;
use std::time::Duration;

use toml::de::DeValue;

use super::schema::{is_env_name, misspelt};
use super::{Parser, Subst, Table, Value};
use crate::duration::parse_duration;
use crate::runbook::diagnostic::{Diagnostic, suggestion};

impl Parser<'_> {
    pub(super) fn err(&mut self, span: Range<usize>, msg: impl Into<String>) {
        self.diags.push(Diagnostic::new(span, msg));
    }

    /// Reports every key of `t` that is not in `allowed`.
    pub(super) fn check_keys(&mut self, t: &Table, allowed: &[&str], what: &str) {
        for (k, _) in t.iter() {
            let name: &str = k.get_ref();
            if !allowed.contains(&name) {
                let hint = suggestion(name, allowed.iter().copied());
                self.err(k.span(), format!("unknown key `{name}` in {what}{hint}"));
            }
        }
    }

    pub(super) fn table<'t, 'i>(&mut self, v: &'t Value<'i>, what: &str) -> Option<&'t Table<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.err(
                    v.span(),
                    format!("{what} must be a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// An array of tables (`[[x]]`), each with its span.
    pub(super) fn tables<'t, 'i>(
        &mut self,
        v: &'t Value<'i>,
        what: &str,
    ) -> Vec<(Range<usize>, &'t Table<'i>)> {
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| self.table(item, what).map(|t| (item.span(), t)))
                .collect(),
            other => {
                self.err(
                    v.span(),
                    format!(
                        "{what} must be an array of tables (written [[{what}]]), found {}",
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        }
    }

    pub(super) fn raw_str<'t>(
        &mut self,
        t: &'t Table,
        key: &str,
        what: &str,
    ) -> Option<(&'t str, Range<usize>)> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.as_ref(), v.span())),
            other => {
                self.err(
                    v.span(),
                    format!("`{key}` in {what} must be a string, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// A string read by the tool itself, with `${name}` substituted.
    pub(super) fn text(&mut self, t: &Table, key: &str, what: &str, mode: Subst) -> Option<String> {
        let (raw, span) = self.raw_str(t, key, what)?;
        Some(self.expand(raw, span, mode))
    }

    /// A string used as given (commands: never substituted; the shell sees exported variables).
    pub(super) fn verbatim(&mut self, t: &Table, key: &str, what: &str) -> Option<String> {
        self.raw_str(t, key, what).map(|(s, _)| s.to_string())
    }

    pub(super) fn required_text(
        &mut self,
        t: &Table,
        span: &Range<usize>,
        key: &str,
        what: &str,
        mode: Subst,
    ) -> Option<String> {
        if t.get(key).is_none() {
            if !misspelt(t, key) {
                self.err(span.clone(), format!("{what} needs a `{key}`"));
            }
            return None;
        }
        self.text(t, key, what, mode)
    }

    pub(super) fn bool(&mut self, t: &Table, key: &str, what: &str) -> Option<bool> {
        let v = t.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.err(
                    v.span(),
                    format!(
                        "`{key}` in {what} must be true or false, found {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    pub(super) fn number(&mut self, t: &Table, key: &str, what: &str) -> Option<f64> {
        let v = t.get(key)?;
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok().map(|i| i as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                let found = v.get_ref().type_str();
                self.err(
                    v.span(),
                    format!("`{key}` in {what} must be a finite number, found {found}"),
                );
                None
            }
        }
    }

    pub(super) fn integer(&mut self, t: &Table, key: &str, what: &str, max: i64) -> Option<i64> {
        let v = t.get(key)?;
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        match n {
            Some(n) if (0..=max).contains(&n) => Some(n),
            Some(n) => {
                self.err(
                    v.span(),
                    format!("`{key}` in {what} must be between 0 and {max}, found {n}"),
                );
                None
            }
            None => {
                let found = v.get_ref().type_str();
                self.err(
                    v.span(),
                    format!("`{key}` in {what} must be a whole number, found {found}"),
                );
                None
            }
        }
    }

    pub(super) fn duration(&mut self, t: &Table, key: &str, what: &str) -> Option<Duration> {
        let v = t.get(key)?;
        let DeValue::String(raw) = v.get_ref() else {
            let found = v.get_ref().type_str();
            self.err(
                v.span(),
                format!(
                    "`{key}` in {what} must be a duration string such as \"90s\" or \"5m\", found {found}"
                ),
            );
            return None;
        };
        let raw: &str = raw.as_ref();
        let before = self.diags.len();
        let text = self.expand(raw, v.span(), Subst::Display);
        if self.diags.len() > before {
            return None;
        }
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                let from = if text != raw {
                    format!(" (from `{raw}`)")
                } else {
                    String::new()
                };
                self.err(v.span(), format!("`{key}` in {what}: {e}{from}"));
                None
            }
        }
    }

    /// A duration where zero makes no sense (a timeout: nothing could ever finish in it).
    pub(super) fn duration_nonzero(&mut self, t: &Table, key: &str, what: &str) -> Option<Duration> {
        let d = self.duration(t, key, what)?;
        if d.is_zero() {
            let span = t.get(key).map(|v| v.span()).unwrap_or(0..0);
            self.err(span, format!("`{key}` in {what} must be more than 0s"));
            return None;
        }
        Some(d)
    }

    /// A table of string values (`env`, `headers`).
    pub(super) fn string_map(
        &mut self,
        t: &Table,
        key: &str,
        what: &str,
        mode: Option<Subst>,
    ) -> Vec<(String, String)> {
        self.string_map_checked(t, key, what, mode, false)
    }

    /// `string_map`, where `env_names` asks that every key be a valid environment variable name.
    pub(super) fn string_map_checked(
        &mut self,
        t: &Table,
        key: &str,
        what: &str,
        mode: Option<Subst>,
        env_names: bool,
    ) -> Vec<(String, String)> {
        let Some(v) = t.get(key) else { return Vec::new() };
        let Some(map) = self.table(v, &format!("`{key}` in {what}")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, val) in map.iter() {
            let name: &str = k.get_ref();
            if env_names && !is_env_name(name) {
                self.err(
                    k.span(),
                    format!("environment name `{name}` must be letters, digits and _"),
                );
            }
            match val.get_ref() {
                DeValue::String(s) => {
                    let s: &str = s.as_ref();
                    let s = match mode {
                        Some(m) => self.expand(s, val.span(), m),
                        None => s.to_string(),
                    };
                    out.push((name.to_string(), s));
                }
                other => {
                    let found = other.type_str();
                    self.err(
                        val.span(),
                        format!("`{key}.{name}` in {what} must be a string, found {found}"),
                    );
                }
            }
        }
        out
    }
}
