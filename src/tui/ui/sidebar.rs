//! Metrics and triggers: for each metric its value in its unit, a sparkline, its threshold and
//! its source, `unknown` plainly when there is no data; for each trigger its state, with the time
//! left while pending. On a narrow terminal the same folds into a strip of one line per metric.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use unicode_width::UnicodeWidthStr;

use super::theme::Theme;
use crate::runbook::Threshold;
use crate::tui::state::{App, MetricView, Pane, TriggerState, TriggerView};

fn value(m: &MetricView) -> String {
    match m.last {
        Some(v) => m.unit.format(v),
        None => "unknown".into(),
    }
}

fn breached(m: &MetricView) -> bool {
    m.last.is_some_and(|v| {
        m.thresholds.iter().any(|t| match t {
            Threshold::Above(x) => v > *x,
            Threshold::Below(x) => v < *x,
        })
    })
}

/// A metric's value: warned of while it has no reading, bad while past a threshold.
fn metric_style(m: &MetricView, theme: &Theme) -> Style {
    if m.last.is_none() {
        theme.warn()
    } else if breached(m) {
        theme.bad()
    } else {
        Style::default()
    }
}

fn threshold(m: &MetricView) -> String {
    m.thresholds
        .iter()
        .map(|t| match t {
            Threshold::Above(x) => format!(">{}", m.unit.format(*x)),
            Threshold::Below(x) => format!("<{}", m.unit.format(*x)),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `width` samples as bars, scaled to the samples and thresholds in view.
pub fn sparkline(m: &MetricView, width: usize, theme: &Theme) -> String {
    let bars = theme.bars();
    let samples: Vec<Option<f64>> = m.history.iter().rev().take(width).rev().copied().collect();
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in samples.iter().flatten() {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    for t in &m.thresholds {
        let x = match t {
            Threshold::Above(x) | Threshold::Below(x) => *x,
        };
        hi = hi.max(x);
    }
    lo = lo.min(0.0_f64.max(lo));
    let span = if hi > lo { hi - lo } else { 1.0 };
    samples
        .iter()
        .map(|v| match v {
            Some(v) => {
                let k = (((v - lo) / span) * (bars.len() - 1) as f64)
                    .round()
                    .clamp(0.0, (bars.len() - 1) as f64);
                bars[k as usize]
            }
            None => "?",
        })
        .collect()
}

pub(super) fn trigger_text(app: &App, i: usize, now: Instant) -> String {
    let t = &app.triggers[i];
    if let Some(at) = app.auto_rollback_at(i) {
        return format!("ROLLBACK IN {}", super::left(at.saturating_duration_since(now)));
    }
    match (t.state, t.since, t.window.map(|w| w.div_f64(app.speed))) {
        (TriggerState::Pending, Some(since), Some(w)) => {
            format!(
                "pending, fires in {}",
                super::left(w.saturating_sub(now.saturating_duration_since(since)))
            )
        }
        (s, _, _) => s.label().to_string(),
    }
}

pub(super) fn trigger_style(t: &TriggerView, theme: &Theme) -> Style {
    match t.state {
        TriggerState::Firing => theme.alarm(),
        TriggerState::Pending | TriggerState::Unknown | TriggerState::Acknowledged => theme.warn(),
        // Not yet sampled (after a resume) is not known to be healthy: never drawn as ok.
        TriggerState::Disarmed | TriggerState::NotYetSampled => theme.dim(),
        TriggerState::Ok => theme.ok(),
    }
}

/// Rows the sidebar's lines take in a column of `w`: a metric three, a trigger one, or more when
/// its id and state do not fit one (a countdown counted at its usual width, so that the band
/// above the log does not change height from one second to the next).
pub fn height(app: &App, w: u16) -> u16 {
    let w = w as usize;
    let metrics = if app.metrics.is_empty() {
        1
    } else {
        3 * app.metrics.len()
    };
    let triggers: usize = (0..app.triggers.len())
        .map(|i| {
            let t = &app.triggers[i];
            let state_w = match (app.auto_rollback_at(i), t.state) {
                (Some(_), _) => "ROLLBACK IN 0:00".len(),
                (None, TriggerState::Pending) if t.window.is_some() => "pending, fires in 0:00".len(),
                (None, s) => s.label().width(),
            };
            if t.id.width() + 1 + state_w > w {
                id_rows(&t.id, w).len() + 1
            } else {
                1
            }
        })
        .sum();
    (metrics + 1 + triggers).min(u16::MAX as usize) as u16
}

/// Lines that do not fit the column: the last row says how many metrics and triggers it leaves
/// out, and `m` shows them all.
fn fold(lines: &mut Vec<(Line<'static>, Item)>, rows: usize, theme: &Theme) {
    if lines.len() <= rows || rows == 0 {
        return;
    }
    let kept = rows - 1;
    let hidden = &lines[kept..];
    let count = |want: fn(&Item) -> Option<usize>| {
        let mut seen: Vec<usize> = hidden.iter().filter_map(|(_, i)| want(i)).collect();
        seen.dedup();
        seen.len()
    };
    let metrics = count(|i| match i {
        Item::Metric(k) => Some(*k),
        _ => None,
    });
    let triggers = count(|i| match i {
        Item::Trigger(k) => Some(*k),
        _ => None,
    });
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let text = match (metrics, triggers) {
        (0, t) => format!("+{} (m)", plural(t, "trigger")),
        (m, 0) => format!("+{} (m)", plural(m, "metric")),
        (m, t) => format!("+{}, {} (m)", plural(m, "metric"), plural(t, "trigger")),
    };
    lines.truncate(kept);
    lines.push((
        Line::from(Span::styled(
            text,
            theme.warn().add_modifier(ratatui::style::Modifier::BOLD),
        )),
        Item::Other,
    ));
}

/// What a line of the sidebar belongs to (to count what a short column leaves out).
#[derive(Clone, Copy)]
enum Item {
    Metric(usize),
    Trigger(usize),
    Other,
}

pub fn render(f: &mut Frame, area: Rect, app: &App, theme: &Theme, now: Instant) {
    let inner = Block::bordered().inner(area);
    let w = inner.width as usize;
    let mut lines: Vec<(Line<'static>, Item)> = Vec::new();
    if app.metrics.is_empty() {
        lines.push((
            Line::from(Span::styled("no metrics in this runbook", theme.dim())),
            Item::Other,
        ));
    }
    for (k, m) in app.metrics.iter().enumerate() {
        let style = metric_style(m, theme);
        lines.push((
            Line::from(Span::styled(super::fit(&m.title, w), theme.accent())),
            Item::Metric(k),
        ));
        let v = value(m);
        let spark = sparkline(m, w.saturating_sub(v.len() + 1).min(24), theme);
        lines.push((
            Line::from(vec![
                Span::styled(v, style),
                Span::raw(" "),
                Span::styled(spark, theme.dim()),
            ]),
            Item::Metric(k),
        ));
        let mut info = format!("{} · {}", threshold(m), m.source.as_str());
        if let Some(e) = &m.error {
            info = format!("{info} · {e}");
        }
        lines.push((
            Line::from(Span::styled(super::fit(&info, w), theme.dim())),
            Item::Metric(k),
        ));
    }
    lines.push((Line::from(Span::styled("Triggers", theme.accent())), Item::Other));
    let zoomed = app.zoom == Some(Pane::Metrics);
    for (i, t) in app.triggers.iter().enumerate() {
        let state = trigger_text(app, i, now);
        let state_w = state.width();
        // An id and its state that do not fit one row take two: the id is never cut (one
        // longer than the column is broken after a `-`, where it reads as words).
        if t.id.width() + 1 + state_w > w {
            for part in id_rows(&t.id, w) {
                lines.push((Line::from(Span::raw(part)), Item::Trigger(i)));
            }
            let pad = w.saturating_sub(state_w);
            lines.push((
                Line::from(vec![
                    Span::raw(" ".repeat(pad)),
                    Span::styled(state, trigger_style(t, theme)),
                ]),
                Item::Trigger(i),
            ));
        } else {
            let pad = w.saturating_sub(t.id.width() + state_w);
            lines.push((
                Line::from(vec![
                    Span::raw(t.id.clone()),
                    Span::raw(" ".repeat(pad)),
                    Span::styled(state, trigger_style(t, theme)),
                ]),
                Item::Trigger(i),
            ));
        }
        // The whole screen (m): what each trigger watches, and why it fired, in full.
        if zoomed {
            lines.push((
                Line::from(Span::styled(format!("  {}", t.title), theme.dim())),
                Item::Trigger(i),
            ));
            if let Some(r) = &t.reason {
                lines.push((
                    Line::from(Span::styled(format!("  {r}"), theme.warn())),
                    Item::Trigger(i),
                ));
            }
        }
    }
    let title = if zoomed {
        " Metrics and triggers (m or Esc: back) "
    } else {
        " Metrics "
    };
    let block = Block::bordered()
        .border_set(theme.border())
        .border_style(theme.dim())
        .title(title);
    f.render_widget(block, area);
    if !zoomed {
        fold(&mut lines, inner.height as usize, theme);
    }
    let lines: Vec<Line> = lines.into_iter().map(|(l, _)| l).collect();
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// A trigger id in rows of at most `w` columns, broken after a `-` where it can be.
fn id_rows(id: &str, w: usize) -> Vec<String> {
    let mut rows = Vec::new();
    let mut rest = id;
    while rest.width() > w && w > 0 {
        let cut = rest
            .char_indices()
            .take_while(|(i, _)| rest[..*i].width() < w)
            .filter(|(_, c)| *c == '-')
            .map(|(i, _)| i + 1)
            .filter(|&i| rest[..i].width() <= w)
            .last()
            .unwrap_or_else(|| {
                rest.char_indices()
                    .map(|(i, c)| i + c.len_utf8())
                    .take_while(|&i| rest[..i].width() <= w)
                    .last()
                    .unwrap_or(rest.len())
            });
        rows.push(rest[..cut].to_string());
        rest = &rest[cut..];
    }
    rows.push(rest.to_string());
    rows
}

/// Metrics the strip has a line for; the rest are counted on the triggers' line (`m` shows all).
const STRIP_METRICS: usize = 3;

pub fn strip_height(app: &App) -> u16 {
    let more = app.metrics.len() > STRIP_METRICS;
    (app.metrics.len().min(STRIP_METRICS) + usize::from(!app.triggers.is_empty() || more)) as u16
}

/// The narrow form: `Error rate  0.21% ▁▂▃▂ >1.00% simulated`, and one line of triggers.
pub fn render_strip(f: &mut Frame, area: Rect, app: &App, theme: &Theme, now: Instant) {
    let w = area.width as usize;
    let mut lines = Vec::new();
    for m in app.metrics.iter().take(STRIP_METRICS) {
        let v = value(m);
        let style = metric_style(m, theme);
        let tail = format!(" {} {}", threshold(m), m.source.as_str());
        let name = super::fit(&m.title, 16);
        let spark_w = w.saturating_sub(18 + v.len() + 1 + tail.len()).min(30);
        lines.push(Line::from(vec![
            Span::styled(format!("{name:<16}  "), theme.accent()),
            Span::styled(v, style),
            Span::raw(" "),
            Span::styled(sparkline(m, spark_w, theme), theme.dim()),
            Span::styled(tail, theme.dim()),
        ]));
    }
    let hidden_metrics = app.metrics.len().saturating_sub(STRIP_METRICS);
    if !app.triggers.is_empty() || hidden_metrics > 0 {
        // Each trigger whole, or not at all: those that do not fit are counted, and `m` shows
        // them. A firing one comes first, so that it is never the one left out.
        let mut order: Vec<usize> = (0..app.triggers.len()).collect();
        order.sort_by_key(|&i| app.triggers[i].state != TriggerState::Firing);
        let items: Vec<Vec<Span>> = order
            .iter()
            .map(|&i| {
                let t = &app.triggers[i];
                let state = match app.auto_rollback_at(i) {
                    Some(_) => format!("firing, {}", trigger_text(app, i, now)),
                    None => t.state.label().to_string(),
                };
                vec![
                    Span::raw(format!("{} ", t.id)),
                    Span::styled(state, trigger_style(t, theme)),
                    Span::raw("  "),
                ]
            })
            .collect();
        let more = |n: usize| {
            let metrics = if hidden_metrics > 0 {
                format!(
                    "{hidden_metrics} metric{}",
                    if hidden_metrics == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            match (n, metrics.is_empty()) {
                (0, true) => String::new(),
                (0, false) => format!("+{metrics} (m)"),
                (n, true) => format!("+{n} more (m)"),
                (n, false) => format!("+{n} more, {metrics} (m)"),
            }
        };
        let label = if app.triggers.is_empty() { "" } else { "Triggers: " };
        let width = |s: &[Span]| s.iter().map(|s| s.width()).sum::<usize>();
        let all = label.width() + items.iter().map(|i| width(i)).sum::<usize>() + more(0).width();
        let mut shown = if all <= w { items.len() } else { 0 };
        let mut used = label.width();
        for (k, item) in items.iter().enumerate().skip(shown) {
            let left = items.len() - k - 1;
            let tail = more(left).width();
            if used + width(item) + tail > w {
                break;
            }
            used += width(item);
            shown += 1;
        }
        let mut spans = vec![Span::styled(label, theme.accent())];
        for item in items.into_iter().take(shown) {
            spans.extend(item);
        }
        let rest = more(app.triggers.len() - shown);
        if !rest.is_empty() {
            spans.push(Span::styled(
                rest,
                theme.warn().add_modifier(ratatui::style::Modifier::BOLD),
            ));
        }
        lines.push(Line::from(spans));
    }
    f.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trigger_not_yet_sampled_is_never_drawn_as_healthy() {
        let theme = Theme {
            color: true,
            ascii: false,
        };
        let view = |state| TriggerView {
            id: "error-rate".into(),
            title: "Error rate".into(),
            state,
            since: None,
            value: None,
            reason: None,
            window: None,
            kept_window: None,
        };
        assert_ne!(
            trigger_style(&view(TriggerState::NotYetSampled), &theme),
            theme.ok()
        );
        assert_eq!(trigger_style(&view(TriggerState::Ok), &theme), theme.ok());
    }

    #[test]
    fn a_long_trigger_id_breaks_after_a_dash() {
        assert_eq!(
            id_rows("queue-depth-ratio-above-normal", 28),
            ["queue-depth-ratio-above-", "normal"]
        );
        assert_eq!(id_rows("error-rate", 28), ["error-rate"]);
        assert_eq!(id_rows("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    }
}
