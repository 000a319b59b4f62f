//! The phase overview: sections and phases with their progress (3/5; a phase the rollback cut
//! short: `cancelled`, or `2/5 ⊘3`) and state; the rollback's phases under it. The phase on screen
//! is marked.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::theme::{Glyph, Theme};
use crate::journal::StepStatus;
use crate::tui::state::{App, StepState, StepView};

/// Rows the overview's lines take: sections, phases, the rollback's title and phases.
pub fn height(app: &App) -> u16 {
    let mut section: Option<&str> = None;
    let mut n = 0;
    for p in &app.rb.phases {
        if p.section.is_some() && p.section.as_deref() != section {
            section = p.section.as_deref();
            n += 1;
        }
        n += 1;
    }
    if let Some(r) = &app.rb.rollback {
        n += 1 + r.phases.len();
    }
    n.min(u16::MAX as usize) as u16
}

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    // Dim, as every pane without the keyboard (and a scrolled-in log row redraws fewer styles).
    let block = Block::bordered()
        .border_set(theme.border())
        .border_style(theme.dim())
        .title(" Phases ");
    let inner = block.inner(area);
    f.render_widget(block, area);
    let w = inner.width as usize;
    let mut lines = Vec::new();
    let mut shown_at = 0;
    let mut section: Option<&str> = None;
    for (pi, p) in app.rb.phases.iter().enumerate() {
        if p.section.is_some() && p.section.as_deref() != section {
            section = p.section.as_deref();
            lines.push(Line::from(Span::styled(
                super::fit(section.unwrap_or(""), w),
                theme.dim(),
            )));
        }
        if !app.selected.rollback && app.selected.phase == pi {
            shown_at = lines.len();
        }
        lines.push(phase_line(app, theme, false, pi, &p.title, w));
    }
    if let Some(r) = &app.rb.rollback {
        lines.push(Line::from(Span::styled(
            super::fit(&format!("Rollback: {}", r.title), w),
            theme.warn(),
        )));
        for (pi, p) in r.phases.iter().enumerate() {
            if app.selected.rollback && app.selected.phase == pi {
                shown_at = lines.len();
            }
            lines.push(phase_line(app, theme, true, pi, &p.title, w));
        }
    }
    // Taller than the pane: the phase on screen stays in view.
    let skip = (shown_at + 1).saturating_sub(inner.height as usize);
    f.render_widget(
        Paragraph::new(lines).scroll((skip.min(u16::MAX as usize) as u16, 0)),
        inner,
    );
}

fn phase_line<'a>(app: &App, theme: &Theme, rollback: bool, pi: usize, title: &str, w: usize) -> Line<'a> {
    let views: &[StepView] = if rollback {
        &app.rollback_steps[pi]
    } else {
        &app.steps[pi]
    };
    let is_cancelled = |v: &&StepView| {
        matches!(
            v.state,
            StepState::Done {
                status: StepStatus::Cancelled,
                ..
            }
        )
    };
    let cancelled = views.iter().filter(is_cancelled).count();
    // Done: the steps that ran to an end (or were settled); cancelled ones are counted apart.
    let done = views
        .iter()
        .filter(|v| matches!(v.state, StepState::Done { .. }))
        .count()
        - cancelled;
    let failed = views.iter().any(|v| {
        matches!(
            v.state,
            StepState::Done {
                status: StepStatus::Failed | StepStatus::TimedOut,
                ..
            }
        )
    });
    let active = views
        .iter()
        .any(|v| matches!(v.state, StepState::Running { .. } | StepState::Waiting(_)));
    let (glyph, style) = if active {
        (theme.glyph(Glyph::Running), theme.accent())
    } else if failed {
        (theme.glyph(Glyph::Failed), theme.bad())
    } else if cancelled > 0 {
        // Cut short by the rollback, wholly or in part: not done.
        (theme.glyph(Glyph::Cancelled), theme.dim())
    } else if done + cancelled == views.len() && done > 0 {
        (theme.glyph(Glyph::Done), theme.ok())
    } else {
        (theme.glyph(Glyph::Pending), theme.dim())
    };
    // A phase the rollback cut short says so: `cancelled`, or `2/5 ⊘3` (two done, three cancelled).
    let progress = match cancelled {
        0 => format!(" {done}/{}", views.len()),
        c if c == views.len() => " cancelled".to_string(),
        c => format!(" {done}/{} {}{c}", views.len(), theme.glyph(Glyph::Cancelled)),
    };
    let name = super::fit(
        title,
        w.saturating_sub(unicode_width::UnicodeWidthStr::width(progress.as_str()) + 3),
    );
    let progress_w = unicode_width::UnicodeWidthStr::width(progress.as_str());
    let pad = w.saturating_sub(unicode_width::UnicodeWidthStr::width(name.as_str()) + progress_w + 2);
    let shown = app.selected.rollback == rollback && app.selected.phase == pi;
    let mut line = Line::from(vec![
        Span::styled(format!("{glyph} "), style),
        Span::raw(name),
        Span::raw(" ".repeat(pad)),
        Span::styled(progress, theme.dim()),
    ]);
    if shown {
        line = line.style(theme.selected());
    }
    line
}
