//! Dialogs, drawn over the screen, the newest on top: help (every key of the key table, scrolled
//! when it is taller than the screen), the rollback offer (what it cancels, what it runs, what it
//! cannot undo, the metrics now), quitting, ending a watch early, text input (skip reason, note,
//! trigger reason, search) and picking a trigger to raise.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::theme::Theme;
use crate::journal::StepStatus;
use crate::tui::dialog::{Dialog, TextPurpose};
use crate::tui::state::{App, StepState};

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    h
}

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    for d in &app.dialogs {
        match d {
            Dialog::Help { scroll } => help(f, area, app, theme, *scroll),
            Dialog::Rollback => rollback(f, area, app, theme),
            Dialog::Quit => quit(f, area, app, theme),
            Dialog::Irreversible(at) => irreversible(f, area, app, theme, *at),
            Dialog::Handover {
                by,
                from,
                reason,
                across_hosts,
            } => simple(
                f,
                area,
                theme,
                " Hand this run over? ",
                crate::tui::team::lines(app, (by, from, reason, *across_hosts), theme),
            ),
            Dialog::Watcher(ask) => {
                let (title, lines) = crate::tui::watching::dialog(app, ask, theme);
                simple(f, area, theme, &title, lines)
            }
            Dialog::EndWatch(_) => simple(
                f,
                area,
                theme,
                " End the watch early? ",
                vec![
                    Line::from(
                        "The watch passes now, as if its time had run out; the journal records who ended it.",
                    ),
                    Line::from(""),
                    Line::from("y: end it   n or Esc: keep watching"),
                ],
            ),
            Dialog::Text { purpose, area: text } => {
                let title = match purpose {
                    TextPurpose::Skip(at) => {
                        format!(" Why skip {}? (Enter: skip, Esc: cancel) ", app.name(*at))
                    }
                    TextPurpose::Note => " Note for the journal (Enter: save, Esc: cancel) ".to_string(),
                    TextPurpose::MarkDone(at) => {
                        format!(" Why is {} done? (Enter: mark done, Esc: cancel) ", app.name(*at))
                    }
                    TextPurpose::Raise(t) => format!(" Raise trigger {t}: why? (Enter: raise, Esc: cancel) "),
                    TextPurpose::Search => {
                        " Search the log (Enter: newest match, Ctrl-U: clear, Esc: cancel) ".to_string()
                    }
                    TextPurpose::Rollback => " Why roll back? (Enter: ROLL BACK NOW, Esc: back) ".to_string(),
                };
                let r = centered(area, area.width.saturating_sub(4).min(90), 3);
                f.render_widget(Clear, r);
                let block = Block::bordered()
                    .border_set(theme.border())
                    .title(super::fit(&title, r.width as usize));
                let inner = block.inner(r);
                f.render_widget(block, r);
                f.render_widget(&**text, inner);
            }
            Dialog::PickTrigger { selected } => {
                let mut lines = Vec::new();
                for (i, t) in app.triggers.iter().enumerate() {
                    let line = Line::from(format!("{:<24} {}", t.id, t.title));
                    lines.push(if i == *selected {
                        line.style(theme.selected())
                    } else {
                        line
                    });
                }
                lines.push(Line::from(""));
                lines.push(Line::from("↑↓ choose · Enter: give a reason · Esc: cancel"));
                simple(f, area, theme, " Raise which trigger? ", lines);
            }
        }
    }
}

pub fn simple(f: &mut Frame, area: Rect, theme: &Theme, title: &str, lines: Vec<Line>) {
    let w = area.width.saturating_sub(4).min(96);
    // Rows after wrapping, so that the last line (the keys) is never cut off.
    let inner = w.saturating_sub(2).max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let r = centered(area, w, rows as u16 + 2);
    f.render_widget(Clear, r);
    let block = Block::bordered()
        .border_set(theme.border())
        .title(Span::styled(title.to_string(), theme.accent()));
    f.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), r);
}

/// The help's width on a screen `width` columns wide.
fn help_width(width: u16) -> u16 {
    width.saturating_sub(4).min(110)
}

/// Words of `text` in rows of at most `width` columns (a word longer than a row is cut).
pub(super) fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = vec![String::new()];
    for word in text.split(' ') {
        let row = rows.last_mut().expect("a row");
        let sep = usize::from(!row.is_empty());
        if row.width() + sep + word.width() <= width {
            if sep == 1 {
                row.push(' ');
            }
            row.push_str(word);
            continue;
        }
        let mut next = String::new();
        for c in word.chars() {
            if next.width() + c.width().unwrap_or(0) > width {
                rows.push(std::mem::take(&mut next));
            }
            next.push(c);
        }
        if rows.last().is_some_and(String::is_empty) {
            rows.pop();
        }
        rows.push(next);
    }
    rows
}

/// Every line of the help, for a box `width` columns wide: the key table, one binding a line
/// (wrapped under its text, not under its keys), then where the run is and the dialogs' keys.
fn help_lines(app: &App, theme: &Theme, width: u16) -> Vec<Line<'static>> {
    let inner = width.saturating_sub(2) as usize;
    // A watcher's screen has a watcher's keys.
    let table: Vec<(&str, &str)> = match app.watching {
        Some(_) => crate::tui::watching::HELP.to_vec(),
        None => crate::tui::bindings::help().collect(),
    };
    let key_w = table.iter().map(|(k, _)| k.width()).max().unwrap_or(0);
    let text_w = inner.saturating_sub(key_w + 2).max(10);
    let mut lines = Vec::new();
    for &(keys, what) in &table {
        for (i, row) in wrap_words(what, text_w).into_iter().enumerate() {
            let keys = if i == 0 { keys } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!("{keys:>key_w$}  "), theme.accent()),
                Span::raw(row),
            ]));
        }
    }
    lines.push(Line::from(""));
    let tail = [
        "In a question: y answers yes, n or Esc no. In a text box: Enter saves, Esc cancels, Ctrl-U clears."
            .to_string(),
        format!("Runbook: {} ({})", app.rb.title, app.rb.file.display()),
        format!("This run's folder (journal, logs): {}", app.run_dir),
        "↑ ↓ PgUp PgDn scroll this help; any other key closes it".to_string(),
    ];
    for text in tail {
        lines.extend(wrap_words(&text, inner).into_iter().map(Line::from));
    }
    lines
}

/// The help's box on a screen of `area`: its lines, and the rows it shows them in.
fn help_box(app: &App, theme: &Theme, area: Rect) -> (Vec<Line<'static>>, Rect) {
    let w = help_width(area.width);
    let lines = help_lines(app, theme, w);
    let r = centered(area, w, (lines.len() as u16).saturating_add(2));
    (lines, r)
}

/// How far the help can be scrolled on the operator's screen.
pub fn help_scroll_max(app: &App) -> usize {
    let (lines, r) = help_box(
        app,
        &Theme {
            color: false,
            ascii: false,
        },
        screen(app),
    );
    lines.len().saturating_sub(r.height.saturating_sub(2) as usize)
}

/// A screenful of the help, for PgUp and PgDn.
pub fn help_page(app: &App) -> usize {
    let (_, r) = help_box(
        app,
        &Theme {
            color: false,
            ascii: false,
        },
        screen(app),
    );
    (r.height.saturating_sub(3) as usize).max(1)
}

fn screen(app: &App) -> Rect {
    Rect::new(0, 0, app.screen.0, app.screen.1)
}

fn help(f: &mut Frame, area: Rect, app: &App, theme: &Theme, scroll: usize) {
    let (lines, r) = help_box(app, theme, area);
    let rows = r.height.saturating_sub(2) as usize;
    let total = lines.len();
    let scroll = scroll.min(total.saturating_sub(rows));
    let title = if total > rows {
        format!(
            " Keys: lines {}-{} of {total} (↑ ↓ PgUp PgDn: scroll) ",
            scroll + 1,
            (scroll + rows).min(total)
        )
    } else {
        " Keys ".to_string()
    };
    let shown: Vec<Line> = lines.into_iter().skip(scroll).take(rows).collect();
    f.render_widget(Clear, r);
    let block = Block::bordered().border_set(theme.border()).title(Span::styled(
        super::fit(&title, r.width.saturating_sub(2) as usize),
        theme.accent(),
    ));
    f.render_widget(Paragraph::new(shown).block(block), r);
}

/// An irreversible step's go-ahead: names it, says the rollback cannot undo it; `y` starts it.
fn irreversible(f: &mut Frame, area: Rect, app: &App, theme: &Theme, at: crate::engine::StepRef) {
    let step = app.step(at);
    let lines = vec![
        Line::from(format!("{}: {}", app.name(at), step.title)),
        Line::from(""),
        Line::from(Span::styled(
            "This step is IRREVERSIBLE: the rollback procedure cannot undo it.",
            theme.bad(),
        )),
        Line::from(""),
        Line::from(Span::styled("y: RUN IT   n or Esc: not now", theme.bad())),
    ];
    simple(f, area, theme, " Run an IRREVERSIBLE step? ", lines);
}

fn quit(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut lines = Vec::new();
    // What an abort means now: during the rollback it leaves the rollback unfinished (exit 4).
    let stops = if app.rollback_reason.is_some() {
        let code = crate::journal::Outcome::RollbackFailed.exit_code();
        format!("stops the rollback unfinished (exit {code}: rollback aborted)")
    } else {
        let code = crate::journal::Outcome::Aborted.exit_code();
        format!("stops the run (exit {code})")
    };
    match app.running() {
        Some(at) => {
            lines.push(Line::from(format!("A step is running: {}.", app.name(at))));
            lines.push(Line::from(format!(
                "Quitting cancels it (SIGTERM to its process group, SIGKILL after the grace period) and {stops}."
            )));
        }
        None => lines.push(Line::from(format!(
            "Quitting now {stops}; no further step starts."
        ))),
    }
    lines.push(Line::from(format!(
        "Everything so far is in the journal: {}",
        app.run_dir
    )));
    lines.push(Line::from(""));
    lines.push(Line::from("y: quit   n or Esc: stay"));
    simple(f, area, theme, " Quit? ", lines);
}

fn rollback(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut lines = Vec::new();
    let Some(procedure) = &app.rb.rollback else {
        lines.push(Line::from(Span::styled(
            "This runbook has no [rollback] procedure.",
            theme.bad(),
        )));
        lines.push(Line::from(
            "Rolling back would only cancel the step in flight and the remaining steps; nothing would be undone.",
        ));
        lines.push(Line::from(""));
        lines.push(Line::from("y: stop the run this way   n or Esc: cancel"));
        simple(f, area, theme, " ROLL BACK? ", lines);
        return;
    };
    match app.running() {
        Some(at) => lines.push(Line::from(format!(
            "Cancels the step in flight: {} (SIGTERM to its process group, SIGKILL after {}).",
            app.name(at),
            crate::duration::format_duration(app.rb.settings.kill_grace)
        ))),
        None => lines.push(Line::from(
            "No step is running; the remaining forward steps are marked cancelled.",
        )),
    }
    lines.push(Line::from(format!("Then runs \"{}\":", procedure.title)));
    for (i, p) in procedure.phases.iter().enumerate() {
        let steps: Vec<&str> = p.steps.iter().map(|s| s.title.as_str()).collect();
        lines.push(Line::from(format!(
            "  R{}. {}: {}",
            i + 1,
            p.title,
            steps.join("; ")
        )));
    }
    let irreversible: Vec<String> = app
        .rb
        .phases
        .iter()
        .enumerate()
        .flat_map(|(pi, p)| p.steps.iter().enumerate().map(move |(si, s)| (pi, si, s)))
        .filter(|(pi, si, s)| {
            s.irreversible
                && matches!(
                    app.steps[*pi][*si].state,
                    StepState::Done {
                        status: StepStatus::Succeeded
                            | StepStatus::Failed
                            | StepStatus::TimedOut
                            | StepStatus::Interrupted
                            | StepStatus::Cancelled,
                        ..
                    } | StepState::Running { .. }
                )
        })
        .map(|(_, _, s)| s.title.clone())
        .collect();
    if !irreversible.is_empty() {
        lines.push(Line::from(Span::styled(
            format!(
                "WARNING: already run and NOT undone by the rollback: {}",
                irreversible.join("; ")
            ),
            theme.bad(),
        )));
    }
    let metrics: Vec<String> = app
        .metrics
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m.id,
                m.last
                    .map(|v| m.unit.format(v))
                    .unwrap_or_else(|| "unknown".into())
            )
        })
        .collect();
    if !metrics.is_empty() {
        lines.push(Line::from(format!("Metrics now: {}", metrics.join(", "))));
    }
    let firing: Vec<&str> = app.firing().iter().map(|t| t.id.as_str()).collect();
    if !firing.is_empty() {
        lines.push(Line::from(format!("Firing: {}", firing.join(", "))));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "y: ROLL BACK NOW   w: say why first   n or Esc: cancel",
        theme.bad(),
    )));
    simple(f, area, theme, " ROLL BACK? ", lines);
}
