//! How one value is written in the report's Markdown: table cells (pipes escaped), code spans,
//! clock times, values in their metric's unit, titles with their ids, durations. `markdown` lays
//! out the sections; this only writes the words that fill them.

use std::time::Duration;

use crate::duration::format_duration;
use crate::runbook::Unit;
use crate::text::format_number;

pub(super) fn human_ms(ms: u64) -> String {
    format_duration(Duration::from_millis(ms))
}

/// A Markdown table cell: pipes escaped, line breaks flattened.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = false;
    for c in s.chars() {
        match c {
            '|' => {
                out.push_str("\\|");
                last_space = false;
            }
            '\n' | '\r' => {
                if !last_space {
                    out.push(' ');
                }
                last_space = true;
            }
            c => {
                out.push(c);
                last_space = c == ' ';
            }
        }
    }
    out
}

/// Inline code when possible (the text holds no backtick or line break), else the text escaped.
/// Used in lists, never in tables, where a pipe in a code span would need escaping.
pub(super) fn code(s: &str) -> String {
    if s.contains(['`', '\n', '\r']) {
        cell(s)
    } else {
        format!("`{s}`")
    }
}

/// `HH:MM:SS` of an RFC 3339 time; the date is added when it is not the run's first day.
pub(super) fn clock(ts: &str, day: &str) -> String {
    let b = ts.as_bytes();
    if b.len() >= 19 && b[10] == b'T' && ts.is_char_boundary(10) && ts.is_char_boundary(19) {
        if &ts[..10] == day {
            ts[11..19].to_string()
        } else {
            format!("{} {}", &ts[..10], &ts[11..19])
        }
    } else {
        ts.to_string()
    }
}

pub(super) fn or_dash(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => cell(s),
        _ => "—".into(),
    }
}

/// A value in its unit, as people read it: `1.6 %` (a ratio ×100), `155 ms`, `1.55 s`, `42`.
/// Without a unit (an old journal), the number as sampled.
pub(super) fn value(x: f64, unit: Option<&str>) -> String {
    let unit = match unit {
        Some("percent") => Unit::Percent,
        Some("seconds") => Unit::Seconds,
        _ => Unit::Number,
    };
    match unit {
        Unit::Percent => format!("{} %", format_number(round_to(x * 100.0, 4))),
        Unit::Seconds if x.abs() < 1.0 => format!("{} ms", format_number(round_to(x * 1000.0, 4))),
        Unit::Seconds => format!("{} s", format_number(x)),
        Unit::Number => format_number(x),
    }
}

/// `x` to `digits` significant digits, so that 0.016 × 100 shows as 1.6, not 1.6000000000000001.
fn round_to(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

pub(super) fn value_or_dash(x: Option<f64>, unit: Option<&str>) -> String {
    x.map(|x| value(x, unit)).unwrap_or_else(|| "—".into())
}

/// "Title (`id`)", or the id alone when the title is not known (or is the id).
pub(super) fn titled(title: Option<&str>, id: &str) -> String {
    match title {
        Some(t) if t != id => format!("{} (`{}`)", cell(t), cell(id)),
        _ => cell(id),
    }
}

/// The longest run of `c` in `s` (a code fence must be longer than any run of backticks inside).
pub(super) fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in s.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_unit() {
        assert_eq!(value(0.016, Some("percent")), "1.6 %");
        assert_eq!(value(0.0215, Some("percent")), "2.15 %");
        assert_eq!(value(0.155, Some("seconds")), "155 ms");
        assert_eq!(value(1.55, Some("seconds")), "1.55 s");
        assert_eq!(value(42.0, Some("number")), "42");
        assert_eq!(value(0.0021, None), "0.0021");
    }

    #[test]
    fn cells_are_escaped() {
        assert_eq!(cell("a|b\nc\r\nd"), "a\\|b c d");
    }

    #[test]
    fn clock_shows_the_date_only_on_another_day() {
        assert_eq!(clock("2026-11-26T21:07:27.790Z", "2026-11-26"), "21:07:27");
        assert_eq!(
            clock("2026-11-27T01:00:00.000Z", "2026-11-26"),
            "2026-11-27 01:00:00"
        );
    }
}
