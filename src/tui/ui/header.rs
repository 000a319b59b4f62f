//! The header: mode (RUN / REHEARSAL, unmistakable), runbook title, key vars, operator@host,
//! elapsed time, and where the run stands.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::theme::Theme;
use crate::engine::{Mode, Wait};
use crate::tui::state::App;
use unicode_width::UnicodeWidthStr;

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme, now: Instant) {
    let mode = match app.mode {
        Mode::Run => Span::styled(" RUN ", theme.key()),
        Mode::Rehearse => Span::styled(" REHEARSAL — nothing is executed ", theme.rehearsal()),
        Mode::Resume => Span::styled(" RESUMED RUN ", theme.key()),
    };
    let (mut state, style) = status(app, theme, now);
    if let Some(w) = &app.watching {
        state = state.replace("FOR YOU", &format!("FOR {}", w.driver_name().to_uppercase()));
    }
    let var = ["release", "version", "image"]
        .iter()
        .find_map(|k| app.rb.var(k).map(|v| format!("{k} {v}")))
        .or_else(|| app.rb.vars.first().map(|(k, v)| format!("{k} {v}")));
    let elapsed = super::clock(now.saturating_duration_since(app.started));
    // A watcher's badge gives way (its shorter words) before where the run stands is cut.
    let mode = match &app.watching {
        Some(w) => {
            let var_width = var.as_ref().map_or(0, |v| v.width() + 3);
            let room = (area.width as usize).saturating_sub(state.width() + elapsed.width() + var_width + 4);
            Span::styled(w.badge_within(room), theme.rehearsal())
        }
        None => mode,
    };
    // A watcher's badge names the driver already.
    let mut right = match &app.watching {
        Some(_) => format!(" {elapsed} "),
        None => format!(" {}@{}  {elapsed} ", app.operator, app.host),
    };
    let mut spans = vec![mode, Span::raw(" ")];
    // The shared store cannot be written: how far behind it is, before the title (which gives way).
    if let Some(b) = &app.store_behind {
        let text = format!(
            "STORE BEHIND {}: {} ev, {} ",
            crate::text::clock(b.since).get(..8).unwrap_or_default(),
            b.events,
            crate::store::link::bytes(b.bytes)
        );
        spans.push(Span::styled(text, theme.warn().add_modifier(Modifier::BOLD)));
    }
    let width = area.width as usize;
    let fixed =
        |right: &str| spans.iter().map(|s| s.width()).sum::<usize>() + state.width() + right.width() + 1;
    // What must not be cut: the mode, the key variable's value, where the run stands. The title
    // gives way first, then who and where (both in the journal), never the value.
    let var = var.map(|v| format!(" · {v}")).unwrap_or_default();
    if fixed(&right) + var.width() + 8 > width {
        right = format!(" {elapsed} ");
    }
    let room = width.saturating_sub(fixed(&right) + var.width());
    let title = format!("{}{var}", super::fit(&app.rb.title, room));
    spans.push(Span::styled(title, Style::default().add_modifier(Modifier::BOLD)));
    let taken: usize = spans.iter().map(|s| s.width()).sum();
    let pad = width.saturating_sub(taken + right.width() + state.width());
    spans.push(Span::raw(" ".repeat(pad)));
    spans.push(Span::raw(right));
    spans.push(Span::styled(state, style));
    f.render_widget(Line::from(spans), area);
}

fn status(app: &App, theme: &Theme, now: Instant) -> (String, Style) {
    if let Some((outcome, _)) = &app.finished {
        let style = match outcome {
            crate::journal::Outcome::Succeeded => theme.ok().add_modifier(Modifier::REVERSED),
            crate::journal::Outcome::RolledBack => theme.warn().add_modifier(Modifier::REVERSED),
            _ => theme.bad().add_modifier(Modifier::REVERSED),
        };
        return (
            format!(" {} ", outcome.as_str().to_uppercase().replace('_', " ")),
            style,
        );
    }
    if app.rollback_reason.is_some() {
        // A rollback step that waits for the operator says so, like any other.
        let text = match &app.waiting {
            Some((_, Wait::GoAhead { .. })) => " ROLLBACK WAITS FOR YOU ",
            Some((_, Wait::Failed { .. })) => " ROLLBACK STEP FAILED ",
            Some((_, Wait::Interrupted)) => " ROLLBACK STEP: DECIDE ",
            _ => " ROLLING BACK ",
        };
        return (
            text.into(),
            theme.warn().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        );
    }
    if let Some((_, at)) = app.auto_rollback() {
        let left = super::left(at.saturating_duration_since(now));
        return (format!(" AUTO ROLLBACK IN {left} "), theme.alarm());
    }
    if !app.firing().is_empty() {
        return (" TRIGGER FIRING ".into(), theme.alarm());
    }
    // Cut off from the shared store: nothing more starts until the lease is renewed (SPEC §9).
    if app.lease_hold && app.waiting.is_none() {
        return (
            " NO STORE LEASE: HOLDING ".into(),
            theme.warn().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        );
    }
    match &app.waiting {
        Some((_, Wait::Interrupted)) => (
            " INTERRUPTED STEP: DECIDE ".into(),
            theme.bad().add_modifier(Modifier::REVERSED),
        ),
        Some((_, Wait::GoAhead { .. })) => (
            " WAITING FOR YOU ".into(),
            theme.warn().add_modifier(Modifier::REVERSED),
        ),
        Some((_, Wait::Failed { .. })) => (
            " STEP FAILED ".into(),
            theme.bad().add_modifier(Modifier::REVERSED),
        ),
        Some((_, Wait::Trigger { .. })) => (" HELD BY TRIGGER ".into(), theme.alarm()),
        Some((_, Wait::Approval(w))) => (
            format!(
                " WAITING FOR {} APPROVAL{} ",
                w.missing(),
                if w.missing() == 1 { "" } else { "S" }
            ),
            theme.warn().add_modifier(Modifier::REVERSED),
        ),
        None => (" RUNNING ".into(), theme.ok()),
    }
}
