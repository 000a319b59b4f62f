//! The `Report` as Markdown: a header of facts, then phases, steps (with the last lines of every
//! failed attempt's log), the rollback, notes, the timeline of triggers and decisions, and the
//! metrics. Values are shown in their metric's unit (`1.6 %`, `155 ms`) where the journal's plan
//! snapshot gives it, else as sampled.

use std::fmt::Write as _;

use super::cells::{cell, clock, code, human_ms, longest_run, or_dash, titled, value, value_or_dash};
use super::{Report, StepRow, TimelineRow};

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut m = String::with_capacity(4096 + 160 * (r.steps.len() + r.triggers.len() + r.notes.len()));
    let day = r
        .start
        .as_deref()
        .map(|s| s.get(..10).unwrap_or(""))
        .unwrap_or("");
    let title = r.runbook.title.as_deref().unwrap_or("(unknown runbook)");
    let rehearsal = r.runbook.mode.as_deref() == Some("rehearse");
    let kind = if rehearsal {
        "Rehearsal report"
    } else {
        "Run report"
    };
    let _ = writeln!(m, "# {kind}: {}\n", title.replace(['\n', '\r'], " "));

    let id = r.runbook.id.as_deref().map(code).unwrap_or_else(|| "—".into());
    let _ = writeln!(m, "- **Runbook:** {} ({id})", cell(title));
    let _ = writeln!(
        m,
        "- **File:** {}",
        r.runbook.file.as_deref().map(code).unwrap_or("—".into())
    );
    let _ = writeln!(
        m,
        "- **SHA-256:** {}",
        r.runbook.sha256.as_deref().map(code).unwrap_or("—".into())
    );
    if let Some(mode) = &r.runbook.mode {
        let _ = writeln!(m, "- **Mode:** {}", cell(mode));
    }
    if !r.runbook.vars.is_empty() {
        let vars: Vec<String> = r
            .runbook
            .vars
            .iter()
            .map(|(k, v)| code(&format!("{k}={v}")))
            .collect();
        let _ = writeln!(m, "- **Variables:** {}", vars.join(", "));
    }
    let people = if r.operators.is_empty() {
        "—".to_string()
    } else {
        r.operators.iter().map(|o| cell(o)).collect::<Vec<_>>().join(", ")
    };
    let _ = writeln!(m, "- **Operators:** {people}");
    let hosts = if r.hosts.is_empty() {
        "—".to_string()
    } else {
        r.hosts.iter().map(|h| cell(h)).collect::<Vec<_>>().join(", ")
    };
    let _ = writeln!(
        m,
        "- **Host{}:** {hosts}",
        if r.hosts.len() > 1 { "s" } else { "" }
    );
    let _ = writeln!(m, "- **Start:** {}", or_dash(r.start.as_deref()));
    if r.outcome.finished {
        let _ = writeln!(m, "- **End:** {}", or_dash(r.end.as_deref()));
    } else if let Some(e) = &r.outcome.last_event {
        let _ = writeln!(
            m,
            "- **Last event:** {} (`{}`: {})",
            cell(&e.ts),
            e.event,
            cell(&e.summary)
        );
    }
    let across = if r.sessions.len() > 1 {
        format!(" (across {} sessions)", r.sessions.len())
    } else {
        String::new()
    };
    let _ = writeln!(
        m,
        "- **Duration:** {}{across}",
        r.duration_ms.map(human_ms).unwrap_or("—".into())
    );
    if r.outcome.finished {
        let why = r
            .outcome
            .reason
            .as_deref()
            .map(|w| format!(": {}", cell(w)))
            .unwrap_or_default();
        let _ = writeln!(
            m,
            "- **Outcome:** **{}** (exit {}){why}",
            r.outcome.outcome.as_deref().unwrap_or("?"),
            r.outcome.exit_code.map(|c| c.to_string()).unwrap_or("?".into())
        );
    } else {
        let _ = writeln!(
            m,
            "- **Outcome:** **unfinished**: the journal has no `run_finished` after the last `run_started` \
             (the run crashed, was killed, or is still going); `runbook resume` can carry it on"
        );
    }
    for w in &r.warnings {
        let _ = writeln!(m, "\n> **Note:** {}", cell(w));
    }

    // Sessions
    let _ = writeln!(m, "\n## Sessions\n");
    if r.sessions.is_empty() {
        let _ = writeln!(m, "No `run_started` in the journal.");
    } else {
        let _ = writeln!(m, "| # | Start | Mode | Operator@host | End | Outcome |");
        let _ = writeln!(m, "|---|---|---|---|---|---|");
        for (i, s) in r.sessions.iter().enumerate() {
            let outcome = match (&s.outcome, s.exit_code) {
                (Some(o), Some(c)) => {
                    let why = s
                        .reason
                        .as_deref()
                        .map(|w| format!(": {}", cell(w)))
                        .unwrap_or_default();
                    format!("{o} (exit {c}){why}")
                }
                _ if i + 1 == r.sessions.len() && !r.outcome.finished => "unfinished".into(),
                _ => "ended without run_finished".into(),
            };
            let _ = writeln!(
                m,
                "| {} | {} | {} | {}@{} | {} | {} |",
                i + 1,
                cell(&s.start),
                cell(&s.mode),
                cell(&s.operator),
                cell(&s.host),
                or_dash(s.end.as_deref()),
                outcome
            );
        }
    }

    // Phases
    let _ = writeln!(m, "\n## Phases\n");
    if r.phases.is_empty() {
        let _ = writeln!(m, "No phase started.");
    } else {
        let _ = writeln!(m, "| Phase | Status | Steps run | Start (UTC) | Duration |");
        let _ = writeln!(m, "|---|---|---|---|---|");
        for p in &r.phases {
            let name = titled(p.title.as_deref(), &p.id);
            let name = if p.rollback {
                format!("Rollback: {name}")
            } else {
                name
            };
            let status = if p.status == "succeeded" {
                p.status.clone()
            } else {
                format!("**{}**", p.status)
            };
            let _ = writeln!(
                m,
                "| {name} | {status} | {} | {} | {} |",
                p.steps,
                p.start.as_deref().map(|t| clock(t, day)).unwrap_or("—".into()),
                p.duration_ms.map(human_ms).unwrap_or("—".into())
            );
        }
    }

    // Steps
    let _ = writeln!(m, "\n## Steps\n");
    if r.steps.is_empty() {
        let _ = writeln!(m, "No step started.");
    } else {
        step_table(&mut m, &r.steps, day);
        failed_attempts(&mut m, &r.steps, day);
    }
    if !r.cancelled_before_start.is_empty() {
        let why = if r.rollback.is_some() {
            "by the rollback "
        } else {
            ""
        };
        let names = cancelled_names(&r.cancelled_before_start, &r.cancelled_titles);
        let _ = writeln!(
            m,
            "\nCancelled {why}before they started ({}): {}",
            names.len(),
            names.join(", ")
        );
    }

    // Rollback
    if let Some(rb) = &r.rollback {
        let _ = writeln!(m, "\n## Rollback\n");
        if let Some(t) = &rb.title {
            let _ = writeln!(m, "- **Procedure:** {}", cell(t));
        }
        let reason = match (&rb.reason_text, &rb.reason) {
            (Some(text), Some(raw)) if text != raw => format!("{} (`{}`)", cell(text), cell(raw)),
            (_, raw) => or_dash(raw.as_deref()),
        };
        let _ = writeln!(m, "- **Reason:** {reason}");
        if let Some(o) = &rb.operator {
            let _ = writeln!(m, "- **Called by:** {}", cell(o));
        }
        if let Some(n) = &rb.note {
            let _ = writeln!(m, "- **In their words:** {}", cell(n));
        }
        let _ = writeln!(m, "- **Started:** {}", or_dash(rb.start.as_deref()));
        let _ = writeln!(m, "- **Finished:** {}", or_dash(rb.end.as_deref()));
        let status = match &rb.status {
            Some(s) => format!("**{}**", cell(s)),
            None => "**unfinished** (no `rollback_finished`)".into(),
        };
        let _ = writeln!(m, "- **Status:** {status}");
        let _ = writeln!(
            m,
            "- **Duration:** {}",
            rb.duration_ms.map(human_ms).unwrap_or("—".into())
        );
        if rb.steps.is_empty() {
            let _ = writeln!(m, "\nNo rollback step started.");
        } else {
            let _ = writeln!(m);
            step_table(&mut m, &rb.steps, day);
            failed_attempts(&mut m, &rb.steps, day);
        }
        if !rb.cancelled_before_start.is_empty() {
            let names = cancelled_names(&rb.cancelled_before_start, &rb.cancelled_titles);
            let _ = writeln!(
                m,
                "\nRollback steps cancelled before they started ({}): {}",
                names.len(),
                names.join(", ")
            );
        }
    }

    // Notes
    let _ = writeln!(m, "\n## Notes\n");
    if r.notes.is_empty() {
        let _ = writeln!(m, "No notes.");
    } else {
        let _ = writeln!(m, "| Time (UTC) | Operator | Note |");
        let _ = writeln!(m, "|---|---|---|");
        for n in &r.notes {
            let _ = writeln!(
                m,
                "| {} | {} | {} |",
                clock(&n.ts, day),
                cell(&n.operator),
                cell(&n.text)
            );
        }
    }

    // Timeline
    let _ = writeln!(m, "\n## Timeline\n");
    if r.timeline.is_empty() {
        let _ = writeln!(m, "No trigger events or decisions.");
    } else {
        timeline(&mut m, r, day);
    }

    // Metrics
    let _ = writeln!(m, "\n## Metrics\n");
    if r.metrics.is_empty() {
        let _ = writeln!(m, "No metrics were sampled.");
    } else {
        if r.metrics.values().any(|s| s.unit.is_none()) {
            let _ = writeln!(
                m,
                "Values without a unit are as sampled (this journal records no units for them).\n"
            );
        }
        let _ = writeln!(
            m,
            "| Metric | Samples | No data | Min | Median | Max | Last | Last error |"
        );
        let _ = writeln!(m, "|---|---|---|---|---|---|---|---|");
        for (id, s) in &r.metrics {
            let u = s.unit.as_deref();
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                titled(s.title.as_deref(), id),
                s.samples,
                s.no_data,
                value_or_dash(s.min, u),
                value_or_dash(s.median, u),
                value_or_dash(s.max, u),
                value_or_dash(s.last, u),
                or_dash(s.last_error.as_deref())
            );
        }
    }

    // Rehearsal
    if let Some(h) = &r.rehearsal {
        let _ = writeln!(m, "\n## Rehearsal\n");
        let _ = writeln!(
            m,
            "- **From the trigger firing to the rollback decision:** {}",
            h.fired_to_decision_ms.map(human_ms).unwrap_or("—".into())
        );
        let _ = writeln!(
            m,
            "- **Rollback procedure:** {}",
            h.rollback_ms.map(human_ms).unwrap_or("—".into())
        );
    }
    m
}

/// Steps named as in the steps table: "Title (`phase/step`)", the id alone without a title.
fn cancelled_names(names: &[String], titles: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    names
        .iter()
        .map(|n| match titles.get(n) {
            Some(t) => titled(Some(t), n),
            None => code(n),
        })
        .collect()
}

fn step_table(m: &mut String, rows: &[StepRow], day: &str) {
    let _ = writeln!(
        m,
        "| Phase | Step | Status | Attempts | Start (UTC) | Duration | By | Reason | Exit | Error |"
    );
    let _ = writeln!(m, "|---|---|---|---|---|---|---|---|---|---|");
    for s in rows {
        let exit = match (s.exit_code, s.http_status) {
            (Some(c), Some(h)) => format!("{c} / HTTP {h}"),
            (Some(c), None) => c.to_string(),
            (None, Some(h)) => format!("HTTP {h}"),
            (None, None) => "—".into(),
        };
        // What went wrong stands out.
        let status = if matches!(s.status.as_str(), "succeeded" | "confirmed" | "skipped") {
            s.status.clone()
        } else {
            format!("**{}**", s.status)
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(s.phase_title.as_deref().unwrap_or(&s.phase)),
            match &s.title {
                // The id with its phase: what `--var`-free scripts and `approve` name.
                Some(t) => format!("{} (`{}/{}`)", cell(t), cell(&s.phase), cell(&s.step)),
                None => cell(&s.step),
            },
            status,
            attempts(s),
            s.start.as_deref().map(|t| clock(t, day)).unwrap_or("—".into()),
            if s.history.is_empty() {
                "—".into()
            } else {
                human_ms(s.duration_ms)
            },
            or_dash(s.by.as_deref()),
            or_dash(s.reason.as_deref()),
            exit,
            or_dash(s.error.as_deref())
        );
    }
}

/// Every failed attempt of these steps: when, how, its log, and the log's last lines.
fn failed_attempts(m: &mut String, rows: &[StepRow], day: &str) {
    let failed: Vec<(&StepRow, &super::AttemptRow)> = rows
        .iter()
        .flat_map(|s| s.history.iter().filter(|a| a.failed()).map(move |a| (s, a)))
        .collect();
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(m, "\n### Failed attempts");
    for (s, a) in failed {
        let name = match &s.title {
            Some(t) => format!("{} (`{}/{}`)", cell(t), s.phase, s.step),
            None => format!("`{}/{}`", s.phase, s.step),
        };
        let mut how = vec![a.status.replace('_', " ")];
        if let Some(c) = a.exit_code {
            how.push(format!("exit {c}"));
        }
        if let Some(h) = a.http_status {
            how.push(format!("HTTP {h}"));
        }
        if let Some(e) = &a.error {
            how.push(cell(e));
        }
        let _ = writeln!(
            m,
            "\n- {name}, attempt {}, at {} after {}: {}",
            a.attempt,
            clock(&a.ts, day),
            human_ms(a.duration_ms),
            how.join(", ")
        );
        match &a.log {
            Some(log) if a.log_tail.is_empty() => {
                let _ = writeln!(m, "  - log: {} (empty)", code(log));
            }
            Some(log) => {
                let _ = writeln!(m, "  - log: {}, its last lines:\n", code(log));
                // A fence longer than any run of backticks in the lines keeps them as text.
                let longest = a.log_tail.iter().map(|l| longest_run(l, '`')).max().unwrap_or(0);
                let fence = "`".repeat(longest.max(2) + 1);
                let _ = writeln!(m, "    {fence}text");
                for line in &a.log_tail {
                    let _ = writeln!(m, "    {line}");
                }
                let _ = writeln!(m, "    {fence}");
            }
            None => {}
        }
    }
}

/// Triggers and decisions, each with the metric values of that moment.
fn timeline(m: &mut String, r: &Report, day: &str) {
    let unit_of = |id: &str| r.metrics.get(id).and_then(|s| s.unit.as_deref());
    let _ = writeln!(
        m,
        "| Time (UTC) | What | Of | Value | By | Details | Metrics then |"
    );
    let _ = writeln!(m, "|---|---|---|---|---|---|---|");
    for t in &r.timeline {
        let of = match &t.subject {
            Some(id) => titled(t.title.as_deref(), id),
            None => "—".into(),
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} |",
            clock(&t.ts, day),
            cell(&t.what),
            of,
            value_or_dash(t.value, t.unit.as_deref()),
            or_dash(t.by.as_deref()),
            or_dash(t.detail.as_deref()),
            metrics_then(t, &unit_of)
        );
    }
}

fn metrics_then<'a>(t: &TimelineRow, unit_of: &impl Fn(&str) -> Option<&'a str>) -> String {
    if t.metrics.is_empty() {
        return "—".into();
    }
    t.metrics
        .iter()
        .map(|(id, v)| match v {
            Some(v) => format!("{} {}", cell(id), value(*v, unit_of(id))),
            None => format!("{} no data", cell(id)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The highest attempt, and what became of the earlier ones when they did not succeed:
/// `2 (1 failed)`.
fn attempts(s: &StepRow) -> String {
    let earlier = &s.history[..s.history.len().saturating_sub(1)];
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for a in earlier {
        let st = match a.status.as_str() {
            "succeeded" | "confirmed" | "skipped" => continue,
            "timed_out" => "timed out",
            other => other,
        };
        match counts.iter_mut().find(|(k, _)| *k == st) {
            Some((_, n)) => *n += 1,
            None => counts.push((st, 1)),
        }
    }
    if counts.is_empty() {
        return s.attempts.to_string();
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    format!("{} ({})", s.attempts, parts.join(", "))
}
