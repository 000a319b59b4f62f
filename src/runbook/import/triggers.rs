//! What a heading announces (a phase, a rollback procedure, rollback triggers, a decision), and a
//! trigger section's conditions.

use super::*;

pub(super) struct TriggersOut {
    pub(super) titles: Vec<String>,
    pub(super) instruction: Vec<String>,
    /// Whether the section says more than its triggers (what not to roll back for, a matrix).
    pub(super) needed: bool,
}

pub(super) fn trigger_section(sec: &Section, leftovers: &mut Vec<(usize, String)>) -> TriggersOut {
    let mut out = TriggersOut {
        titles: Vec::new(),
        instruction: Vec::new(),
        needed: false,
    };
    let blocks = &sec.blocks;
    let own = sec.path.last().cloned().unwrap_or_default();
    with_lead_ins(blocks, |b, label| match b {
        Block::List { items } => {
            let calls = label.as_deref().and_then(calls_for_rollback).unwrap_or(sec.calls);
            let mut lines = vec![label.unwrap_or_else(|| {
                if calls {
                    "Roll back if (the runbook's triggers):".into()
                } else {
                    format!("{own}:")
                }
            })];
            for item in items {
                if is_placeholder(&item.text) {
                    leftovers.push((item.line, format!("placeholder item {}", snippet(&item.text))));
                    continue;
                }
                if calls {
                    out.titles.push(item.text.clone());
                    out.needed |= !item.blocks.is_empty();
                }
                item_lines(item, 0, &mut lines);
            }
            out.needed |= !calls;
            out.instruction.push(lines.join("\n"));
        }
        Block::Html { text, line } => {
            leftovers.push((*line, format!("HTML {}", snippet(text))));
        }
        other => {
            out.needed = true;
            out.instruction.push(chunk(other));
        }
    });
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Kind {
    Normal,
    Triggers,
    Rollback,
}

pub(super) fn mentions_rollback(lower: &str) -> bool {
    [
        "rollback",
        "roll back",
        "roll-back",
        "rolling back",
        "rolled back",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// What a heading is, from its words and its parent's kind.
pub(super) fn classify(text: &str, parent: Kind) -> Kind {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |prefixes: &[&str]| words.iter().any(|w| prefixes.iter().any(|p| w.starts_with(p)));
    let rollback = mentions_rollback(&lower);
    let trigger_words = has(&[
        "trigger",
        "criteria",
        "criterion",
        "condition",
        "signal",
        "decision",
    ]) || lower.contains("when to")
        || words.last() == Some(&"if");
    if trigger_words && (rollback || parent != Kind::Normal) {
        return Kind::Triggers;
    }
    if rollback {
        let procedure = has(&[
            "process",
            "procedure",
            "plan",
            "step",
            "playbook",
            "runbook",
            "instruction",
        ]) || lower.contains("how to");
        let rest: String = ["rollback", "roll back", "roll-back", "rolling back"]
            .iter()
            .fold(lower.clone(), |acc, w| acc.replace(w, ""))
            .chars()
            .filter(|c| c.is_alphabetic())
            .collect();
        if procedure || rest.is_empty() {
            return Kind::Rollback;
        }
    }
    parent
}

/// "1. Monitoring" → "Monitoring"; "2.3 Canary" → "Canary"; "10% of instances" stays.
pub(super) fn strip_numbering(text: &str) -> &str {
    let t = text.trim();
    let b = t.as_bytes();
    let mut i = 0;
    let mut groups = 0;
    loop {
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return t;
        }
        groups += 1;
        match b.get(i) {
            // "2.3": another group follows
            Some(b'.') if b.get(i + 1).is_some_and(u8::is_ascii_digit) => i += 1,
            Some(b'.' | b')') => {
                i += 1;
                break;
            }
            // "2.3 Canary"
            _ if groups > 1 => break,
            _ => return t,
        }
    }
    let rest = &t[i..];
    if rest.starts_with([' ', '\t']) && !rest.trim().is_empty() {
        rest.trim_start()
    } else {
        t
    }
}

pub(super) fn strip_colon(text: &str) -> &str {
    let t = text.trim().trim_end_matches([':', '：']).trim_end();
    if t.is_empty() { text.trim() } else { t }
}

/// "production-rollout-plan.md" → "Production rollout plan".
pub(super) fn title_from_file(source: &str) -> String {
    let stem = Path::new(source)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let words: Vec<&str> = stem
        .split(['-', '_', ' ', '.'])
        .filter(|w| !w.is_empty())
        .collect();
    let joined = words.join(" ");
    let mut chars = joined.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => "Imported checklist".into(),
    }
}
