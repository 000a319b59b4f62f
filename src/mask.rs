//! Masking secret values as `***` wherever text leaves the tool: log files, the journal, the
//! screen, requests shown. Knows nothing of where the values come from (`secrets` reads them).
//!
//! A multi-line secret (a PEM key, say) is masked line by line, so that masking works on output
//! that is cut into lines.

use std::sync::Arc;

use memchr::memmem;

pub const MASK: &str = "***";

/// Masks secret values in bytes and text. Cheap to clone; empty when there are no secrets.
///
/// A secret is masked in the forms it takes in requests as well as verbatim: percent-encoded
/// (any byte as `%XX`, upper or lower hex, a space also as `+`, in any mix, as URL and form
/// encoders each choose their own set of bytes to encode) and in base64 (as inside an
/// `Authorization: Basic` header, where it follows a user name at any alignment).
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Arc<Needles>,
}

#[derive(Default)]
struct Needles {
    /// The secrets (each line of a multi-line one), longest first, matched with their encodings.
    plain: Vec<Vec<u8>>,
    /// Bytes that can start a match of a `plain` needle.
    starts: Vec<bool>,
    /// Exact byte strings (the base64 forms), longest first.
    exact: Vec<Vec<u8>>,
    /// The longest text a match can span.
    longest: usize,
    /// The values it was made from: another process (a step monitor) makes the same from them.
    values: Vec<String>,
}

/// The shortest secret that can be masked: anything shorter would mask ordinary text everywhere,
/// so `Secrets::resolve` refuses it.
pub const MIN_SECRET_BYTES: usize = 3;

impl Redactor {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Redactor {
        let values: Vec<String> = values.into_iter().map(str::to_string).collect();
        let mut plain: Vec<Vec<u8>> = values
            .iter()
            .flat_map(|v| {
                v.lines()
                    .map(|l| l.trim_end_matches('\r').as_bytes().to_vec())
                    .collect::<Vec<_>>()
            })
            .filter(|n| n.len() >= MIN_SECRET_BYTES)
            .collect();
        // Longest first, so that a secret containing another is masked whole.
        plain.sort_by_key(|n| std::cmp::Reverse(n.len()));
        plain.dedup();
        if plain.is_empty() {
            return Redactor::default();
        }
        let mut starts = vec![false; 256];
        starts[usize::from(b'%')] = true;
        for n in &plain {
            starts[usize::from(n[0])] = true;
            if n[0] == b' ' {
                starts[usize::from(b'+')] = true;
            }
        }
        let mut exact: Vec<Vec<u8>> = plain.iter().flat_map(|n| base64_forms(n)).collect();
        exact.sort_by_key(|n| std::cmp::Reverse(n.len()));
        exact.dedup();
        let longest = plain[0].len() * 3;
        let longest = longest.max(exact.first().map_or(0, Vec::len));
        Redactor {
            inner: Arc::new(Needles {
                plain,
                starts,
                exact,
                longest,
                values,
            }),
        }
    }

    /// The values it masks: `Redactor::new` of them masks the same (in a step monitor).
    pub fn values(&self) -> &[String] {
        &self.inner.values
    }

    pub fn is_empty(&self) -> bool {
        self.inner.plain.is_empty()
    }

    /// The longest text a masked value can span, in bytes (a secret fully percent-encoded is
    /// three times its length): output cut anywhere must keep this much minus one back.
    pub fn longest(&self) -> usize {
        self.inner.longest
    }

    /// Masks every secret in `data`; returns `None` when there is nothing to mask.
    pub fn redact(&self, data: &[u8]) -> Option<Vec<u8>> {
        if self.is_empty() {
            return None;
        }
        let mut current = self.mask_plain(data);
        for needle in &self.inner.exact {
            let hay = current.as_deref().unwrap_or(data);
            if let Some(out) = replace_all(hay, needle) {
                current = Some(out);
            }
        }
        current
    }

    /// Masks the secrets, verbatim or percent-encoded; `None` if there is none.
    fn mask_plain(&self, data: &[u8]) -> Option<Vec<u8>> {
        let needles = &*self.inner;
        let mut out: Option<Vec<u8>> = None;
        let mut last = 0;
        let mut i = 0;
        while i < data.len() {
            if needles.starts[usize::from(data[i])]
                && let Some(len) = needles.plain.iter().find_map(|n| match_encoded(&data[i..], n))
            {
                let o = out.get_or_insert_with(|| Vec::with_capacity(data.len()));
                o.extend_from_slice(&data[last..i]);
                o.extend_from_slice(MASK.as_bytes());
                i += len;
                last = i;
                continue;
            }
            i += 1;
        }
        let mut o = out?;
        o.extend_from_slice(&data[last..]);
        Some(o)
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

/// Every occurrence of `needle` masked; `None` when there is none.
fn replace_all(hay: &[u8], needle: &[u8]) -> Option<Vec<u8>> {
    let finder = memmem::Finder::new(needle);
    finder.find(hay)?;
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
    Some(out)
}

/// How many bytes at the start of `hay` spell `secret`, each byte verbatim or as `%XX` (either
/// case), a space also as `+`.
fn match_encoded(hay: &[u8], secret: &[u8]) -> Option<usize> {
    let mut k = 0;
    for &b in secret {
        let &c = hay.get(k)?;
        if c == b || (b == b' ' && c == b'+') {
            k += 1;
        } else if c == b'%'
            && let (Some(&h), Some(&l)) = (hay.get(k + 1), hay.get(k + 2))
            && let (Some(h), Some(l)) = (hex(h), hex(l))
            && h << 4 | l == b
        {
            k += 3;
        } else {
            return None;
        }
    }
    Some(k)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The base64 text that `secret` alone determines, wherever it sits in the encoded bytes (at each
/// of the three alignments): the characters that also carry bits of the bytes around it are left
/// out, except at the end, where the secret may close the encoded text (`user:password`), with
/// its padding.
fn base64_forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let mut forms = Vec::new();
    for k in 0..3 {
        let mut bytes = vec![0u8; k];
        bytes.extend_from_slice(secret);
        let enc = base64(&bytes);
        let first = (8 * k).div_ceil(6);
        let inner_end = (8 * bytes.len()) / 6;
        // Standing in the middle of the encoded text: only the characters wholly its own.
        if inner_end >= first + 4 {
            forms.push(enc[first..inner_end].to_vec());
        }
        // Closing it: the whole tail, padding included.
        if enc.len() >= first + 4 {
            forms.push(enc[first..].to_vec());
        }
    }
    forms
}

fn base64(bytes: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
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
    fn masks_percent_encodings_in_any_case_and_mix() {
        let r = Redactor::new(["p@ss w0rd<é>"]);
        for form in [
            "p@ss w0rd<é>",
            "p@ss%20w0rd%3C%C3%A9%3E",
            "p%40ss%20w0rd%3c%c3%a9%3e",
            "p%40ss+w0rd%3C%C3%A9%3E",
            "%70%40%73%73%20%77%30%72%64%3C%C3%A9%3E",
        ] {
            assert_eq!(r.redact_str(&format!("a={form}&b=1")), "a=***&b=1", "{form}");
        }
        // A `+` stands for a space only; a bad escape is no match.
        assert_eq!(r.redact_str("p@ss+w0rd<é>"), "***");
        assert_eq!(r.redact_str("p@ss%2w0rd<é>"), "p@ss%2w0rd<é>");
        assert_eq!(r.redact_str("p@ss_w0rd<é>"), "p@ss_w0rd<é>");
        // Fully encoded, it is three times as long: output cut anywhere keeps that much back.
        assert_eq!(r.longest(), 3 * "p@ss w0rd<é>".len());
    }

    #[test]
    fn masks_base64_at_every_alignment() {
        let r = Redactor::new(["S3cr3tT0k3n"]);
        // "S3cr3tT0k3n", "uS3cr3tT0k3n", "usS3cr3tT0k3n", "user:S3cr3tT0k3n" and more text after.
        for (encoded, masked) in [
            ("UzNjcjN0VDBrM24=", "***"),
            ("dVMzY3IzdFQwazNu", "dV***"),
            ("dXNTM2NyM3RUMGszbg==", "dXN***"),
            ("dXNlcjpTM2NyM3RUMGszbi9wYXRo", "dXNlcjp***i9wYXRo"),
        ] {
            assert_eq!(r.redact_str(encoded), masked, "{encoded}");
        }
    }

    #[test]
    fn forms_of_a_secret_do_not_mask_other_text() {
        let r = Redactor::new(["S3cr3tT0k3n"]);
        assert!(r.redact(b"100% sure, S3cr3t and T0k3n apart, %53%33").is_none());
        assert!(Redactor::new(["ab"]).is_empty(), "too short to mask");
    }
}
