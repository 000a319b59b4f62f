//! Colours and glyphs. With `NO_COLOR` set, state is carried by glyphs and bold/reverse alone;
//! on a terminal without UTF-8, glyphs and borders fall back to ASCII.

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;

use crate::journal::StepStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
    pub ascii: bool,
}

impl Theme {
    /// From the environment: `NO_COLOR`, and the locale for UTF-8 (`RUNBOOK_ASCII=1` forces ASCII).
    pub fn from_env() -> Theme {
        let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let utf8 = ["LC_ALL", "LC_CTYPE", "LANG"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .is_some_and(|v| {
                let v = v.to_ascii_lowercase();
                v.contains("utf-8") || v.contains("utf8")
            });
        let forced = std::env::var("RUNBOOK_ASCII").is_ok_and(|v| v == "1");
        Theme {
            color,
            ascii: forced || !utf8,
        }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }
    pub fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn key(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    /// The banner of a firing trigger: impossible to miss, with or without colour.
    pub fn alarm(&self) -> Style {
        let s = Style::default().add_modifier(Modifier::BOLD | Modifier::SLOW_BLINK | Modifier::REVERSED);
        if self.color { s.fg(Color::Red) } else { s }
    }
    pub fn rehearsal(&self) -> Style {
        let s = Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED);
        if self.color { s.fg(Color::Magenta) } else { s }
    }

    pub fn border(&self) -> border::Set<'static> {
        if self.ascii {
            border::Set {
                top_left: "+",
                top_right: "+",
                bottom_left: "+",
                bottom_right: "+",
                vertical_left: "|",
                vertical_right: "|",
                horizontal_top: "-",
                horizontal_bottom: "-",
            }
        } else {
            border::PLAIN
        }
    }

    pub fn glyph(&self, g: Glyph) -> &'static str {
        let (utf, ascii) = match g {
            Glyph::Pending => ("·", "."),
            Glyph::Waiting => ("◆", "?"),
            Glyph::Running => ("▶", ">"),
            Glyph::Done => ("✔", "+"),
            Glyph::Failed => ("✘", "x"),
            Glyph::Skipped => ("↷", "-"),
            Glyph::Cancelled => ("⊘", "/"),
            Glyph::Interrupted => ("‼", "!"),
        };
        if self.ascii { ascii } else { utf }
    }

    pub fn status_glyph(&self, s: StepStatus) -> (&'static str, Style) {
        match s {
            StepStatus::Succeeded | StepStatus::Confirmed => (self.glyph(Glyph::Done), self.ok()),
            StepStatus::Failed | StepStatus::TimedOut => (self.glyph(Glyph::Failed), self.bad()),
            StepStatus::Skipped => (self.glyph(Glyph::Skipped), self.warn()),
            StepStatus::Cancelled => (self.glyph(Glyph::Cancelled), self.dim()),
            StepStatus::Interrupted => (self.glyph(Glyph::Interrupted), self.bad()),
        }
    }

    /// Eight levels for sparklines.
    pub fn bars(&self) -> &'static [&'static str] {
        if self.ascii {
            &["_", "_", ".", "-", "-", "=", "^", "#"]
        } else {
            &["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Glyph {
    Pending,
    Waiting,
    Running,
    Done,
    Failed,
    Skipped,
    Cancelled,
    Interrupted,
}
