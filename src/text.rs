//! Text as the front ends, the report and the import show it, below all of them: a line of
//! program output cleaned for a reader (escapes and control characters gone), clocks (the UTC time
//! that starts every line, a running time), text fitted to a display width, and numbers as people
//! read them.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// `HH:MM:SS.mmm` in UTC, as in the journal.
pub fn clock(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        d.subsec_millis()
    )
}

/// A running time: `h:mm:ss`, or `m:ss` under an hour.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Time left on a countdown, `m:ss`: whole seconds rounded up, so that a 30 s watch reads 0:30
/// at its start and 0:00 only once it is over (a clock rounded down reads 0:29 at once).
pub fn left(d: Duration) -> String {
    elapsed(Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0)))
}

/// Cuts text to a display width (not bytes, not characters), with an ellipsis when it was cut.
pub fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in text.chars() {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// `x` with at most `decimals` decimals, trailing zeros dropped (7, 0.001574, 123.5), never `-0`.
pub fn decimal(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let mut s = format!("{x:.decimals$}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" { "0".into() } else { s }
}

/// A number as people read it: no exponent, no trailing zeros, up to 4 decimals (4 significant
/// digits below 1, so that 0.0021 stays 0.0021).
pub fn format_number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    let decimals = if a >= 1.0 {
        4
    } else {
        // 4 significant digits: 0.123456 → 0.1235, 0.00123456 → 0.001235.
        (3 - a.log10().floor() as i32).clamp(4, 15) as usize
    };
    decimal(x, decimals)
}

/// A line fit for a log reader: terminal escapes removed, control characters and invalid UTF-8
/// replaced. Plain text (nearly all output) is passed through untouched.
pub fn clean(line: &[u8]) -> Cow<'_, str> {
    if is_plain(line)
        && let Ok(s) = std::str::from_utf8(line)
    {
        return Cow::Borrowed(s);
    }
    // The 8-bit controls (U+0080–U+009F: CSI, OSC, DCS...) act like their 7-bit escapes on many
    // terminals; spelt as such (`ESC [` for U+009B) they are stripped the same way, whole.
    let seven_bit;
    let line = if memchr::memchr(0xc2, line).is_some() {
        seven_bit = c1_as_escapes(line);
        &seven_bit[..]
    } else {
        line
    };
    let stripped = strip_ansi_escapes::strip(line);
    let text = String::from_utf8_lossy(&stripped);
    Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// No control characters but newline and tab: none of C0, DEL, nor the UTF-8 form of a C1 control
/// (`C2 80`–`C2 9F`; any `C2` sends the line the slow way). Written without early exit so that it
/// vectorizes.
pub fn is_plain(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & (((b >= 0x20) & (b != 0x7f) & (b != 0xc2)) | (b == b'\n') | (b == b'\t'))
    })
}

/// Each UTF-8-encoded C1 control (`C2 80`–`C2 9F`) replaced by its 7-bit escape (`ESC` and the
/// byte minus 0x40: U+009B becomes `ESC [`).
fn c1_as_escapes(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] == 0xc2
            && let Some(&c) = line.get(i + 1)
            && (0x80..=0x9f).contains(&c)
        {
            out.extend_from_slice(&[0x1b, c - 0x40]);
            i += 2;
        } else {
            out.push(line[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_passes_plain_text_and_strips_escapes() {
        assert!(matches!(clean(b"plain line"), Cow::Borrowed("plain line")));
        assert_eq!(clean(b"\x1b[31mred\x1b[0m done"), "red done");
        assert_eq!(clean(b"bad \xff byte"), "bad \u{fffd} byte");
        assert_eq!(clean(b"nul\0here"), "nulhere");
        assert_eq!(clean(b"bell\x07"), "bell");
    }

    #[test]
    fn clean_strips_the_utf8_c1_controls_like_their_escapes() {
        // U+009B CSI: a colour, and an erase of the screen.
        assert_eq!(clean("\u{9b}31mred\u{9b}0m done".as_bytes()), "red done");
        assert_eq!(clean("a\u{9b}2Jb".as_bytes()), "ab");
        // U+009D OSC: a window title, ended by ST (U+009C) or BEL.
        assert_eq!(clean("x\u{9d}0;pwned\u{9c}y".as_bytes()), "xy");
        assert_eq!(clean("x\u{9d}0;pwned\x07y".as_bytes()), "xy");
        // Every other C1 control is gone too (those that open a string, like DCS, up to the ST
        // that ends it); text after them is kept, and so are the characters that share their
        // lead byte (`£`, `°`, `§`).
        for c in 0x80u32..=0x9f {
            let line = format!("a{}b{} £ ° §", char::from_u32(c).unwrap(), "\u{9c}");
            let out = clean(line.as_bytes());
            assert!(
                !out.chars().any(|ch| ('\u{80}'..='\u{9f}').contains(&ch)),
                "U+{c:04X} passed through: {out:?}"
            );
            assert!(out.ends_with(" £ ° §"), "U+{c:04X}: {out:?}");
        }
        assert!(matches!(clean("£ 5 °C".as_bytes()), Cow::Owned(s) if s == "£ 5 °C"));
    }

    #[test]
    fn clock_is_utc() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(3_723_004);
        assert_eq!(clock(t), "01:02:03.004");
    }

    #[test]
    fn elapsed_is_minutes_and_seconds_under_an_hour() {
        assert_eq!(elapsed(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(elapsed(Duration::from_secs(65)), "1:05");
        assert_eq!(elapsed(Duration::ZERO), "0:00");
    }

    #[test]
    fn fit_counts_display_width() {
        assert_eq!(fit("hello", 10), "hello");
        assert_eq!(fit("hello world", 6), "hello…");
        assert_eq!(fit("日本語テキスト", 7), "日本語…");
        assert_eq!(fit("anything", 0), "");
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(42.0), "42");
        assert_eq!(format_number(1.5), "1.5");
        assert_eq!(format_number(123.456789), "123.4568");
        assert_eq!(format_number(0.002), "0.002");
        assert_eq!(format_number(0.00123456), "0.001235");
        assert_eq!(format_number(-0.25), "-0.25");
        assert_eq!(format_number(1e9), "1000000000");
        assert_eq!(format_number(-0.00001), "-0.00001");
        assert_eq!(format_number(f64::INFINITY), "inf");
        assert_eq!(decimal(7.0, 6), "7");
        assert_eq!(decimal(0.0015744, 6), "0.001574");
        assert_eq!(decimal(123.5, 6), "123.5");
        assert_eq!(decimal(-0.0000001, 6), "0");
        assert_eq!(decimal(100.0, 0), "100");
    }
}
