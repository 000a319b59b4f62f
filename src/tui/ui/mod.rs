//! Drawing: one free function per region of the screen, each reading `&App`. Nothing here
//! changes state; `now` is passed in so that the same state always draws the same frame.
//!
//! ```text
//! wide (≥ 100 columns)                              narrow (80×24)
//! ┌ header ─────────────────────────────────────┐   ┌ header ───────────────────────┐
//! │ banner (trigger firing / rollback / result) │   │ banner                         │
//! ├ phases ─┬ steps of the phase ─┬ metrics ────┤   │ metrics strip (1 line each)    │
//! │         │                     │ triggers    │   ├ steps of the phase ───────────┤
//! ├ log of the step (the whole width) ──────────┤   ├ log of the step ──────────────┤
//! │                                             │   │                                │
//! └─────────────────────────────────────────────┘   └────────────────────────────────┘
//!  key hints                                          key hints
//! ```
//!
//! The log has rows of its own at every size: when new lines move it up, the terminal scrolls
//! those rows and only the new lines are sent (`tui::scroll`); a pane beside it would be redrawn
//! on every new row. The band above it is as tall as its tallest pane needs, at most about half
//! the body: a phase list that does not fit keeps the phase on screen in view, and a sidebar
//! that does not fit says what it leaves out (`+3 triggers (m)`).
//! ```

mod banner;
pub mod dialogs;
mod header;
pub mod log;
mod overview;
mod sidebar;
mod steps;
pub mod theme;
mod waiting;

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use unicode_width::UnicodeWidthStr;

use super::state::{App, Pane};
pub use crate::text::{elapsed as clock, fit, left};
use theme::Theme;

/// Below this width the overview column goes and the sidebar folds into a strip.
pub const WIDE: u16 = 100;

/// Where each region of the screen goes. A zoomed pane (`z`, `m`) takes everything between the
/// banner and the remark line: the header, the banner (a firing trigger) and the hints stay.
#[derive(Debug, Default, Clone, Copy)]
pub struct Areas {
    pub head: Rect,
    pub banner: Rect,
    pub strip: Option<Rect>,
    pub overview: Option<Rect>,
    pub sidebar: Option<Rect>,
    pub steps: Option<Rect>,
    pub log: Option<Rect>,
    pub remark: Rect,
    pub hints: Rect,
}

pub fn layout(app: &App, area: Rect) -> Areas {
    let banner_h = banner::height(app, area.width);
    let narrow = area.width < WIDE;
    let zoom = app.zoom;
    let strip_h = if narrow && zoom.is_none() {
        sidebar::strip_height(app)
    } else {
        0
    };
    let remark_h = match app.messages.back() {
        // A watcher is told who can do what, and the command to take over: two lines if needed.
        Some((_, m)) if app.watching.is_some() && m.width() + 10 > area.width as usize => 2,
        Some(_) => 1,
        None => 0,
    };
    let [head, banner, strip, body, remark, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner_h),
        Constraint::Length(strip_h),
        Constraint::Min(6),
        Constraint::Length(remark_h),
        Constraint::Length(1),
    ])
    .areas(area);
    let mut a = Areas {
        head,
        banner,
        remark,
        hints,
        ..Areas::default()
    };
    match zoom {
        Some(Pane::Steps) => a.steps = Some(body),
        Some(Pane::Log) => a.log = Some(body),
        Some(Pane::Metrics) => a.sidebar = Some(body),
        None => {
            if narrow {
                a.strip = Some(strip);
                let steps_h = steps::height(app, body.height, body.width);
                let [steps_area, log_area] =
                    Layout::vertical([Constraint::Length(steps_h), Constraint::Min(3)]).areas(body);
                a.steps = Some(steps_area);
                a.log = Some(log_area);
            } else {
                // The log spans the whole width under the band of phases, steps and metrics:
                // its rows hold nothing else, so that following it scrolls only its own lines.
                let side_w = 30.min(area.width / 4);
                let over_w = 26.min(area.width / 5);
                let steps_w = area.width - side_w - over_w;
                let band_h = band_height(app, body.height, steps_w, side_w);
                let [band, log_area] =
                    Layout::vertical([Constraint::Length(band_h), Constraint::Min(3)]).areas(body);
                let [over, steps_area, side] = Layout::horizontal([
                    Constraint::Length(over_w),
                    Constraint::Min(30),
                    Constraint::Length(side_w),
                ])
                .areas(band);
                a.overview = Some(over);
                a.sidebar = Some(side);
                a.steps = Some(steps_area);
                a.log = Some(log_area);
            }
        }
    }
    a
}

/// The wide screen's band of phases, steps and metrics: as tall as the tallest of the three
/// needs, at most about half the body (each pane says what it leaves out).
fn band_height(app: &App, body: u16, steps_w: u16, side_w: u16) -> u16 {
    let need = steps::height(app, body, steps_w)
        .max(overview::height(app).saturating_add(2))
        .max(sidebar::height(app, side_w.saturating_sub(2)).saturating_add(2));
    need.min(body / 2 + 1).max(6)
}

pub fn draw(f: &mut Frame, app: &App, theme: &Theme, now: Instant) {
    let area = f.area();
    let a = layout(app, area);
    header::render(f, a.head, app, theme, now);
    banner::render(f, a.banner, app, theme, now);
    if let Some(r) = a.strip {
        sidebar::render_strip(f, r, app, theme, now);
    }
    if let Some(r) = a.overview {
        overview::render(f, r, app, theme);
    }
    if let Some(r) = a.sidebar {
        sidebar::render(f, r, app, theme, now);
    }
    if let Some(r) = a.steps {
        steps::render(f, r, app, theme, now);
    }
    if let Some(r) = a.log {
        log::render(f, r, app, theme, now);
    }
    hints_line(f, a.hints, app, theme);
    remark_line(f, a.remark, app, theme);
    dialogs::render(f, area, app, theme);
    if theme.ascii {
        to_ascii(f.buffer_mut());
    }
}

/// Where the log's lines are on a screen of `area`, if the log is on it.
pub fn log_lines(app: &App, area: Rect, theme: &Theme) -> Option<Rect> {
    layout(app, area).log.map(|r| log::text_area(app, r, theme))
}

/// For a terminal without UTF-8: every symbol on screen becomes ASCII (a user's non-ASCII text
/// becomes `?`), so that nothing arrives that it cannot show.
fn to_ascii(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        let sym = cell.symbol();
        if sym.is_ascii() {
            continue;
        }
        let ascii = match sym {
            "·" | "•" => ".",
            "—" | "–" | "─" => "-",
            "…" => "~",
            "→" => ">",
            "←" => "<",
            "↑" => "^",
            "↓" => "v",
            "│" => "|",
            _ => "?",
        };
        cell.set_symbol(ascii);
    }
}

/// The latest remark (a retry delay, a key that does nothing now, a metric problem).
fn remark_line(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    if area.height == 0 {
        return;
    }
    if let Some((at, text)) = app.messages.back() {
        let time = crate::text::clock(*at);
        let line = format!(" {} {text}", time.get(..8).unwrap_or(&time));
        if area.height > 1 {
            let p = ratatui::widgets::Paragraph::new(line)
                .style(theme.warn())
                .wrap(ratatui::widgets::Wrap { trim: false });
            f.render_widget(p, area);
            return;
        }
        f.render_widget(
            ratatui::text::Span::styled(fit(&line, area.width as usize), theme.warn()),
            area,
        );
    }
}

/// The key hints that matter now. When they do not all fit, the least important go first;
/// `q quit` always stays, last.
fn hints_line(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    use ratatui::text::{Line, Span};
    let all = match app.watching {
        Some(_) => super::watching::hints(app),
        None => super::bindings::hints(app),
    };
    let width = |h: &(&str, &str)| h.0.width() + h.1.width() + 4;
    let quit = all.iter().find(|h| h.0 == "q").copied();
    let mut room = (area.width as usize).saturating_sub(quit.as_ref().map_or(0, width));
    let mut shown = Vec::new();
    for h in all.iter().filter(|h| h.0 != "q") {
        if width(h) <= room {
            room -= width(h);
            shown.push(*h);
        }
    }
    shown.extend(quit);
    let mut spans = Vec::new();
    for (k, what) in shown {
        spans.push(Span::styled(format!(" {k} "), theme.key()));
        spans.push(Span::raw(format!(" {what} ")));
    }
    f.render_widget(Line::from(spans), area);
}

/// A pane's border: the accent while the pane has the focus or fills the screen.
fn pane_style(app: &App, focus: super::state::Focus, pane: Pane, theme: &Theme) -> ratatui::style::Style {
    if app.focus == focus || app.zoom == Some(pane) {
        theme.accent()
    } else {
        theme.dim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fit_counts_display_width() {
        assert_eq!(fit("hello", 10), "hello");
        assert_eq!(fit("hello world", 6), "hello…");
        assert_eq!(fit("日本語テキスト", 7), "日本語…");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(clock(Duration::from_secs(65)), "1:05");
    }
}
