//! The phase pane: the steps of the phase on screen, each with a glyph for its state, its kind,
//! its elapsed time or duration, a watch's countdown, attempts, and why it waits. Under the list,
//! what the selected step does (its instruction, command or request).

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::theme::{Glyph, Theme};
use crate::duration::format_duration;
use crate::engine::Wait;
use crate::runbook::StepKind;
use crate::tui::state::{App, Pane, StepState};
use unicode_width::UnicodeWidthStr;

/// What the pane's title says: the phase, its place, its section.
fn pane_title(app: &App) -> String {
    let at = app.selected;
    let phases = app.phases(at.rollback);
    let phase = &phases[at.phase];
    let kind = if at.rollback { "Rollback phase" } else { "Phase" };
    let section = phase
        .section
        .as_deref()
        .map(|s| format!(" · {s}"))
        .unwrap_or_default();
    format!(
        " {kind} {}/{}: {}{section} ",
        at.phase + 1,
        phases.len(),
        phase.title
    )
}

/// Columns the selected step's title has in its row: what its right side leaves (at most half).
/// A running clock is counted as it reads when the step starts: a column either way.
fn title_room(app: &App, w: usize) -> usize {
    let now = match app.view(app.selected).state {
        StepState::Running { since, .. } => since,
        _ => app.started,
    };
    let plain = Theme {
        color: false,
        ascii: false,
    };
    let right = row_state(app, &plain, app.selected.step, now).2;
    w.saturating_sub(right.width().min(w / 2) + 10)
}

/// Under the list: the selected step's full title and its phase's when either may be cut, what
/// the step does (its instruction, command or request) and, when it has one, why it failed or
/// how it was settled.
fn detail(app: &App, width: u16) -> (Option<String>, String, Option<String>) {
    let step = app.step(app.selected);
    let w = width.saturating_sub(2) as usize;
    let phase_cut = pane_title(app).width() > w;
    let step_cut = step.title.width() > title_room(app, w);
    let titles = match (phase_cut, step_cut) {
        (false, false) => None,
        (true, _) => {
            let phase = &app.phases(app.selected.rollback)[app.selected.phase];
            Some(format!("{} › {}", phase.title, step.title))
        }
        (false, true) => Some(step.title.clone()),
    };
    let what = match &step.kind {
        StepKind::Manual(Some(i)) => format!("To do: {i}"),
        StepKind::Manual(None) => "Check it, then press Enter.".into(),
        StepKind::Run(c) => format!("$ {}", c.lines().next().unwrap_or("")),
        StepKind::Watch(d) => format!(
            "watch {} with the triggers armed; passes if none fires",
            format_duration(*d)
        ),
        StepKind::Http(h) => format!("{} {}", h.method, h.url),
    };
    let view = app.view(app.selected);
    let note = match (&view.state, &view.last_error) {
        (StepState::Done { .. }, Some(e)) => Some(e.clone()),
        _ if step.irreversible => Some("IRREVERSIBLE: the rollback cannot undo this step".into()),
        _ => None,
    };
    (titles, what, note)
}

/// Rows the detail needs at this width (wrapped), at most 6 (all of it when zoomed).
fn detail_rows(app: &App, width: u16) -> u16 {
    let w = width.saturating_sub(2).max(1) as usize;
    let (titles, what, note) = detail(app, width);
    let rows = |t: &str| t.width().max(1).div_ceil(w);
    let n = titles.as_deref().map_or(0, rows) + rows(&what) + note.as_deref().map_or(0, rows);
    let cap = if app.zoom == Some(Pane::Steps) {
        usize::MAX
    } else {
        6
    };
    n.min(cap) as u16
}

/// Rows for the pane: the steps, the detail, borders; at most about half the body.
pub fn height(app: &App, body: u16, width: u16) -> u16 {
    let n = app.phases(app.selected.rollback)[app.selected.phase].steps.len() as u16;
    (n + 2 + detail_rows(app, width))
        .min(body.saturating_sub(5).max(6))
        .min(body / 2 + 4)
        .max(6)
}

/// A step's row: its glyph, its style, and what the right side says (its state, a clock, the
/// keys that act on it).
fn row_state(app: &App, theme: &Theme, si: usize, now: Instant) -> (&'static str, Style, String) {
    let at = app.selected;
    let step = &app.phases(at.rollback)[at.phase].steps[si];
    let view = &(if at.rollback {
        &app.rollback_steps
    } else {
        &app.steps
    })[at.phase][si];
    match &view.state {
        StepState::Pending => (theme.glyph(Glyph::Pending), theme.dim(), String::new()),
        StepState::Waiting(Wait::GoAhead { irreversible }) => {
            let what = if *irreversible {
                "IRREVERSIBLE: Enter, then y"
            } else if matches!(step.kind, StepKind::Manual(_)) {
                "waiting for you: Enter"
            } else {
                "waiting for go-ahead: Enter"
            };
            let what = match &app.watching {
                Some(w) => format!("waiting for {}", w.driver_name()),
                None => what.to_string(),
            };
            (
                theme.glyph(Glyph::Waiting),
                theme.warn().add_modifier(Modifier::BOLD),
                what,
            )
        }
        StepState::Waiting(Wait::Approval(w)) => (
            theme.glyph(Glyph::Waiting),
            theme.warn().add_modifier(Modifier::BOLD),
            w.describe(),
        ),
        StepState::Waiting(Wait::Interrupted) => (
            theme.glyph(Glyph::Interrupted),
            theme.bad(),
            "interrupted: r again · d done · s skip".to_string(),
        ),
        // Never stored: a failed step stays `Done` and a trigger hold is `app.waiting`.
        StepState::Waiting(Wait::Failed { .. } | Wait::Trigger { .. }) => {
            (theme.glyph(Glyph::Waiting), theme.bad(), "waiting".into())
        }
        StepState::Running { since, attempt } => {
            let el = now.saturating_duration_since(*since);
            let right = match &step.kind {
                StepKind::Watch(d) => {
                    let total = d.div_f64(app.speed);
                    format!("watching, {} left", super::left(total.saturating_sub(el)))
                }
                _ => format!("running {}", super::clock(el)),
            };
            let attempt = if *attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            };
            (
                theme.glyph(Glyph::Running),
                theme.accent(),
                format!("{right}{attempt}"),
            )
        }
        StepState::Done {
            status,
            took,
            attempt,
            ..
        } => {
            let (g, st) = theme.status_glyph(*status);
            let deciding = matches!(&app.waiting, Some((w, Wait::Failed { .. }))
                if w.phase == at.phase && w.step == si && w.rollback == at.rollback);
            let text = if deciding {
                "failed: r retry · s skip · R roll back".to_string()
            } else if *attempt == 0 {
                // Cancelled by a rollback before it ever started.
                status.as_str().replace('_', " ")
            } else {
                let attempts = if *attempt > 1 {
                    format!(", {attempt} attempts")
                } else {
                    String::new()
                };
                format!(
                    "{} {}{attempts}",
                    status.as_str().replace('_', " "),
                    format_duration(*took)
                )
            };
            (g, st, text)
        }
    }
}

/// A row's right side in `room` columns: as it is when it fits; otherwise the keys it offers are
/// named by their key alone (`failed: r · s · R`, the hint line says what each does), so that no
/// key is cut off.
fn keys_only(right: &str, room: usize) -> String {
    if right.width() <= room {
        return right.to_string();
    }
    match right.split_once(": ") {
        Some((head, keys)) if keys.contains(" · ") => {
            let keys: Vec<&str> = keys
                .split(" · ")
                .filter_map(|k| k.split_whitespace().next())
                .collect();
            format!("{head}: {}", keys.join(" · "))
        }
        _ => right.to_string(),
    }
}

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme, now: Instant) {
    let at = app.selected;
    let phase = &app.phases(at.rollback)[at.phase];
    let title = pane_title(app);
    let focus = super::pane_style(app, crate::tui::state::Focus::Steps, Pane::Steps, theme);
    let block = Block::bordered()
        .border_set(theme.border())
        .border_style(focus)
        .title(Span::styled(
            super::fit(&title, area.width.saturating_sub(2) as usize),
            theme.accent(),
        ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let w = inner.width as usize;
    let list_rows = (inner.height as usize)
        .saturating_sub(detail_rows(app, area.width) as usize)
        .max(1);
    // Keep the selected step in view.
    let first = at.step.saturating_sub(list_rows.saturating_sub(1));
    let mut lines = Vec::new();
    for (si, step) in phase.steps.iter().enumerate().skip(first).take(list_rows) {
        let (glyph, gstyle, right) = row_state(app, theme, si, now);
        let kind = format!("{:<6}", step.kind.name());
        let right = super::fit(&keys_only(&right, w / 2), w / 2);
        let title_w = w.saturating_sub(right.chars().count() + 10);
        let title = super::fit(&step.title, title_w);
        let pad = w.saturating_sub(
            2 + 7 + unicode_width::UnicodeWidthStr::width(title.as_str()) + right.chars().count(),
        );
        let mut line = Line::from(vec![
            Span::styled(format!("{glyph} "), gstyle),
            Span::styled(kind, theme.dim()),
            Span::raw(" "),
            Span::raw(title),
            Span::raw(" ".repeat(pad)),
            Span::styled(right, gstyle),
        ]);
        if si == at.step {
            line = line.style(theme.selected());
        }
        lines.push(line);
    }
    let (titles, detail, note) = detail(app, area.width);
    let list_h = lines.len() as u16;
    f.render_widget(Paragraph::new(lines), inner);
    // The detail wraps: a manual instruction is read in full, not cut at the edge.
    let mut detail_lines = Vec::new();
    if let Some(t) = titles {
        detail_lines.push(Line::from(Span::styled(t, theme.accent())));
    }
    detail_lines.push(Line::from(Span::styled(detail, theme.dim())));
    if let Some(n) = note {
        let style = if n.starts_with("IRREVERSIBLE") {
            theme.bad()
        } else {
            theme.warn()
        };
        detail_lines.push(Line::from(Span::styled(n, style)));
    }
    let detail_area = Rect {
        y: inner.y + list_h,
        height: inner.height.saturating_sub(list_h),
        ..inner
    };
    f.render_widget(
        Paragraph::new(detail_lines).wrap(ratatui::widgets::Wrap { trim: true }),
        detail_area,
    );
}
