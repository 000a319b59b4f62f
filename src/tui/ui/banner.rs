//! The banner: a firing trigger (naming it, its value, the key that rolls back, and the
//! `auto_rollback` countdown with the key that stops it), the rollback in progress (and a rollback
//! step waiting for the operator), a `watch` that will pass by itself, or how the run ended.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use crate::engine::Wait;
use crate::tui::state::App;
use unicode_width::UnicodeWidthStr;

/// Rows the banner needs at this width: a line per firing trigger and one for the keys; the end
/// of the run and the rollback wrap, so that the run folder and the reason are read in full.
pub fn height(app: &App, width: u16) -> u16 {
    let firing = app.firing().len() as u16;
    if firing > 0 && app.rollback_reason.is_none() && app.finished.is_none() {
        return (firing + 1).min(4);
    }
    if let Some(text) = finished_text(app).or_else(|| rollback_text(app)) {
        return text.width().div_ceil(width.max(1) as usize).clamp(1, 3) as u16;
    }
    u16::from(app.watch_passes().is_some())
}

/// How the run ended, with the run folder and the key that leaves.
fn finished_text(app: &App) -> Option<String> {
    let (outcome, reason) = app.finished.as_ref()?;
    let why = reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    let drill = match app.rehearsal_figures {
        Some((fired, rollback)) => {
            let ms = |v: Option<u64>| {
                v.map(|m| crate::duration::format_duration(std::time::Duration::from_millis(m)))
                    .unwrap_or("-".into())
            };
            format!(
                " — drill: fired→decision {}, rollback {}",
                ms(fired),
                ms(rollback)
            )
        }
        None => String::new(),
    };
    Some(format!(
        " Run {} (exit {}){why}{drill} — q to quit — journal: {}",
        outcome.as_str().replace('_', " "),
        outcome.exit_code(),
        app.run_dir
    ))
}

/// The rollback under way, and the keys of a rollback step waiting for the operator.
fn rollback_text(app: &App) -> Option<String> {
    let reason = app.rollback_reason.as_ref()?;
    Some(match &app.waiting {
        // The keys first, so that they are on the first row.
        Some((at, Wait::GoAhead { .. })) => format!(
            " ROLLBACK STEP WAITS FOR YOU · Enter: go ahead · s: skip · {} · rollback: {reason}",
            app.name(*at)
        ),
        Some((at, Wait::Failed { .. })) => format!(
            " ROLLBACK STEP FAILED · r: retry · s: skip · {} · rollback: {reason}",
            app.name(*at)
        ),
        _ => format!(" ROLLING BACK · {reason} · the rollback procedure runs below"),
    })
}

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme, now: Instant) {
    if area.height == 0 {
        return;
    }
    let w = area.width as usize;
    let mut lines = Vec::new();
    let firing = app.firing();
    // Once the rollback runs (or the run is over), that is what the banner says.
    if !firing.is_empty() && app.rollback_reason.is_none() && app.finished.is_none() {
        for t in &firing {
            let value = t
                .value
                .map(|v| format!(" at {}", value_text(app, &t.id, v)))
                .unwrap_or_default();
            let why = t.reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default();
            // The value first: a long title is cut, not the value (the title is in full under m).
            let text = format!(" TRIGGER FIRING{value}: {}{why} ", t.title);
            lines.push(Line::from(Span::styled(
                format!("{:<w$}", super::fit(&text, w)),
                theme.alarm(),
            )));
        }
        // About to act on its own: the countdown and the key that stops it come first, so that
        // they are on screen at 80 columns too.
        let (keys, style) = match app.auto_rollback() {
            Some((t, at)) => {
                let left = at.saturating_duration_since(now);
                let when = if left.is_zero() {
                    "NOW".to_string()
                } else {
                    format!("IN {}", super::left(left))
                };
                // The trigger is named on its own line above when it is the only one firing.
                let which = if app.firing().len() > 1 {
                    format!(" ({})", t.id)
                } else {
                    String::new()
                };
                let text = format!(
                    " ROLLS BACK BY ITSELF {when}{which} · a: acknowledge (stops it) · R, y: roll back now"
                );
                (text, theme.alarm())
            }
            None if app.rb.rollback.is_some() => (
                " R then y: ROLL BACK now   ·   a: acknowledge and go on (recorded)   ·   no new step starts meanwhile"
                    .to_string(),
                theme.bad(),
            ),
            None => (
                " This runbook has NO [rollback] procedure   ·   a: acknowledge and go on (recorded)".to_string(),
                theme.bad(),
            ),
        };
        lines.push(Line::from(Span::styled(
            format!("{:<w$}", super::fit(&keys, w)),
            style,
        )));
    } else if let Some(text) = finished_text(app) {
        let style = match app.finished.as_ref().map(|(o, _)| o) {
            Some(crate::journal::Outcome::Succeeded) => theme.ok(),
            Some(crate::journal::Outcome::RolledBack) => theme.warn(),
            _ => theme.bad(),
        };
        f.render_widget(
            Paragraph::new(Line::from(Span::styled(text, style)))
                .wrap(ratatui::widgets::Wrap { trim: false }),
            area,
        );
        return;
    } else if let Some(text) = rollback_text(app) {
        f.render_widget(
            Paragraph::new(Line::from(Span::styled(text, theme.warn())))
                .wrap(ratatui::widgets::Wrap { trim: false }),
            area,
        );
        return;
    } else if let Some((_, passes)) = app.watch_passes() {
        let left = super::left(passes.saturating_duration_since(now));
        let text =
            format!(" WATCH passes by itself in {left} · Enter, y: pass it now · R: roll back instead");
        lines.push(Line::from(Span::styled(
            format!("{:<w$}", super::fit(&text, w)),
            theme.warn().add_modifier(ratatui::style::Modifier::BOLD),
        )));
    }
    f.render_widget(Paragraph::new(lines), area);
}

/// A trigger's value in its metric's unit.
fn value_text(app: &App, trigger: &str, v: f64) -> String {
    let unit = app
        .rb
        .triggers
        .iter()
        .find(|t| t.id == trigger)
        .and_then(|t| match &t.kind {
            crate::runbook::TriggerKind::Metric { metric, .. } => {
                app.rb.metric.iter().find(|m| &m.id == metric)
            }
            _ => None,
        })
        .map_or(crate::runbook::Unit::Number, |m| m.unit);
    unit.format(v)
}
