//! `[secrets]`: reading their values (from the environment or a file) before anything runs, and
//! the masker made of them (`mask`).

use crate::runbook::{Runbook, SecretSource};

pub use crate::mask::{MASK, MIN_SECRET_BYTES, Redactor};

/// The largest secret file read.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

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
                SecretSource::File(path) => match crate::runbook::read_regular_file(path, MAX_FILE_BYTES) {
                    Ok(bytes) => match String::from_utf8(bytes) {
                        Ok(v) => {
                            let v = v.trim_end_matches(['\n', '\r']).to_string();
                            if v.is_empty() {
                                Err(format!("secret `{}`: file {} is empty", s.name, path.display()))
                            } else {
                                Ok(v)
                            }
                        }
                        Err(_) => Err(format!(
                            "secret `{}`: file {} is not text (invalid UTF-8)",
                            s.name,
                            path.display()
                        )),
                    },
                    Err(e) => Err(format!("secret `{}`: file {}: {e}", s.name, path.display())),
                },
            };
            // A value this short would be found in ordinary text everywhere, so it cannot be
            // masked; refusing it is better than showing it while claiming to hide it.
            let value = value.and_then(|v| {
                if v.len() < MIN_SECRET_BYTES {
                    Err(format!(
                        "secret `{}` is {} byte{} long; a secret must be at least {MIN_SECRET_BYTES} bytes to be masked",
                        s.name,
                        v.len(),
                        if v.len() == 1 { "" } else { "s" }
                    ))
                } else {
                    Ok(v)
                }
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_secret_references() {
        let s = Secrets {
            values: vec![("TOKEN".into(), "abc".into())],
        };
        assert_eq!(s.expand("Bearer ${TOKEN}"), "Bearer abc");
    }
}
