//! `runbook plan`: the runbook as a readable outline — sections, phases, each step with its kind
//! and options, the metrics and triggers, and the rollback procedure.

use std::fmt::Write as _;

use super::model::*;
use crate::duration::format_duration;

pub fn outline(rb: &Runbook) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{}", rb.title);
    if let Some(d) = &rb.description {
        let _ = writeln!(o, "{d}");
    }
    let _ = writeln!(
        o,
        "file: {}  (sha256 {})",
        rb.file.display(),
        &rb.sha256[..12.min(rb.sha256.len())]
    );
    if !rb.vars.is_empty() {
        let vars: Vec<String> = rb.vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(o, "vars: {}", vars.join(", "));
    }
    if !rb.secrets.is_empty() {
        let names: Vec<String> = rb
            .secrets
            .iter()
            .map(|s| match &s.source {
                SecretSource::Env(e) => format!("{} (env {e})", s.name),
                SecretSource::File(f) => format!("{} (file {})", s.name, f.display()),
            })
            .collect();
        let _ = writeln!(o, "secrets: {}", names.join(", "));
    }
    let _ = writeln!(
        o,
        "commands: {} -c, in {}, kill grace {}",
        rb.settings.shell,
        rb.settings.workdir.display(),
        format_duration(rb.settings.kill_grace)
    );
    let _ = writeln!(
        o,
        "{}, {}",
        count(rb.phases.len(), "phase"),
        count(rb.step_count(), "step")
    );
    let cols = Columns::of(rb);

    let mut section: Option<&str> = None;
    for (i, p) in rb.phases.iter().enumerate() {
        if p.section.as_deref() != section && p.section.is_some() {
            section = p.section.as_deref();
            let _ = writeln!(o, "\n## {}", section.unwrap_or(""));
        }
        phase(&mut o, &format!("{}", i + 1), p, &cols);
    }

    if !rb.metric.is_empty() {
        let _ = writeln!(o, "\n## Metrics (every {})", format_duration(rb.metrics.interval));
        for m in &rb.metric {
            let source = match (&m.source, &rb.metrics.url) {
                (MetricSource::Query(_), Some(url)) => format!("prometheus {url}"),
                (MetricSource::Query(_), None) => format!(
                    "simulated around {} (no [metrics] url)",
                    m.unit.format(m.simulate.baseline)
                ),
                (MetricSource::Command(c), _) => format!("command `{c}`"),
            };
            let _ = writeln!(o, "  {:<16} {} [{}] — {source}", m.id, m.title, m.unit.as_str());
            if let MetricSource::Query(q) = &m.source {
                let _ = writeln!(o, "  {:<16} query: {q}", "");
            }
        }
    }
    if !rb.triggers.is_empty() {
        let _ = writeln!(o, "\n## Rollback triggers");
        for t in &rb.triggers {
            let what = match &t.kind {
                TriggerKind::Metric {
                    metric,
                    threshold,
                    for_,
                    on_no_data,
                } => {
                    let unit = rb
                        .metric
                        .iter()
                        .find(|m| &m.id == metric)
                        .map_or(Unit::Number, |m| m.unit);
                    let (cmp, v) = match threshold {
                        Threshold::Above(v) => ("above", *v),
                        Threshold::Below(v) => ("below", *v),
                    };
                    let dur = if for_.is_zero() {
                        String::new()
                    } else {
                        format!(" for {}", format_duration(*for_))
                    };
                    format!(
                        "{metric} {cmp} {}{dur}; no data: {}",
                        unit.format(v),
                        on_no_data.as_str()
                    )
                }
                TriggerKind::Check {
                    command, interval, ..
                } => {
                    format!("check `{command}` every {}", format_duration(*interval))
                }
                TriggerKind::Manual => "raised by the operator".to_string(),
                TriggerKind::Alert(a) => format!(
                    "alert {} from {} (its rule's `for`); no data: {}",
                    a.selector(),
                    a.source_text(),
                    a.on_no_data.as_str()
                ),
            };
            let mut extra = String::new();
            if let Some(a) = &t.armed_from {
                extra.push_str(&format!("; armed from {a}"));
            }
            if let Some(d) = t.auto_rollback {
                extra.push_str(&format!(
                    "; rolls back by itself after {} unacknowledged",
                    format_duration(d)
                ));
            }
            let _ = writeln!(o, "  {:<16} {}\n  {:<16} {what}{extra}", t.id, t.title, "");
        }
    }
    o.push_str(&super::notify::outline(&rb.notify));
    match &rb.rollback {
        Some(r) => {
            let _ = writeln!(o, "\n## Rollback: {}", r.title);
            for (i, p) in r.phases.iter().enumerate() {
                phase(&mut o, &format!("R{}", i + 1), p, &cols);
            }
        }
        None => {
            let _ = writeln!(
                o,
                "\n## Rollback: none (this runbook has no [rollback] procedure)"
            );
        }
    }
    o
}

/// "1 step", "2 steps".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The widths of a step row's number (`11.1`, `R1.2`) and kind (`[watch 15m]`) over the whole
/// outline, so that every title, and every command under it, starts in the same column.
struct Columns {
    number: usize,
    kind: usize,
}

impl Columns {
    fn of(rb: &Runbook) -> Columns {
        let forward = rb
            .phases
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("{}", i + 1), p));
        let back = rb
            .rollback
            .iter()
            .flat_map(|r| r.phases.iter().enumerate())
            .map(|(i, p)| (format!("R{}", i + 1), p));
        let mut cols = Columns { number: 0, kind: 0 };
        for (n, p) in forward.chain(back) {
            for (j, s) in p.steps.iter().enumerate() {
                cols.number = cols.number.max(format!("{n}.{}", j + 1).len());
                cols.kind = cols.kind.max(kind_label(s).chars().count());
            }
        }
        cols
    }
}

/// `[run]`, `[watch 15m]`.
fn kind_label(s: &Step) -> String {
    match &s.kind {
        StepKind::Watch(d) => format!("[watch {}]", format_duration(*d)),
        k => format!("[{}]", k.name()),
    }
}

fn phase(o: &mut String, number: &str, p: &Phase, cols: &Columns) {
    let _ = writeln!(o, "\n{number}. {}  [{}]", p.title, p.id);
    for (j, s) in p.steps.iter().enumerate() {
        let mut opts = Vec::new();
        if let Some(t) = s.timeout {
            opts.push(format!("timeout {}", format_duration(t)));
        }
        if s.retries > 0 {
            let delay = if s.retry_delay.is_zero() {
                String::new()
            } else {
                format!(" every {}", format_duration(s.retry_delay))
            };
            opts.push(format!("retries {}{delay}", s.retries));
        }
        if s.on_failure != OnFailure::Ask && !matches!(s.kind, StepKind::Manual(_) | StepKind::Watch(_)) {
            opts.push(format!("on failure: {}", s.on_failure.as_str()));
        }
        if s.confirm {
            opts.push("confirm first".into());
        }
        if s.irreversible {
            opts.push("IRREVERSIBLE".into());
        }
        let opts = if opts.is_empty() {
            String::new()
        } else {
            format!("  ({})", opts.join(", "))
        };
        let _ = writeln!(
            o,
            "   {:<nw$}  {:<kw$}  {}  [{}]{opts}",
            format!("{number}.{}", j + 1),
            kind_label(s),
            s.title,
            s.id,
            nw = cols.number,
            kw = cols.kind
        );
        let detail = match &s.kind {
            StepKind::Run(c) => Some(format!("$ {c}")),
            StepKind::Manual(Some(i)) => Some(i.clone()),
            StepKind::Http(h) => {
                let st: Vec<String> = h.expect_status.iter().map(u16::to_string).collect();
                Some(format!("{} {} → expect {}", h.method, h.url, st.join("/")))
            }
            _ => None,
        };
        if let Some(d) = detail {
            for line in d.lines() {
                let _ = writeln!(
                    o,
                    "   {:nw$}  {:kw$}  {line}",
                    "",
                    "",
                    nw = cols.number,
                    kw = cols.kind
                );
            }
        }
    }
}
