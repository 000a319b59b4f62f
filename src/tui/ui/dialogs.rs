//! Dialogs, drawn over the screen, the newest on top: help, the rollback offer (what it cancels,
//! what it runs, what it cannot undo, the metrics now), quitting, ending a watch early, text input
//! (skip reason, note, trigger reason, search) and picking a trigger to raise.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::theme::Theme;
use crate::journal::StepStatus;
use crate::tui::keys::{Dialog, TextPurpose};
use crate::tui::state::{App, StepState};

pub const HELP: &[(&str, &str)] = &[
    (
        "Enter",
        "confirm the waiting step (shown first if not on screen; an irreversible one asks y), \
         let a confirm step run, end a watch early",
    ),
    ("s", "skip the waiting or failed step (asks for a reason)"),
    (
        "r",
        "retry the failed step (or run again a step interrupted by an earlier session)",
    ),
    (
        "d",
        "mark done a step interrupted by an earlier session (asks why)",
    ),
    ("n", "add a note to the journal"),
    ("R", "offer the rollback; y starts it, n or Esc cancels"),
    ("a", "acknowledge firing triggers (recorded), stops auto_rollback"),
    ("t", "raise a trigger by hand (asks for a reason)"),
    ("!", "inject a fault into simulated metrics (practice)"),
    ("↑ ↓ / j k", "select a step; in the log (Tab): scroll it a line"),
    (
        "← → / h l",
        "show another phase; in the log: scroll sideways (when not wrapped)",
    ),
    ("Tab", "move between the steps and the log"),
    (
        "PgUp PgDn",
        "scroll the log a screenful (Space too); Home or g: its start; End, f or G: follow the run",
    ),
    ("w", "wrap long log lines, or cut them and scroll sideways"),
    (
        "z",
        "zoom: the pane with the keyboard takes the whole screen (z or Esc: back)",
    ),
    ("m", "metrics and triggers on the whole screen, in full"),
    ("[ ]", "show the selected step's earlier / later attempt"),
    (
        "/",
        "search the log, newest match first (lower case: any case); Ctrl-U clears the box",
    ),
    (
        "Ctrl-P Ctrl-N",
        "previous (up) / next (down) match; Esc clears the search",
    ),
    ("?", "this help"),
    ("q", "quit (asks first while the run goes on)"),
    ("Ctrl-Z", "suspend; `fg` comes back"),
];

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
            Dialog::Help => help(f, area, app, theme),
            Dialog::Rollback => rollback(f, area, app, theme),
            Dialog::Quit => quit(f, area, app, theme),
            Dialog::Irreversible(at) => irreversible(f, area, app, theme, *at),
            Dialog::Handover { by, from, reason } => simple(
                f,
                area,
                theme,
                " Hand this run over? ",
                crate::tui::team::lines(app, by, from, reason, theme),
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

fn help(f: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let keys = match app.watching {
        Some(_) => crate::tui::watching::HELP,
        None => HELP,
    };
    let lines: Vec<Line> = keys
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>13}  "), theme.accent()),
                Span::raw(*what),
            ])
        })
        .chain([
            Line::from(""),
            Line::from(format!("This run's folder (journal, logs): {}", app.run_dir)),
            Line::from("any key closes this help"),
        ])
        .collect();
    simple(f, area, theme, " Keys ", lines);
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
        "y: ROLL BACK NOW   n or Esc: cancel",
        theme.bad(),
    )));
    simple(f, area, theme, " ROLL BACK? ", lines);
}
