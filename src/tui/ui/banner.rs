//! The banner: a firing trigger (naming it, its value, and the key that rolls back), the
//! rollback in progress, or how the run ended.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use crate::tui::state::App;

pub fn height(app: &App) -> u16 {
    let firing = app.firing().len() as u16;
    if firing > 0 && app.rollback_reason.is_none() && app.finished.is_none() {
        return (firing + 1).min(4);
    }
    u16::from(app.rollback_reason.is_some() || app.finished.is_some())
}

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
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
        let keys = if app.rb.rollback.is_some() {
            " R then y: ROLL BACK now   ·   a: acknowledge and go on (recorded)   ·   no new step starts meanwhile"
        } else {
            " This runbook has NO [rollback] procedure   ·   a: acknowledge and go on (recorded)"
        };
        lines.push(Line::from(Span::styled(
            format!("{:<w$}", super::fit(keys, w)),
            theme.bad(),
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
        let text = format!(" ROLLING BACK ({reason}): the rollback procedure runs below");
        lines.push(Line::from(Span::styled(super::fit(&text, w), theme.warn())));
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
