//! An item's words as a step's instruction text (its nested blocks, lists and tables as lines),
//! the one shell command a step may be, and how a block is named in a notice.

use super::*;

/// Code blocks in these languages are shell commands.
pub(super) fn is_shell(lang: &str) -> bool {
    matches!(
        lang,
        "" | "sh" | "bash" | "shell" | "console" | "zsh" | "shell-session" | "terminal" | "ksh"
    )
}

/// The one command of a code block, when it holds exactly one (comments and blank lines aside;
/// a `$ ` prompt dropped, `\` continuations joined).
pub(super) fn one_command_in(code: &str) -> Option<String> {
    let mut logical: Vec<String> = Vec::new();
    let mut continued = false;
    for line in code.lines() {
        let t = line.trim();
        if t.is_empty() || (t.starts_with('#') && !continued) {
            continue;
        }
        let t = t.strip_prefix("$ ").unwrap_or(t);
        if continued {
            let last = logical.last_mut().expect("a line to continue");
            last.push('\n');
            last.push_str(line);
        } else {
            logical.push(t.to_string());
        }
        continued = t.ends_with('\\');
    }
    (logical.len() == 1).then(|| logical.remove(0))
}

/// "`git push --tags`" → the command, when the words are exactly one code span that reads as a
/// command (not a file name such as `CHANGELOG.md`).
pub(super) fn command_span(text: &str) -> Option<String> {
    let t = text.trim().trim_end_matches([':', '.']).trim();
    let inner = t.strip_prefix('`')?.strip_suffix('`')?;
    if inner.contains('`') || inner.trim().is_empty() {
        return None;
    }
    let inner = inner.trim();
    let first = inner.split_whitespace().next().unwrap_or("");
    let wordlike = first
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    (wordlike && (inner.contains(' ') || first.starts_with("./"))).then(|| inner.to_string())
}

/// The command a step is, when its words and nested blocks hold exactly one.
pub(super) fn one_command(text: &str, blocks: &[Block]) -> Option<String> {
    let codes: Vec<(&str, &str)> = blocks
        .iter()
        .filter_map(|b| match b {
            Block::Code { text, lang, .. } => Some((text.as_str(), lang.as_str())),
            _ => None,
        })
        .collect();
    let mut nested = Vec::new();
    all_items(blocks, &mut nested);
    if nested.iter().any(|i| i.text.contains('`')) {
        return None;
    }
    match codes.as_slice() {
        [] => command_span(text),
        [(code, lang)] if is_shell(lang) && !text.contains('`') => one_command_in(code),
        _ => None,
    }
}

pub(super) fn code_chunk(text: &str) -> String {
    text.trim_end_matches('\n').to_string()
}

pub(super) fn table_lines(rows: &[Vec<String>]) -> String {
    rows.iter().map(|r| r.join(" | ")).collect::<Vec<_>>().join("\n")
}

/// An item as instruction text: `- words`, its nested blocks indented below it.
pub(super) fn item_lines(item: &Item, depth: usize, out: &mut Vec<String>) {
    let indent = "  ".repeat(depth);
    let mark = match item.checked {
        Some(true) => "[x] ",
        Some(false) => "[ ] ",
        None => "",
    };
    out.push(format!("{indent}- {mark}{}", item.text));
    for c in &item.comments {
        out.push(format!("{indent}  (note: {c})"));
    }
    for b in &item.blocks {
        block_lines(b, depth + 1, out);
    }
}

pub(super) fn block_lines(b: &Block, depth: usize, out: &mut Vec<String>) {
    let indent = "  ".repeat(depth);
    match b {
        Block::List { items } => {
            for i in items {
                item_lines(i, depth, out);
            }
        }
        Block::Para { text, comments, .. } => {
            if !text.is_empty() {
                out.push(format!("{indent}{text}"));
            }
            for c in comments {
                out.push(format!("{indent}(note: {c})"));
            }
        }
        Block::Heading { text, .. } => out.push(format!("{indent}{text}")),
        Block::Code { text, .. } => {
            for l in code_chunk(text).lines() {
                out.push(format!("{indent}{l}"));
            }
        }
        Block::Table { rows, .. } => {
            for l in table_lines(rows).lines() {
                out.push(format!("{indent}{l}"));
            }
        }
        Block::Html { text, .. } => {
            let mut notes = Vec::new();
            push_comment(&mut notes, text);
            for n in notes {
                out.push(format!("{indent}(note: {n})"));
            }
        }
        Block::FrontMatter { .. } => {}
    }
}

/// A block as one chunk of instruction text.
pub(super) fn chunk(b: &Block) -> String {
    let mut lines = Vec::new();
    block_lines(b, 0, &mut lines);
    lines.join("\n")
}

pub(super) fn snippet(text: &str) -> String {
    let one = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 60 {
        let cut: String = one.chars().take(57).collect();
        format!("\"{}…\"", cut.trim_end())
    } else {
        format!("\"{one}\"")
    }
}

pub(super) fn block_kind(b: &Block) -> &'static str {
    match b {
        Block::Heading { .. } => "heading",
        Block::Para { .. } => "paragraph",
        Block::Code { .. } => "code block",
        Block::List { .. } => "list",
        Block::Table { .. } => "table",
        Block::Html { .. } => "HTML",
        Block::FrontMatter { .. } => "front matter",
    }
}

pub(super) fn block_words(b: &Block) -> String {
    match b {
        Block::List { items } => items.first().map(|i| i.text.clone()).unwrap_or_default(),
        Block::Table { rows, .. } => rows.first().map(|r| r.join(" | ")).unwrap_or_default(),
        other => chunk(other),
    }
}
