//! One step attempt's output as the screen keeps it: a bounded tail of cleaned lines, the line still
//! arriving, and how many were dropped (the log file has them all).

use std::collections::VecDeque;
use std::time::SystemTime;

use super::LOG_LINES;

/// The output of one step attempt, bounded.
#[derive(Debug, Default, Clone)]
pub struct LogView {
    pub lines: VecDeque<(SystemTime, String)>,
    /// Lines that no longer fit and were dropped from the screen (the log file has them).
    pub dropped: u64,
    /// A line without its newline yet, as it arrived.
    partial: String,
    /// That line as shown: its last state (after the last `\r`), cleaned, with when it changed.
    pub pending: Option<(SystemTime, String)>,
    /// Read back from the log file (an earlier attempt): its lines have no times.
    pub from_file: bool,
}

/// Tab stops every 8 columns, as a terminal has them.
const TAB: usize = 8;

/// One line as the screen shows it: its last state if it was redrawn with `\r` (a progress line),
/// terminal escapes and control characters removed, tabs expanded.
pub fn shown_line(raw: &str) -> String {
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let last = raw.rsplit('\r').next().unwrap_or(raw);
    let clean = crate::text::clean(last.as_bytes());
    if !clean.contains('\t') {
        return clean.into_owned();
    }
    let mut out = String::with_capacity(clean.len() + TAB);
    let mut col = 0;
    for c in clean.chars() {
        if c == '\t' {
            let n = TAB - col % TAB;
            out.extend(std::iter::repeat_n(' ', n));
            col += n;
        } else {
            out.push(c);
            col += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        }
    }
    out
}

impl LogView {
    /// An earlier attempt's output, read back from its log file.
    pub fn from_file(bytes: &[u8]) -> LogView {
        let mut log = LogView {
            from_file: true,
            ..LogView::default()
        };
        log.push_chunk(SystemTime::UNIX_EPOCH, bytes);
        log
    }

    /// Lines on screen, the unfinished one included.
    pub fn len(&self) -> usize {
        self.lines.len() + usize::from(self.pending.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Line `i` (0 is the oldest kept) and when it arrived.
    pub fn line(&self, i: usize) -> (SystemTime, &str) {
        match self.lines.get(i) {
            Some((at, text)) => (*at, text),
            None => {
                let (at, text) = self.pending.as_ref().expect("a line in range");
                (*at, text)
            }
        }
    }

    fn set_pending(&mut self, at: SystemTime) {
        self.pending = (!self.partial.is_empty()).then(|| (at, shown_line(&self.partial)));
    }

    /// Output that later output pushes off the screen anyway: counted, not kept.
    pub fn skip_chunk(&mut self, at: SystemTime, bytes: &[u8]) {
        let lines = memchr::memchr_iter(b'\n', bytes).count();
        match memchr::memrchr(b'\n', bytes) {
            Some(last) => {
                self.dropped += lines as u64;
                self.partial = String::from_utf8_lossy(&bytes[last + 1..]).into_owned();
            }
            None => self.partial.push_str(&String::from_utf8_lossy(bytes)),
        }
        self.set_pending(at);
    }

    pub fn push_chunk(&mut self, at: SystemTime, bytes: &[u8]) {
        self.push_chunk_lines(at, bytes);
        self.set_pending(at);
    }

    fn push_chunk_lines(&mut self, at: SystemTime, bytes: &[u8]) {
        // Only the last LOG_LINES lines of a big chunk can stay on screen: count the rest.
        let bytes = match memchr::memrchr_iter(b'\n', bytes).nth(LOG_LINES) {
            Some(cut) => {
                self.skip_chunk(at, &bytes[..=cut]);
                &bytes[cut + 1..]
            }
            None => bytes,
        };
        let text = String::from_utf8_lossy(bytes);
        let mut rest: &str = &text;
        if !self.partial.is_empty() {
            let mut joined = std::mem::take(&mut self.partial);
            match rest.find('\n') {
                Some(i) => {
                    joined.push_str(&rest[..i]);
                    self.push_line(at, &joined);
                    rest = &rest[i + 1..];
                }
                None => {
                    joined.push_str(rest);
                    self.partial = joined;
                    return;
                }
            }
        }
        let complete = rest.ends_with('\n');
        let body = rest.strip_suffix('\n').unwrap_or(rest);
        let mut lines = body.split('\n').peekable();
        while let Some(line) = lines.next() {
            if lines.peek().is_none() && !complete {
                self.partial = line.to_string();
            } else {
                self.push_line(at, line);
            }
        }
    }

    fn push_line(&mut self, at: SystemTime, line: &str) {
        if self.lines.len() == LOG_LINES {
            self.lines.pop_front();
            self.dropped += 1;
        }
        self.lines.push_back((at, shown_line(line)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_keep_a_bounded_tail_and_join_split_lines() {
        let mut log = LogView::default();
        let t = SystemTime::UNIX_EPOCH;
        log.push_chunk(t, b"one\ntw");
        log.push_chunk(t, b"o\nthree\n");
        let lines: Vec<&str> = log.lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(lines, ["one", "two", "three"]);
        let many: String = (0..LOG_LINES + 10).map(|i| format!("{i}\n")).collect();
        log.push_chunk(t, many.as_bytes());
        assert_eq!(log.lines.len(), LOG_LINES);
        assert_eq!(log.dropped, 13);
        assert_eq!(log.lines.back().unwrap().1, (LOG_LINES + 9).to_string());
        assert_eq!(log.lines.front().unwrap().1, "10");
        // A chunk only counted keeps its unfinished line for the next one.
        log.skip_chunk(t, b"a\nb\npart");
        log.push_chunk(t, b"ial\n");
        // 2 counted lines, and the oldest line pushed off by "partial".
        assert_eq!(log.dropped, 16);
        assert_eq!(log.lines.back().unwrap().1, "partial");
    }
}
