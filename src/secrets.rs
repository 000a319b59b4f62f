//! `[secrets]`: reading their values (from the environment or a file) before anything runs, and
//! masking them as `***` wherever text leaves the tool: log files, the journal, the screen.
//!
//! A multi-line secret (a PEM key, say) is masked line by line, so that masking works on output
//! that is cut into lines.

use std::sync::Arc;

use memchr::memmem;

use crate::runbook::{Runbook, SecretSource};

pub const MASK: &str = "***";

/// Secret values, by name, once read.
#[derive(Clone, Default)]
pub struct Secrets {
    pub values: Vec<(String, String)>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.values.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "Secrets({names:?})")
    }
}

/// A secret that cannot be read; `span` points at its declaration.
#[derive(Debug)]
pub struct SecretError {
    pub span: std::ops::Range<usize>,
    pub message: String,
}

impl Secrets {
    /// Reads every secret; reports every one that is missing.
    pub fn resolve(rb: &Runbook) -> Result<Secrets, Vec<SecretError>> {
        let mut values = Vec::new();
        let mut errors = Vec::new();
        for s in &rb.secrets {
            let value = match &s.source {
                SecretSource::Env(var) => match std::env::var(var) {
                    Ok(v) if !v.is_empty() => Ok(v),
                    Ok(_) => Err(format!(
                        "secret `{}`: environment variable {var} is empty",
                        s.name
                    )),
                    Err(_) => Err(format!(
                        "secret `{}`: environment variable {var} is not set",
                        s.name
                    )),
                },
                SecretSource::File(path) => match std::fs::read_to_string(path) {
                    Ok(v) => {
                        let v = v.trim_end_matches(['\n', '\r']).to_string();
                        if v.is_empty() {
                            Err(format!("secret `{}`: file {} is empty", s.name, path.display()))
                        } else {
                            Ok(v)
                        }
                    }
                    Err(e) => Err(format!(
                        "secret `{}`: cannot read {}: {e}",
                        s.name,
                        path.display()
                    )),
                },
            };
            match value {
                Ok(v) => values.push((s.name.clone(), v)),
                Err(message) => errors.push(SecretError {
                    span: s.span.clone(),
                    message,
                }),
            }
        }
        if errors.is_empty() {
            Ok(Secrets { values })
        } else {
            Err(errors)
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Replaces `${NAME}` references to secrets (kept in request fields by the parser).
    pub fn expand(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in &self.values {
            out = out.replace(&format!("${{{name}}}"), value);
        }
        out
    }

    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.values.iter().map(|(_, v)| v.as_str()))
    }
}

/// Masks secret values in bytes and text. Cheap to clone; empty when there are no secrets.
#[derive(Clone, Default)]
pub struct Redactor {
    needles: Arc<Vec<Vec<u8>>>,
}

impl Redactor {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut needles: Vec<Vec<u8>> = values
            .into_iter()
            .flat_map(|v| {
                v.lines()
                    .map(|l| l.trim_end_matches('\r').as_bytes().to_vec())
                    .collect::<Vec<_>>()
            })
            .filter(|n| n.len() >= 3)
            .collect();
        // Longest first, so that a secret containing another is masked whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Redactor {
            needles: Arc::new(needles),
        }
    }

    /// What it masks, longest first: for a process that masks the same (a step monitor).
    pub fn needles(&self) -> Vec<Vec<u8>> {
        self.needles.as_ref().clone()
    }

    /// A redactor masking exactly these byte strings (from [`Redactor::needles`]).
    pub fn from_needles(mut needles: Vec<Vec<u8>>) -> Redactor {
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Redactor {
            needles: Arc::new(needles),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// The longest masked value, in bytes: output cut anywhere must keep this much minus one back.
    pub fn longest(&self) -> usize {
        self.needles.first().map_or(0, Vec::len)
    }

    /// Masks every secret in `data`; returns it unchanged when there is nothing to mask.
    pub fn redact(&self, data: &[u8]) -> Option<Vec<u8>> {
        let mut current: Option<Vec<u8>> = None;
        for needle in self.needles.iter() {
            let hay = current.as_deref().unwrap_or(data);
            let finder = memmem::Finder::new(needle);
            if finder.find(hay).is_none() {
                continue;
            }
            let mut out = Vec::with_capacity(hay.len());
            let mut last = 0;
            for at in finder.find_iter(hay) {
                if at < last {
                    continue;
                }
                out.extend_from_slice(&hay[last..at]);
                out.extend_from_slice(MASK.as_bytes());
                last = at + needle.len();
            }
            out.extend_from_slice(&hay[last..]);
            current = Some(out);
        }
        current
    }

    pub fn redact_str(&self, text: &str) -> String {
        match self.redact(text.as_bytes()) {
            Some(v) => {
                String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
            }
            None => text.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_and_each_line_of_a_multiline_secret() {
        let r = Redactor::new(["hunter2", "-----BEGIN KEY-----\nAAAABBBB\n-----END KEY-----"]);
        let out = r.redact(b"pw=hunter2 again hunter2\nAAAABBBB\n").unwrap();
        assert_eq!(out, b"pw=*** again ***\n***\n");
        assert!(r.redact(b"nothing here").is_none());
    }

    #[test]
    fn expands_secret_references() {
        let s = Secrets {
            values: vec![("TOKEN".into(), "abc".into())],
        };
        assert_eq!(s.expand("Bearer ${TOKEN}"), "Bearer abc");
    }
}
