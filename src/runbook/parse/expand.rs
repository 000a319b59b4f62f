//! `${name}` substitution in the text the tool reads itself (titles, URLs, request bodies):
//! vars are substituted, secrets are kept as references for the moment of a request and refused
//! where the text is shown.

use std::ops::Range;

use super::{Parser, Subst};
use crate::runbook::diagnostic::suggestion;

impl Parser<'_> {
    /// Substitutes `${name}` with vars. Undefined names are errors pointing at the reference;
    /// secrets are kept as references in request text and refused in displayed text.
    pub(super) fn expand(&mut self, raw: &str, span: Range<usize>, mode: Subst) -> String {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        let mut consumed = 0;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(stripped) = after.strip_prefix("${") {
                // `$${` is a literal `${`
                out.push_str("${");
                consumed += i + 3;
                rest = stripped;
                continue;
            }
            if !after.starts_with('{') {
                out.push('$');
                consumed += i + 1;
                rest = after;
                continue;
            }
            let at = self.locate(span.clone(), raw, consumed + i);
            let Some(end) = after.find('}') else {
                self.err(at, "`${` without a closing `}` (write `$${` for a literal `${`)");
                out.push_str(&rest[i..]);
                return out;
            };
            let name = &after[1..end];
            let whole = &rest[i..i + 2 + end];
            if let Some((_, value)) = self.vars.iter().find(|(n, _)| n == name) {
                out.push_str(value);
            } else if self.secret_names.iter().any(|n| n == name) {
                if mode == Subst::Display {
                    self.err(
                        at,
                        format!("secret `{name}` cannot be used here: it would be shown on screen and in the journal"),
                    );
                }
                out.push_str(whole);
            } else {
                let known: Vec<&str> = self
                    .vars
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .chain(self.secret_names.iter().map(String::as_str))
                    .collect();
                let hint = suggestion(name, known.iter().copied());
                self.err(
                    at,
                    format!("`${{{name}}}` is not defined in [vars] or [secrets]{hint}"),
                );
                out.push_str(whole);
            }
            consumed += i + 2 + end;
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The span of byte `offset` of a string's value inside its literal, when the literal is a plain
    /// one whose text appears verbatim; otherwise the whole literal.
    pub(super) fn locate(&self, span: Range<usize>, raw: &str, offset: usize) -> Range<usize> {
        let lit = self.src.get(span.clone()).unwrap_or("");
        if let Some(pos) = lit.find(raw) {
            let start = span.start + pos + offset;
            let end = raw[offset..].find('}').map_or(start + 2, |e| start + e + 1);
            return start..end;
        }
        span
    }
}
