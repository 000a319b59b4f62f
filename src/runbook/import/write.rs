//! Writing the TOML: strings escaped as the tool will read them (`${` doubled), ids explicit where
//! deriving them would clash, comments for what a person should check.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::*;

/// A TOML basic string holding `s` as the tool will read it: quotes, backslashes and control
/// characters escaped, and `${` doubled so that it is not read as a variable.
pub(super) fn toml_str(s: &str) -> String {
    let s = s.replace("${", "$${");
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text made safe for a `#` comment line (no control characters).
pub(super) fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect()
}

/// The id the tool derives for a title written as the TOML string `toml_str(title)` holds.
pub(super) fn derived_step_id(title: &str) -> String {
    let raw = title.replace("${", "$${");
    derive_id(&raw.replace("${", "").replace('}', ""))
}

/// A short id from a title: derived, cut at a word boundary, never empty.
pub(super) fn short_id(title: &str, max: usize, fallback: &str) -> String {
    let mut id = derive_id(title);
    if id.len() > max {
        let cut = id[..=max].rfind('-').filter(|&i| i > 0).unwrap_or(max);
        id.truncate(cut);
        while id.ends_with('-') {
            id.pop();
        }
    }
    if id.is_empty() { fallback.to_string() } else { id }
}

pub(super) fn unique(base: &str, used: &mut HashSet<String>) -> String {
    let mut id = base.to_string();
    let mut n = 2;
    while used.contains(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    used.insert(id.clone());
    id
}

pub(super) fn banner(o: &mut String, text: &str) {
    let head = format!("# ── {} ", comment_text(text));
    let width = head.chars().count();
    let _ = writeln!(o, "{head}{}", "─".repeat(100usize.saturating_sub(width).max(3)));
}

/// A TOML multi-line basic string holding `s` as the tool will read it (see `toml_str`).
pub(super) fn toml_text(s: &str) -> String {
    let s = s.replace("${", "$${");
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str("\"\"\"\n");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push_str("\"\"\"");
    out
}

/// A TOML string for a command, written as it is (`run` is not read for `${…}`).
pub(super) fn toml_command(cmd: &str) -> String {
    if !cmd.contains(['\'', '\n']) && !cmd.chars().any(char::is_control) {
        return format!("'{cmd}'");
    }
    let mut out = String::from("\"");
    for c in cmd.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(super) fn render(source: &str, doc: &Doc) -> String {
    let mut used_phase_ids: HashSet<String> = HashSet::new();
    let mut body = String::new();
    let mut hints = 0usize;

    let _ = writeln!(body, "[runbook]\ntitle = {}", toml_str(&doc.title));
    if let Some(d) = &doc.description {
        let _ = writeln!(body, "description = {}", toml_str(d));
    }

    let mut used_trigger_ids: HashSet<String> = HashSet::new();
    let mut trigger_count = 0;
    for group in &doc.triggers {
        body.push('\n');
        banner(&mut body, &group.heading);
        for title in &group.titles {
            trigger_count += 1;
            body.push('\n');
            if let Some(h) = trigger_hint(title) {
                hints += 1;
                let _ = writeln!(body, "# {h}");
            }
            let id = unique(
                &short_id(&measured(title), MAX_TRIGGER_ID, "trigger"),
                &mut used_trigger_ids,
            );
            let _ = writeln!(
                body,
                "[[trigger]]\nid = {}\ntitle = {}",
                toml_str(&id),
                toml_str(title)
            );
        }
    }

    let mut section: Option<&str> = None;
    let mut step_count = 0;
    let mut phase_count = 0;
    for (i, p) in doc.forward().enumerate() {
        phase_count += 1;
        body.push('\n');
        if p.section.as_deref() != section || (i == 0 && p.section.is_some()) {
            section = p.section.as_deref();
            if let Some(s) = section {
                banner(&mut body, s);
                body.push('\n');
            }
        }
        let id = unique(&short_id(&p.title, MAX_PHASE_ID, "phase"), &mut used_phase_ids);
        let _ = writeln!(
            body,
            "[[phase]]\nid = {}\ntitle = {}",
            toml_str(&id),
            toml_str(&p.title)
        );
        if let Some(s) = &p.section {
            let _ = writeln!(body, "section = {}", toml_str(s));
        }
        step_count += p.steps.len();
        hints += steps(&mut body, p, "phase.step");
    }

    let mut rollback_steps = 0;
    let rollback_phases = doc.rollback().count();
    if let (Some(title), true) = (&doc.rollback_title, rollback_phases > 0) {
        body.push('\n');
        banner(&mut body, title);
        let _ = writeln!(body, "\n[rollback]\ntitle = {}", toml_str(title));
        for p in doc.rollback() {
            let id = unique(&short_id(&p.title, MAX_PHASE_ID, "rollback"), &mut used_phase_ids);
            let _ = writeln!(
                body,
                "\n[[rollback.phase]]\nid = {}\ntitle = {}",
                toml_str(&id),
                toml_str(&p.title)
            );
            rollback_steps += p.steps.len();
            hints += steps(&mut body, p, "rollback.phase.step");
        }
    }

    let mut o = String::new();
    let src = comment_text(source);
    let _ = writeln!(
        o,
        "# Generated by `runbook import` from {src}; review before use."
    );
    let _ = writeln!(o, "#");
    o.push_str(
        "# Every checklist item and procedure step is a manual step in its own words; what the item\n\
         # says (its commands, sub-items, notes) is its instruction. `# automate:` marks what the\n\
         # text itself says a machine could do: replace `manual` with the run or watch it suggests\n\
         # (see the runbook format in README.md).",
    );
    if trigger_count > 0 {
        o.push_str(" The triggers are raised by the operator until they get a\n# `metric` or a `check`.");
    }
    if doc.rollback_only {
        o.push_str("\n# The checklist is a rollback playbook: it is imported as the procedure to run.");
    }
    o.push('\n');
    let _ = writeln!(o, "#");
    let mut summary = format!(
        "# {step_count} step{} in {phase_count} phase{}",
        plural(step_count),
        plural(phase_count)
    );
    if trigger_count > 0 {
        let _ = write!(summary, ", {trigger_count} trigger{}", plural(trigger_count));
    }
    if rollback_phases > 0 && doc.rollback_title.is_some() {
        let _ = write!(
            summary,
            ", rollback in {rollback_phases} phase{} ({rollback_steps} step{})",
            plural(rollback_phases),
            plural(rollback_steps)
        );
    }
    let _ = writeln!(o, "{summary}; {hints} marked `# automate:`.");
    o.push('\n');
    o.push_str(&body);
    o
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Writes a phase's steps; returns how many `# automate:` hints it wrote.
pub(super) fn steps(o: &mut String, p: &PhaseOut, table: &str) -> usize {
    let mut used: HashSet<String> = HashSet::new();
    let mut hints = 0;
    let mut phase_watch = duration_in(&p.title);
    let mut seen: HashSet<&str> = HashSet::new();
    for (number, step) in p.steps.iter().enumerate() {
        let title = &step.title;
        o.push('\n');
        let derived = derived_step_id(title);
        let explicit = if derived.is_empty() {
            Some(unique(&format!("step-{}", number + 1), &mut used))
        } else if used.contains(&derived) {
            let why = if seen.contains(title.as_str()) {
                "the same words as an earlier item of this phase"
            } else {
                "the id derived from these words is an earlier item's"
            };
            let _ = writeln!(o, "# {why}: an id of its own");
            Some(unique(&derived, &mut used))
        } else {
            used.insert(derived);
            None
        };
        seen.insert(title);
        if let Some(cmd) = &step.command {
            hints += 1;
            let _ = writeln!(
                o,
                "# automate: this item is one shell command (see the runbook format in README.md); to run\n\
                 # it, replace `manual` with:\n\
                 # run = {}",
                comment_text(&toml_command(cmd))
            );
        } else if let Some(h) = step_hint(title, &mut phase_watch) {
            hints += 1;
            let _ = writeln!(o, "# {h}");
        }
        let _ = writeln!(o, "[[{table}]]");
        if let Some(id) = explicit {
            let _ = writeln!(o, "id = {}", toml_str(&id));
        }
        let _ = writeln!(o, "title = {}", toml_str(title));
        let text = step.instruction.join("\n\n");
        if text.trim().is_empty() {
            let _ = writeln!(o, "manual = true");
        } else {
            let _ = writeln!(o, "manual = {}", toml_text(&text));
        }
    }
    hints
}
