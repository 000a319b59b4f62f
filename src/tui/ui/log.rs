//! The log of the running or selected step (any of its attempts): follows its end unless
//! scrolled, wraps long lines or scrolls sideways (`w`), highlights search matches (smart case,
//! as in less) and counts them, and ends with how the attempt finished and where its full log is.
//! Output was cleaned of terminal escapes and control characters on arrival (a `\r` progress line
//! keeps its last state, tabs are expanded); the log file keeps the raw bytes.
//!
//! The geometry (how many lines fill the pane) is shared with the keys that page through it, so
//! that a page is a screenful.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::theme::Theme;
use crate::tui::state::{App, Focus, LogView, Pane, StepState};

/// `21:11:42 ` before each line.
const TIME_W: usize = 9;
/// At most this many rows under the log say how the attempt ended and where its log is.
const FOOTER_ROWS: usize = 3;

/// Where `query` occurs in `text`, as byte ranges: ignoring case unless the query has a capital
/// letter (smart case, as in less `-i`).
pub fn matches(text: &str, query: &str) -> Vec<(usize, usize)> {
    if query.is_empty() {
        return Vec::new();
    }
    let exact = query.chars().any(char::is_uppercase);
    let mut out = Vec::new();
    if exact {
        out.extend(text.match_indices(query).map(|(i, m)| (i, i + m.len())));
    } else if text.is_ascii() && query.is_ascii() {
        let (t, q) = (text.to_ascii_lowercase(), query.to_ascii_lowercase());
        out.extend(t.match_indices(&q).map(|(i, m)| (i, i + m.len())));
    } else {
        let q: Vec<char> = query.chars().flat_map(char::to_lowercase).collect();
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut i = 0;
        while i < chars.len() {
            let mut lowered = chars[i..].iter().flat_map(|(_, c)| c.to_lowercase());
            let mut used = 0;
            let mut ok = true;
            for qc in &q {
                match lowered.next() {
                    Some(c) if c == *qc => used += 1,
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                // Map the lowered characters back to the text's (one to one for all but a few).
                let end = chars[i..]
                    .iter()
                    .scan(0, |n, (at, c)| {
                        *n += c.to_lowercase().count();
                        Some((*n, *at + c.len_utf8()))
                    })
                    .find(|(n, _)| *n >= used)
                    .map_or(text.len(), |(_, e)| e);
                out.push((chars[i].0, end));
                while i < chars.len() && chars[i].0 < end {
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
    }
    out
}

/// The lines of the log on screen that match the search, oldest first.
pub fn matching_lines(app: &App) -> Vec<usize> {
    let (Some(q), Some(log)) = (app.search.as_deref(), app.shown_log()) else {
        return Vec::new();
    };
    (0..log.len())
        .filter(|&i| !matches(log.line(i).1, q).is_empty())
        .collect()
}

/// The text area of the log pane: rows and columns for the lines, and whether they have times.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub rows: usize,
    pub width: usize,
    pub timed: bool,
    pub wrap: bool,
}

impl Geometry {
    /// Rows line `text` takes.
    fn rows_of(&self, text: &str) -> usize {
        if !self.wrap || text.width() <= self.width {
            return 1;
        }
        rows(text, &[], self, 0, Style::default()).len()
    }
}

/// How the attempt on screen ended and where its full log is: one paragraph, wrapped.
fn footer(app: &App, theme: &Theme) -> Option<(String, Style)> {
    let at = app.selected;
    let view = app.view(at);
    let attempt = app.shown_attempt();
    let latest = attempt == view.attempts;
    let end = view.ends.iter().find(|e| e.attempt == attempt);
    let ended = match (&view.state, end) {
        // The latest attempt is over only once the step is done (a retry may be running).
        (StepState::Done { .. }, Some(e)) if latest => Some(e),
        (_, Some(e)) if !latest => Some(e),
        _ => None,
    };
    let path = ended.and_then(|e| e.log.clone()).or_else(|| {
        // While it runs, or from an earlier session, its log is where the engine puts it.
        let step = app.step(at);
        let has_log = matches!(
            step.kind,
            crate::runbook::StepKind::Run(_) | crate::runbook::StepKind::Http(_)
        );
        (has_log && attempt > 0 && (ended.is_some() || app.zoom == Some(Pane::Log))).then(|| {
            let phase = &app.phases(at.rollback)[at.phase];
            crate::engine::log_file(at.rollback, &phase.id, &step.id, attempt)
        })
    });
    let path = path.map(|p| format!("full log: {}/{p}", app.run_dir));
    match ended {
        Some(e) => {
            let code = e.code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default();
            let why = match (&e.error, latest) {
                // The latest attempt's error is in the detail under the steps; an earlier one's
                // only here.
                (Some(err), false) => format!(": {err}"),
                _ => String::new(),
            };
            let mut text = format!(
                "— {} after {}{code}{why}",
                e.status.as_str().replace('_', " "),
                crate::duration::format_duration(e.took)
            );
            if let Some(p) = path {
                text = format!("{text} · {p}");
            }
            Some((text, theme.status_glyph(e.status).1))
        }
        None => path.map(|p| (p, theme.dim())),
    }
}

fn footer_rows(text: &str, width: usize) -> usize {
    text.width().max(1).div_ceil(width.max(1)).min(FOOTER_ROWS)
}

/// The text area inside a log pane drawn in `area`.
pub fn geometry(app: &App, area: Rect, theme: &Theme) -> Geometry {
    let inner_w = area.width.saturating_sub(2) as usize;
    let inner_h = area.height.saturating_sub(2) as usize;
    let foot = footer(app, theme).map_or(0, |(t, _)| footer_rows(&t, inner_w));
    let timed = app.shown_log().is_none_or(|l| !l.from_file);
    Geometry {
        rows: inner_h.saturating_sub(foot).max(1),
        width: inner_w.saturating_sub(if timed { TIME_W } else { 0 }).max(1),
        timed,
        wrap: app.wrap,
    }
}

/// The log pane's geometry on the operator's screen (`app.screen`).
fn screen_geometry(app: &App) -> Geometry {
    let (w, h) = app.screen;
    let area = super::layout(app, Rect::new(0, 0, w, h)).log.unwrap_or_default();
    geometry(
        app,
        area,
        &Theme {
            color: false,
            ascii: false,
        },
    )
}

/// How many lines, ending just before line `end`, fill the text area (at least one).
fn fit_up(log: &LogView, end: usize, g: &Geometry) -> usize {
    let mut rows = 0;
    let mut n = 0;
    for i in (0..end).rev() {
        rows += g.rows_of(log.line(i).1);
        if rows > g.rows && n > 0 {
            break;
        }
        n += 1;
    }
    n
}

/// How many lines, from line `start` on, fill the text area (at least one).
fn fit_down(log: &LogView, start: usize, g: &Geometry) -> usize {
    let mut rows = 0;
    let mut n = 0;
    for i in start..log.len() {
        rows += g.rows_of(log.line(i).1);
        if rows > g.rows && n > 0 {
            break;
        }
        n += 1;
    }
    n
}

/// The furthest the log can be scrolled up: its first line at the top.
fn max_scroll(log: &LogView, g: &Geometry) -> usize {
    let top = Geometry {
        rows: g.rows.saturating_sub(usize::from(log.dropped > 0)).max(1),
        ..*g
    };
    log.len() - fit_down(log, 0, &top)
}

/// Scrolls the log up (positive) or down by `lines`, within its length.
pub fn scroll_by(app: &mut App, lines: isize) {
    let g = screen_geometry(app);
    let Some(log) = app.shown_log() else {
        app.log_scroll = 0;
        return;
    };
    let max = max_scroll(log, &g);
    let now = app.log_scroll.min(max);
    app.log_scroll = now.saturating_add_signed(lines).min(max);
}

/// A screenful up: the line at the top goes to the bottom... just below it, as in less.
pub fn page_up(app: &mut App) {
    let g = screen_geometry(app);
    let Some(log) = app.shown_log() else {
        return;
    };
    let max = max_scroll(log, &g);
    let end = log.len() - app.log_scroll.min(max);
    let start = end - fit_up(log, end, &g);
    app.log_scroll = (log.len() - start).max(app.log_scroll + 1).min(max);
}

/// A screenful down.
pub fn page_down(app: &mut App) {
    let g = screen_geometry(app);
    let Some(log) = app.shown_log() else {
        return;
    };
    let end = log.len() - app.log_scroll.min(max_scroll(log, &g));
    let lines = fit_down(log, end, &g).max(1);
    app.log_scroll = (log.len() - end).saturating_sub(lines);
}

/// The start of the log.
pub fn home(app: &mut App) {
    let g = screen_geometry(app);
    app.log_scroll = app.shown_log().map_or(0, |log| max_scroll(log, &g));
}

/// Brings line `i` into view, a few lines above the bottom when it can.
pub fn show_line(app: &mut App, i: usize) {
    let g = screen_geometry(app);
    let Some(log) = app.shown_log() else {
        return;
    };
    let below = fit_down(
        log,
        i,
        &Geometry {
            rows: g.rows / 2,
            ..g
        },
    );
    let end = (i + below.max(1)).min(log.len());
    app.log_scroll = (log.len() - end).min(max_scroll(log, &g));
}

/// Columns to scroll sideways by: half the text width, as less does.
pub fn half_width(app: &App) -> usize {
    (screen_geometry(app).width / 2).max(1)
}

/// Line `text` as rows of the pane: cut at its edge from column `hscroll` on (an ellipsis marks
/// what is out of view on either side), or wrapped; search matches highlighted.
fn rows(
    text: &str,
    hits: &[(usize, usize)],
    g: &Geometry,
    hscroll: usize,
    hit: Style,
) -> Vec<Vec<Span<'static>>> {
    let w = g.width;
    let mut rows: Vec<Vec<(char, bool)>> = vec![Vec::new()];
    let mut col = 0;
    let mut row_w = 0;
    let total = text.width();
    for (at, c) in text.char_indices() {
        let cw = c.width().unwrap_or(0);
        let lit = hits.iter().any(|(s, e)| at >= *s && at < *e);
        if g.wrap {
            if row_w + cw > w {
                // Break after the row's last space when there is one, as words wrap.
                let row = rows.last_mut().expect("a row");
                let moved = match row.iter().rposition(|(c, _)| *c == ' ') {
                    Some(sp) if sp > 0 && c != ' ' => row.split_off(sp + 1),
                    _ => Vec::new(),
                };
                row_w = moved.iter().map(|(c, _)| c.width().unwrap_or(0)).sum();
                rows.push(moved);
                // The space the row broke at is not carried to the next one.
                if c == ' ' {
                    continue;
                }
            }
            rows.last_mut().expect("a row").push((c, lit));
            row_w += cw;
        } else {
            let from = col;
            col += cw;
            if from < hscroll {
                continue;
            }
            let last = total > from + cw && row_w + cw + 1 > w;
            if last || row_w + cw > w {
                rows[0].push(('…', false));
                break;
            }
            rows[0].push((c, lit));
            row_w += cw;
        }
    }
    if !g.wrap && hscroll > 0 && !rows[0].is_empty() {
        rows[0][0] = ('…', false);
    }
    rows.into_iter()
        .map(|cells| {
            let mut spans = Vec::new();
            let mut run = String::new();
            let mut lit = false;
            for (c, l) in cells {
                if l != lit && !run.is_empty() {
                    let style = if lit { hit } else { Style::default() };
                    spans.push(Span::styled(std::mem::take(&mut run), style));
                }
                lit = l;
                run.push(c);
            }
            if !run.is_empty() {
                spans.push(Span::styled(run, if lit { hit } else { Style::default() }));
            }
            spans
        })
        .collect()
}

/// A watch's pane: how much of it is gone and left (and what happens then), and every trigger
/// with its state now.
fn watch_lines(app: &App, theme: &Theme, now: std::time::Instant, width: usize) -> Vec<Line<'static>> {
    use crate::duration::format_duration;
    let at = app.selected;
    let crate::runbook::StepKind::Watch(d) = app.step(at).kind else {
        return Vec::new();
    };
    let d = d.div_f64(app.speed);
    let mut lines = Vec::new();
    let head = match &app.view(at).state {
        StepState::Running { since, .. } => {
            let gone = now.saturating_duration_since(*since).min(d);
            format!(
                "Watching the triggers: {} of {} gone, {} left. It passes by itself then, unless a \
                 trigger fires (Enter ends it early).",
                super::clock(gone),
                super::clock(d),
                super::left(d - gone)
            )
        }
        StepState::Done { status, took, .. } => format!(
            "Watched the triggers for {}: {}.",
            format_duration(*took),
            status.as_str().replace('_', " ")
        ),
        _ => format!(
            "A watch: {} with the triggers watched; it passes if none fires.",
            format_duration(d)
        ),
    };
    for row in super::dialogs::wrap_words(&head, width) {
        lines.push(Line::from(row));
    }
    if app.triggers.is_empty() {
        lines.push(Line::from(Span::styled(
            "This runbook has no triggers.",
            theme.dim(),
        )));
        return lines;
    }
    lines.push(Line::from(Span::styled("Triggers now:", theme.accent())));
    let id_w = app
        .triggers
        .iter()
        .map(|t| t.id.width())
        .max()
        .unwrap_or(0)
        .min(width / 2);
    let states: Vec<String> = (0..app.triggers.len())
        .map(|i| super::sidebar::trigger_text(app, i, now))
        .collect();
    let state_w = states.iter().map(|s| s.width()).max().unwrap_or(0);
    for (t, state) in app.triggers.iter().zip(states) {
        let id = super::fit(&t.id, id_w);
        lines.push(Line::from(vec![
            Span::raw(format!("  {id:<id_w$}  ")),
            Span::styled(
                format!("{state:<state_w$}"),
                super::sidebar::trigger_style(t, theme),
            ),
            Span::styled(format!("  {}", t.title), theme.dim()),
        ]));
    }
    lines
}

/// Where the lines go in a log pane drawn in `area`: inside its border, above the footer.
pub fn text_area(app: &App, area: Rect, theme: &Theme) -> Rect {
    let inner = Block::bordered().inner(area);
    let foot_h = footer(app, theme).map_or(0, |(t, _)| footer_rows(&t, inner.width as usize)) as u16;
    Rect {
        height: inner.height.saturating_sub(foot_h),
        ..inner
    }
}

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme, now: std::time::Instant) {
    let at = app.selected;
    let view = app.view(at);
    let log = app.shown_log();
    let g = geometry(app, area, theme);
    let scrolled = log.map_or(0, |l| app.log_scroll.min(max_scroll(l, &g)));
    let attempt = app.shown_attempt();
    let attempts = if view.attempts > 1 {
        format!(" · attempt {attempt}/{} ([ ])", view.attempts)
    } else {
        String::new()
    };
    let hits = matching_lines(app);
    let search = match app.search.as_deref() {
        Some(q) if hits.is_empty() => format!(" · /{q}: no match"),
        Some(q) => {
            // The match last gone to; otherwise the nearest above the bottom of the view.
            let end = log.map_or(0, |l| l.len() - scrolled);
            let k = match app.search_at.and_then(|a| hits.iter().position(|&i| i == a)) {
                Some(k) => k + 1,
                None => hits.iter().take_while(|&&i| i < end).count().max(1),
            };
            format!(" · /{q}: {k}/{}", hits.len())
        }
        None => String::new(),
    };
    let where_ = if scrolled > 0 {
        format!("up {scrolled} (End: follow)")
    } else if attempt < view.attempts {
        "earlier attempt (]: later)".to_string()
    } else if app.follow {
        "following".to_string()
    } else {
        "End to follow the run".to_string()
    };
    let side = if !app.wrap && app.log_hscroll > 0 {
        format!(" · col {}", app.log_hscroll + 1)
    } else {
        String::new()
    };
    // When the title is too long, the step's name gives way first: where the log stands
    // (following, scrolled up, a match count) is what the operator reads it for.
    let rest = format!("{attempts}{search} — {where_}{side} ");
    let room = (area.width.saturating_sub(2) as usize).saturating_sub(rest.width() + 6);
    let title = format!(" Log: {}{rest}", super::fit(&app.name(at), room.max(8)));
    let focus = super::pane_style(app, Focus::Log, Pane::Log, theme);
    let block = Block::bordered()
        .border_set(theme.border())
        .border_style(focus)
        .title(super::fit(&title, area.width.saturating_sub(2) as usize));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let foot = footer(app, theme);
    let text_area = text_area(app, area, theme);
    let foot_h = inner.height - text_area.height;
    if let Some((text, style)) = foot {
        let r = Rect {
            y: text_area.y + text_area.height,
            height: foot_h,
            ..inner
        };
        // Cut into rows by width, not at spaces: a path is read whole, in as few rows as it takes.
        let mut rows: Vec<Line> = Vec::new();
        let mut row = String::new();
        for c in text.chars() {
            if row.width() + c.width().unwrap_or(0) > inner.width as usize {
                rows.push(Line::from(Span::styled(std::mem::take(&mut row), style)));
            }
            row.push(c);
        }
        rows.push(Line::from(Span::styled(row, style)));
        f.render_widget(Paragraph::new(rows), r);
    }
    let room = text_area.height as usize;
    let mut lines: Vec<Line> = Vec::new();
    match log.filter(|l| !l.is_empty()) {
        // Four eyes: who may approve, and how, in full (the step's line may be cut at 80 columns).
        None if matches!(view.state, StepState::Waiting(crate::engine::Wait::Approval(_))) => {
            if let StepState::Waiting(crate::engine::Wait::Approval(w)) = &view.state {
                let width = text_area.width.max(20) as usize;
                lines.push(Line::from(Span::styled(w.describe(), theme.warn())));
                // A watcher through the store has no folder of the run on this host.
                let remote = app.watching.as_ref().is_some_and(|v| v.store.is_some());
                let folder = (!remote).then_some(app.run_dir.as_str());
                let hint = crate::team::approve::hint(folder, app.shared_id.as_deref(), &w.step);
                let said = [
                    ("another operator approves it with:", hint.here),
                    (
                        match folder {
                            Some(_) => "from another host (shared store):",
                            None => "another operator approves it with:",
                        },
                        hint.other_host,
                    ),
                ];
                for (words, command) in said {
                    let Some(command) = command else { continue };
                    lines.push(Line::from(words));
                    // Cut to the pane's width so that the whole command can be read and copied.
                    let chars: Vec<char> = command.chars().collect();
                    for piece in chars.chunks(width) {
                        lines.push(Line::from(piece.iter().collect::<String>()));
                    }
                }
            }
        }
        // A watch prints nothing: its pane shows how far it is and what it watches.
        None if matches!(app.step(at).kind, crate::runbook::StepKind::Watch(_)) => {
            lines = watch_lines(app, theme, now, text_area.width as usize);
        }
        // A step that waits: what for, and the key that answers it.
        None if log.is_none() && matches!(view.state, StepState::Waiting(_)) => {
            if let StepState::Waiting(w) = &view.state {
                let rows = super::waiting::lines(app, w, text_area.width.max(20) as usize);
                lines.extend(
                    rows.into_iter()
                        .map(|r| Line::from(Span::styled(r, theme.warn()))),
                );
            }
        }
        None => {
            let text = match &view.state {
                _ if log.is_some() => "no output",
                StepState::Pending => "not started",
                StepState::Waiting(_) => "waiting",
                StepState::Running { .. } => "no output yet",
                StepState::Done { .. } => "no output",
            };
            lines.push(Line::from(Span::styled(text, theme.dim())));
        }
        Some(log) => {
            let n = log.len();
            let end = n - scrolled;
            let start = end - fit_up(log, end, &g);
            if start == 0 && log.dropped > 0 {
                lines.push(Line::from(Span::styled(
                    format!("… {} earlier lines are in the log file", log.dropped),
                    theme.dim(),
                )));
            }
            let hit = theme.warn().add_modifier(Modifier::REVERSED | Modifier::BOLD);
            let query = app.search.as_deref().unwrap_or("");
            for i in start..end {
                let (time, text) = log.line(i);
                let found = matches(text, query);
                for (k, row) in rows(text, &found, &g, app.log_hscroll, hit)
                    .into_iter()
                    .enumerate()
                {
                    let mut spans = Vec::new();
                    if g.timed {
                        // A wrapped line's further rows have blanks under its time, unstyled:
                        // they look the same and cost no style change on the wire.
                        spans.push(if k == 0 {
                            let t = crate::text::clock(time);
                            Span::styled(format!("{} ", t.get(..8).unwrap_or(&t)), theme.dim())
                        } else {
                            Span::raw(" ".repeat(TIME_W))
                        });
                    }
                    spans.extend(row);
                    lines.push(Line::from(spans));
                }
            }
            // A wrapped line taller than what is left: its top rows go.
            if lines.len() > room {
                let extra = lines.len() - room;
                lines.drain(..extra);
            }
        }
    }
    f.render_widget(Paragraph::new(lines), text_area);
}
