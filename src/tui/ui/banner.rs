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

pub fn height(app: &App) -> u16 {
    let firing = app.firing().len() as u16;
    if firing > 0 && app.rollback_reason.is_none() && app.finished.is_none() {
        return (firing + 1).min(4);
    }
    u16::from(app.rollback_reason.is_some() || app.finished.is_some() || app.watch_passes().is_some())
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
                .map(|v| format!(" — value {}", value_text(app, &t.id, v)))
                .unwrap_or_default();
            let why = t.reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default();
            let text = format!(" TRIGGER FIRING: {}{value}{why} ", t.title);
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
                    format!("IN {}", super::clock(left))
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
    } else if let Some((outcome, reason)) = &app.finished {
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
        let text = format!(
            " Run {} (exit {}){why}{drill} — journal: {} — q to quit",
            outcome.as_str().replace('_', " "),
            outcome.exit_code(),
            app.run_dir
        );
        let style = match outcome {
            crate::journal::Outcome::Succeeded => theme.ok(),
            crate::journal::Outcome::RolledBack => theme.warn(),
            _ => theme.bad(),
        };
        lines.push(Line::from(Span::styled(super::fit(&text, w), style)));
    } else if let Some(reason) = &app.rollback_reason {
        let text = match &app.waiting {
            // The keys first, so that they fit at 80 columns; the reason may be cut.
            Some((at, Wait::GoAhead { .. })) => format!(
                " ROLLBACK STEP WAITS FOR YOU · Enter: go ahead · s: skip · {} ({reason})",
                app.name(*at)
            ),
            Some((at, Wait::Failed { .. })) => format!(
                " ROLLBACK STEP FAILED · r: retry · s: skip · {} ({reason})",
                app.name(*at)
            ),
            _ => format!(" ROLLING BACK ({reason}): the rollback procedure runs below"),
        };
        lines.push(Line::from(Span::styled(super::fit(&text, w), theme.warn())));
    } else if let Some((_, passes)) = app.watch_passes() {
        let left = super::clock(passes.saturating_duration_since(now));
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
