//! Problems found in a runbook file, and how they are shown: `FILE:LINE:COLUMN: message`, then the
//! offending line with a caret under the span. Lines and columns count from 1; columns count
//! characters, not bytes, so a caret lines up under non-ASCII text too.

use std::fmt::Write as _;
use std::ops::Range;

/// One problem, located by a byte range in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub span: Range<usize>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            message: message.into(),
        }
    }
}

/// Line and column (both from 1) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(src, offset.min(src.len()));
    let before = &src[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = src[line_start..offset].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The most diagnostics shown for one file; a file of garbage should not scroll for minutes.
pub const MAX_SHOWN: usize = 50;

/// Renders diagnostics, sorted by position, as the user sees them.
pub fn render(file: &str, src: &str, diags: &[Diagnostic]) -> String {
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    sorted.sort_by_key(|d| (d.span.start, d.span.end));
    sorted.dedup();
    let mut out = String::new();
    for d in sorted.iter().take(MAX_SHOWN) {
        let (line, col) = line_col(src, d.span.start);
        let _ = writeln!(out, "{file}:{line}:{col}: {}", d.message);
        let start = floor_char_boundary(src, d.span.start.min(src.len()));
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let text = src[line_start..line_end].trim_end_matches('\r');
        if text.is_empty() && start >= src.len() {
            continue;
        }
        let chars: Vec<char> = text.chars().collect();
        let at = (col - 1).min(chars.len());
        let caret_end = d.span.end.clamp(start, line_end);
        let span_width = src[start..floor_char_boundary(src, caret_end)]
            .chars()
            .count()
            .max(1);
        // A long line is shown as a window around the problem, so the caret lands on visible text.
        let (from, lead) = if at + span_width.min(40) > EXCERPT_WIDTH {
            (at.saturating_sub(40), "…")
        } else {
            (0, "")
        };
        let shown: String = chars[from..].iter().take(EXCERPT_WIDTH).collect();
        let visible = shown.chars().count();
        let pad = lead.chars().count() + (at - from);
        let width = span_width.min(visible.saturating_sub(at - from)).max(1);
        let gutter = line.to_string().len();
        let _ = writeln!(out, "{:>gutter$} | {lead}{}", line, shown.replace('\t', " "));
        let _ = writeln!(out, "{:>gutter$} | {}{}", "", " ".repeat(pad), "^".repeat(width));
    }
    if sorted.len() > MAX_SHOWN {
        let _ = writeln!(
            out,
            "{file}: … and {} more problems not shown",
            sorted.len() - MAX_SHOWN
        );
    }
    // A file's bytes must not drive the terminal (a stray ESC[2J would clear the screen).
    out.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

/// How many characters of a source line are shown under a diagnostic.
const EXCERPT_WIDTH: usize = 120;

/// The closest candidate to a misspelt name, when one is close enough to be worth suggesting.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = strsim::damerau_levenshtein(name, c);
        let limit = (c.chars().count().max(name.chars().count()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `"; did you mean `x`?"` or nothing.
pub fn suggestion<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match did_you_mean(name, candidates) {
        Some(c) => format!("; did you mean `{c}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let src = "a = 1\nb = \"é\" x\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // byte offset of 'x' is 6 + 4 + 3 + 1 = 14 ("b = \"" is 5 bytes, é 2, quote 1, space 1)
        let x = src.find('x').unwrap();
        assert_eq!(line_col(src, x), (2, 9));
    }

    #[test]
    fn render_shows_line_and_caret() {
        let src = "[runbook]\ntitel = \"x\"\n";
        let d = Diagnostic::new(10..15, "unknown key `titel`");
        let out = render("f.toml", src, &[d]);
        assert_eq!(
            out,
            "f.toml:2:1: unknown key `titel`\n2 | titel = \"x\"\n  | ^^^^^\n"
        );
    }

    #[test]
    fn suggestions_only_when_close() {
        assert_eq!(did_you_mean("titel", ["title", "id"]), Some("title"));
        assert_eq!(did_you_mean("zzzz", ["title", "id"]), None);
    }
}
