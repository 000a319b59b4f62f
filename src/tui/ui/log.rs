//! The live log of the running or selected step: follows its end unless scrolled, highlights
//! search matches, and ends with how the step finished. Output was cleaned of terminal escapes
//! and control characters on arrival; the log file keeps the raw bytes.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::theme::Theme;
use crate::tui::state::{App, Focus, StepState};

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let at = app.selected;
    let log = app.logs.get(&at);
    let view = app.view(at);
    // The scroll that takes effect: a log that fits its pane cannot be scrolled.
    let has_trailer = matches!(view.state, StepState::Done { .. });
    let room = (area.height.saturating_sub(2) as usize).saturating_sub(usize::from(has_trailer));
    let scrolled = app
        .log_scroll
        .min(log.map_or(0, |l| l.lines.len()).saturating_sub(room));
    let where_ = if scrolled > 0 {
        format!(
            "scrolled up {scrolled} line{} (End to follow)",
            if scrolled == 1 { "" } else { "s" }
        )
    } else if app.follow {
        "following".to_string()
    } else {
        "End to follow the run".to_string()
    };
    let title = format!(" Log: {} — {where_} ", app.name(at));
    let focus = if app.focus == Focus::Log {
        theme.accent()
    } else {
        theme.dim()
    };
    let block = Block::bordered()
        .border_set(theme.border())
        .border_style(focus)
        .title(super::fit(&title, area.width.saturating_sub(2) as usize));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let h = inner.height as usize;
    let w = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    let trailer = match &view.state {
        StepState::Done { status, took, .. } => {
            let code = view
                .code
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let log = view
                .log_path
                .as_deref()
                .map(|l| format!(" — full log: {l}"))
                .unwrap_or_default();
            let (_, style) = theme.status_glyph(*status);
            Some(Line::from(Span::styled(
                super::fit(
                    &format!(
                        "— {} after {}{code}{log}",
                        status.as_str(),
                        crate::duration::format_duration(*took)
                    ),
                    w,
                ),
                style,
            )))
        }
        _ => None,
    };
    let room = h.saturating_sub(usize::from(trailer.is_some()));
    match log {
        None => {
            let text = match &view.state {
                StepState::Pending => "not started",
                StepState::Waiting(_) => "waiting",
                StepState::Running { .. } => "no output yet",
                StepState::Done { .. } => "no output",
            };
            lines.push(Line::from(Span::styled(text, theme.dim())));
        }
        Some(log) => {
            let n = log.lines.len();
            let scroll = app.log_scroll.min(n.saturating_sub(room));
            let end = n - scroll;
            let start = end.saturating_sub(room);
            if start == 0 && log.dropped > 0 && room > 0 {
                lines.push(Line::from(Span::styled(
                    format!("… {} earlier lines are in the log file", log.dropped),
                    theme.dim(),
                )));
            }
            for (at, text) in log.lines.range(start..end) {
                let time = crate::headless::clock(*at);
                let time = time.get(..8).unwrap_or(&time).to_string();
                let hit = app.search.as_deref().is_some_and(|s| text.contains(s));
                let text = super::fit(text, w.saturating_sub(9));
                let body = if hit {
                    Span::styled(text, theme.warn().add_modifier(Modifier::REVERSED))
                } else {
                    Span::raw(text)
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("{time} "), theme.dim()),
                    body,
                ]));
            }
            if lines.len() > room {
                let extra = lines.len() - room;
                lines.drain(..extra);
            }
        }
    }
    if let Some(t) = trailer {
        lines.push(t);
    }
    f.render_widget(Paragraph::new(lines), inner);
}
