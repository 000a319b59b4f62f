//! `runbook import CHECKLIST.md`: a Markdown checklist turned into a runbook TOML on stdout.
//!
//! The checklist's shape becomes the runbook's: the `#` title is the runbook title, headings with
//! `- [ ]` items under them are phases (a `##` above a `###` is the phase's section), every item is a
//! manual step in its own words. A "rollback triggers" heading gives one operator-raised trigger per
//! list item; a "rollback process/procedure/plan" heading gives the `[rollback]` procedure, one phase
//! per numbered item with nested items as its steps. Text that is not an item is kept as `# note:`
//! comments, and `# automate:` comments point at the items a machine could do.
//!
//! The output always validates: ids are explicit where deriving them would clash or fail, strings
//! are escaped (including `${`, which the tool would otherwise read as a variable).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use super::parse::derive_id;

/// The largest checklist read; anything bigger is surely not a checklist.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The longest explicit phase id written (cut at a word boundary).
const MAX_PHASE_ID: usize = 40;
/// The longest trigger id written: `plan` lines them up in a 16-wide column.
const MAX_TRIGGER_ID: usize = 16;

/// Entry point of the `import` command; returns the exit status.
pub fn main(checklist: &Path) -> i32 {
    let file = checklist.display().to_string();
    let text = match read(checklist) {
        Ok(t) => t,
        Err(message) => {
            crate::say!("runbook: {file}: {message}");
            return 2;
        }
    };
    let name = checklist
        .file_name()
        .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
    let toml = match convert(&name, &text) {
        Ok(t) => t,
        Err(message) => {
            crate::say!("runbook: {file}: {message}");
            return 2;
        }
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(toml.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        // `runbook import x.md | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            crate::say!("runbook: cannot write the runbook to stdout: {e}");
            2
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    let bytes = super::read_regular_file(path, MAX_FILE_BYTES).map_err(|e| match e {
        super::ReadError::Folder => {
            "is a folder, not a Markdown checklist (give the .md file inside it)".to_string()
        }
        super::ReadError::TooLarge { limit } => format!(
            "is larger than {0}; a checklist may be at most {0}",
            super::size_text(limit)
        ),
        other => other.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        format!("is not a text file (invalid UTF-8 at byte {at}); import reads a Markdown checklist")
    })
}

/// Turns the Markdown `text` of the checklist called `source` into runbook TOML, or says why not.
pub fn convert(source: &str, text: &str) -> Result<String, String> {
    let lines = lex(text);
    let doc = build(source, &lines)?;
    Ok(render(source, &doc))
}

// ── Markdown, line by line ──────────────────────────────────────────────────────────────────────

#[derive(Debug, Clone, PartialEq)]
enum Line {
    Blank,
    Heading {
        level: usize,
        text: String,
    },
    /// A list item; `checkbox` for `- [ ]` and `- [x]`. Continuation lines are joined into `text`.
    Item {
        indent: usize,
        marker: String,
        checkbox: bool,
        text: String,
    },
    Text {
        indent: usize,
        text: String,
    },
    /// A line inside a fenced code block.
    Code(String),
}

/// Leading whitespace as a column (tabs to the next multiple of 4) and the rest of the line.
fn indent_of(line: &str) -> (usize, &str) {
    let mut col = 0;
    for (i, c) in line.char_indices() {
        match c {
            ' ' => col += 1,
            '\t' => col += 4 - col % 4,
            _ => return (col, &line[i..]),
        }
    }
    (col, "")
}

fn lex(text: &str) -> Vec<Line> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out: Vec<Line> = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let mut in_comment = false;
    // Whether the previous line was part of a list item's paragraph (for continuation lines).
    let mut in_item = false;
    for raw in text.split('\n') {
        let (indent, rest) = indent_of(raw);
        let rest = rest.trim_end();
        if let Some((ch, len)) = fence {
            let closes = rest.chars().count() >= len && rest.chars().all(|c| c == ch);
            if closes {
                fence = None;
            } else if !raw.trim().is_empty() {
                out.push(Line::Code(raw.trim_end().to_string()));
            }
            continue;
        }
        if in_comment {
            if rest.contains("-->") {
                in_comment = false;
            }
            continue;
        }
        if rest.is_empty() {
            out.push(Line::Blank);
            in_item = false;
            continue;
        }
        if rest.starts_with("<!--") {
            if !rest.contains("-->") {
                in_comment = true;
            }
            continue;
        }
        // A code fence, at any indent (fences inside list items are indented).
        let ch = rest.chars().next().unwrap_or(' ');
        if ch == '`' || ch == '~' {
            let len = rest.chars().take_while(|&c| c == ch).count();
            // "```code```" on one line is inline code, not a fence
            if len >= 3 && !(ch == '`' && rest[len..].contains('`')) {
                fence = Some((ch, len));
                in_item = false;
                continue;
            }
        }
        if indent <= 3 {
            if let Some(h) = atx_heading(rest) {
                out.push(h);
                in_item = false;
                continue;
            }
            // Setext: a paragraph line underlined with === (level 1) or --- (level 2).
            let underline = rest.chars().all(|c| c == '=') || rest.chars().all(|c| c == '-');
            if underline && let Some(Line::Text { indent: 0..=3, text }) = out.last() {
                let level = if rest.starts_with('=') { 1 } else { 2 };
                let text = text.clone();
                out.pop();
                out.push(Line::Heading { level, text });
                in_item = false;
                continue;
            }
            if is_thematic_break(rest) {
                out.push(Line::Blank);
                in_item = false;
                continue;
            }
        }
        if let Some((marker, after)) = list_marker(rest) {
            let (checkbox, body) = checkbox(after);
            out.push(Line::Item {
                indent,
                marker: marker.to_string(),
                checkbox,
                text: body.trim().to_string(),
            });
            in_item = true;
            continue;
        }
        if in_item && let Some(Line::Item { text, .. }) = out.last_mut() {
            // A continuation of the item's words (indented or lazy).
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(rest.trim());
            continue;
        }
        out.push(Line::Text {
            indent,
            text: rest.trim().to_string(),
        });
    }
    out
}

fn atx_heading(rest: &str) -> Option<Line> {
    let level = rest.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let after = &rest[level..];
    if !(after.is_empty() || after.starts_with(' ') || after.starts_with('\t')) {
        return None;
    }
    let mut text = after.trim();
    // A closing sequence of #s, when it stands apart.
    let trimmed = text.trim_end_matches('#');
    if trimmed.is_empty() || trimmed.ends_with(' ') || trimmed.ends_with('\t') {
        text = trimmed.trim_end();
    }
    Some(Line::Heading {
        level,
        text: text.to_string(),
    })
}

fn is_thematic_break(rest: &str) -> bool {
    let Some(ch) = rest.chars().next() else {
        return false;
    };
    matches!(ch, '-' | '*' | '_')
        && rest.chars().filter(|&c| c == ch).count() >= 3
        && rest.chars().all(|c| c == ch || c == ' ' || c == '\t')
}

/// `- `, `* `, `+ `, `1. ` or `1) `: the marker and what follows it.
fn list_marker(rest: &str) -> Option<(&str, &str)> {
    let spaced = |after: &str| after.is_empty() || after.starts_with(' ') || after.starts_with('\t');
    let first = rest.chars().next()?;
    if matches!(first, '-' | '*' | '+') {
        let after = &rest[1..];
        return spaced(after).then_some((&rest[..1], after));
    }
    let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
    if (1..=9).contains(&digits) {
        let after = &rest[digits..];
        if (after.starts_with('.') || after.starts_with(')')) && spaced(&after[1..]) {
            return Some((&rest[..digits + 1], &after[1..]));
        }
    }
    None
}

/// `[ ] words` or `[x] words` → (true, "words"); otherwise (false, everything).
fn checkbox(after: &str) -> (bool, &str) {
    let t = after.trim_start();
    for pat in ["[ ]", "[x]", "[X]"] {
        if let Some(body) = t.strip_prefix(pat)
            && (body.is_empty() || body.starts_with(' ') || body.starts_with('\t'))
        {
            return (true, body);
        }
    }
    (false, after)
}

// ── The runbook's shape ─────────────────────────────────────────────────────────────────────────

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Normal,
    Triggers,
    Rollback,
}

fn mentions_rollback(lower: &str) -> bool {
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
fn classify(text: &str, parent: Kind) -> Kind {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |prefixes: &[&str]| words.iter().any(|w| prefixes.iter().any(|p| w.starts_with(p)));
    let rollback = mentions_rollback(&lower);
    let trigger_words = has(&["trigger", "criteria", "criterion", "condition", "signal"])
        || lower.contains("when to")
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
fn strip_numbering(text: &str) -> &str {
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

fn strip_colon(text: &str) -> &str {
    let t = text.trim().trim_end_matches([':', '：']).trim_end();
    if t.is_empty() { text.trim() } else { t }
}

#[derive(Debug, Clone, PartialEq)]
enum Entry {
    Note(String),
    Item(String),
}

#[derive(Debug)]
struct PhaseOut {
    title: String,
    section: Option<String>,
    entries: Vec<Entry>,
}

impl PhaseOut {
    fn items(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::Item(_)))
            .count()
    }
}

#[derive(Debug)]
struct TriggerGroup {
    heading: String,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Doc {
    title: String,
    description: Option<String>,
    triggers: Vec<TriggerGroup>,
    phases: Vec<PhaseOut>,
    rollback_title: Option<String>,
    rollback: Vec<PhaseOut>,
}

/// The lines under one heading (or under none), with where that heading sits.
struct Block<'l> {
    kind: Kind,
    /// The heading texts from the outermost one (below the title) down to this block's own.
    path: Vec<String>,
    lines: Vec<&'l Line>,
}

fn build(source: &str, lines: &[Line]) -> Result<Doc, String> {
    let h1s = lines
        .iter()
        .filter(|l| matches!(l, Line::Heading { level: 1, .. }))
        .count();
    let mut title: Option<String> = None;
    let mut blocks: Vec<Block> = vec![Block {
        kind: Kind::Normal,
        path: Vec::new(),
        lines: Vec::new(),
    }];
    let mut stack: Vec<(usize, String, Kind)> = Vec::new();
    // The block right under the title, whose first paragraph describes the runbook.
    let mut under_title: Option<usize> = None;
    for line in lines {
        let Line::Heading { level, text } = line else {
            blocks.last_mut().expect("a block").lines.push(line);
            continue;
        };
        if *level == 1 && h1s == 1 && title.is_none() && !text.is_empty() {
            title = Some(text.clone());
            stack.clear();
            under_title = Some(blocks.len());
            blocks.push(Block {
                kind: Kind::Normal,
                path: Vec::new(),
                lines: Vec::new(),
            });
            continue;
        }
        while stack.last().is_some_and(|(l, _, _)| l >= level) {
            stack.pop();
        }
        let parent = stack.last().map_or(Kind::Normal, |(_, _, k)| *k);
        let text = strip_colon(strip_numbering(text)).to_string();
        let kind = classify(&text, parent);
        stack.push((*level, text, kind));
        blocks.push(Block {
            kind,
            path: stack
                .iter()
                .map(|(_, t, _)| t.clone())
                .filter(|t| !t.is_empty())
                .collect(),
            lines: Vec::new(),
        });
    }
    let title = title.unwrap_or_else(|| title_from_file(source));

    // Sections only when the checklist nests headings (a `##` above a `###`).
    let nested = blocks
        .iter()
        .any(|b| b.kind == Kind::Normal && b.path.len() >= 2 && b.lines.iter().any(|l| is_checkbox(l)));

    let mut doc = Doc {
        title: title.clone(),
        description: None,
        triggers: Vec::new(),
        phases: Vec::new(),
        rollback_title: None,
        rollback: Vec::new(),
    };
    let mut checkboxes = 0;
    for (i, block) in blocks.iter().enumerate() {
        checkboxes += block.lines.iter().filter(|l| is_checkbox(l)).count();
        let own = block.path.last().cloned();
        match block.kind {
            Kind::Normal => {
                let mut lines: &[&Line] = &block.lines;
                // The first paragraph under the title, before any item, describes the runbook.
                if under_title == Some(i) {
                    let para: Vec<&str> = lines
                        .iter()
                        .skip_while(|l| matches!(l, Line::Blank))
                        .map_while(|l| match l {
                            Line::Text { text, .. } => Some(text.as_str()),
                            _ => None,
                        })
                        .collect();
                    if !para.is_empty() {
                        doc.description = Some(para.join(" "));
                        let skip = lines.iter().take_while(|l| matches!(l, Line::Blank)).count() + para.len();
                        lines = &lines[skip..];
                    }
                }
                let entries = normal_entries(lines);
                if entries.iter().any(|e| matches!(e, Entry::Item(_))) {
                    let (phase_title, section) = match block.path.as_slice() {
                        [] => (title.clone(), None),
                        [only] => (only.clone(), nested.then(|| only.clone())),
                        [outer, rest @ ..] => (rest.join(" / "), Some(outer.clone())),
                    };
                    doc.phases.push(PhaseOut {
                        title: strip_colon(&phase_title).to_string(),
                        section,
                        entries,
                    });
                }
            }
            Kind::Triggers => {
                let entries = trigger_entries(&block.lines);
                if entries.iter().any(|e| matches!(e, Entry::Item(_))) {
                    doc.triggers.push(TriggerGroup {
                        heading: own.unwrap_or_default(),
                        entries,
                    });
                }
            }
            Kind::Rollback => {
                let heading = strip_colon(own.as_deref().unwrap_or("Rollback")).to_string();
                // A heading that is part of the procedure only by being under it ("### Database")
                // names the phases made from its numbered items.
                let prefix = own
                    .as_deref()
                    .is_some_and(|t| classify(t, Kind::Normal) != Kind::Rollback)
                    .then_some(heading.as_str());
                let phases = rollback_phases(&block.lines, &heading, prefix);
                if !phases.is_empty() && doc.rollback_title.is_none() {
                    // The outermost rollback heading names the procedure.
                    let outer = block
                        .path
                        .iter()
                        .find(|t| classify(t, Kind::Normal) == Kind::Rollback)
                        .cloned()
                        .unwrap_or(heading.clone());
                    doc.rollback_title = Some(strip_colon(&outer).to_string());
                }
                doc.rollback.extend(phases);
            }
        }
    }
    if doc.phases.is_empty() {
        return Err(if checkboxes == 0 {
            "no checklist items found: import turns `- [ ]` items (also `* [ ]` and `- [x]`) under \
             headings into steps, and this file has none"
                .into()
        } else {
            "every checklist item is under a rollback heading; a runbook needs at least one forward \
             phase (`- [ ]` items under another heading)"
                .into()
        });
    }
    Ok(doc)
}

/// A `- [ ]` item with words.
fn is_checkbox(l: &Line) -> bool {
    matches!(l, Line::Item { checkbox: true, text, .. } if !text.is_empty())
}

fn note_of(l: &Line) -> Option<String> {
    match l {
        Line::Item { marker, text, .. } => Some(format!("{marker} {text}")),
        Line::Text { text, .. } => Some(text.clone()),
        Line::Code(text) => Some(format!("    {text}")),
        Line::Blank | Line::Heading { .. } => None,
    }
}

/// A forward heading's lines: checkbox items are steps, anything else is kept as a note.
fn normal_entries(lines: &[&Line]) -> Vec<Entry> {
    let mut out = Vec::new();
    for l in lines {
        match l {
            Line::Item {
                checkbox: true, text, ..
            } => {
                if !text.is_empty() {
                    out.push(Entry::Item(text.clone()));
                }
            }
            other => out.extend(note_of(other).map(Entry::Note)),
        }
    }
    out
}

/// A rollback-triggers heading's lines: every list item is a trigger.
fn trigger_entries(lines: &[&Line]) -> Vec<Entry> {
    let mut out = Vec::new();
    for l in lines {
        match l {
            Line::Item { text, .. } => {
                if !text.is_empty() {
                    out.push(Entry::Item(text.clone()));
                }
            }
            other => out.extend(note_of(other).map(Entry::Note)),
        }
    }
    out
}

/// A rollback procedure's lines: a top-level item with nested items is a phase of its own (titled
/// `prefix / item` when there is a prefix), the nested items its steps; top-level items without
/// nested ones are steps of a phase named after the heading.
fn rollback_phases(lines: &[&Line], heading: &str, prefix: Option<&str>) -> Vec<PhaseOut> {
    struct Top {
        text: String,
        children: Vec<Entry>,
    }
    enum Node {
        Top(Top),
        Note(String),
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut top_indent: Option<usize> = None;
    for l in lines {
        match l {
            Line::Item { indent, text, .. } => {
                let nested = top_indent.is_some_and(|t| *indent > t);
                if nested && let Some(Node::Top(top)) = nodes.last_mut() {
                    if !text.is_empty() {
                        top.children.push(Entry::Item(text.clone()));
                    }
                    continue;
                }
                top_indent = Some(*indent);
                nodes.push(Node::Top(Top {
                    text: text.clone(),
                    children: Vec::new(),
                }));
            }
            Line::Blank | Line::Heading { .. } => {}
            Line::Text { indent, .. } => {
                let note = note_of(l).unwrap_or_default();
                let inside = top_indent.is_some_and(|t| *indent > t);
                if inside && let Some(Node::Top(top)) = nodes.last_mut() {
                    top.children.push(Entry::Note(note));
                } else {
                    top_indent = None;
                    nodes.push(Node::Note(note));
                }
            }
            Line::Code(_) => {
                let note = note_of(l).unwrap_or_default();
                match nodes.last_mut() {
                    Some(Node::Top(top)) => top.children.push(Entry::Note(note)),
                    _ => nodes.push(Node::Note(note)),
                }
            }
        }
    }

    let mut phases: Vec<PhaseOut> = Vec::new();
    // Whether the last phase is the heading-named one that collects childless items.
    let mut collecting = false;
    let mut pending: Vec<Entry> = Vec::new();
    for node in nodes {
        match node {
            Node::Note(n) => pending.push(Entry::Note(n)),
            Node::Top(top) if top.children.iter().any(|e| matches!(e, Entry::Item(_))) => {
                let mut entries = std::mem::take(&mut pending);
                entries.extend(top.children);
                let title = match strip_colon(&top.text) {
                    "" => heading,
                    t => t,
                };
                phases.push(PhaseOut {
                    title: match prefix {
                        Some(p) => format!("{p} / {title}"),
                        None => title.to_string(),
                    },
                    section: None,
                    entries,
                });
                collecting = false;
            }
            Node::Top(top) => {
                if !collecting {
                    phases.push(PhaseOut {
                        title: heading.to_string(),
                        section: None,
                        entries: Vec::new(),
                    });
                    collecting = true;
                }
                let phase = phases.last_mut().expect("just pushed");
                phase.entries.append(&mut pending);
                if !top.text.is_empty() {
                    phase.entries.push(Entry::Item(top.text));
                }
                phase.entries.extend(top.children);
            }
        }
    }
    if let Some(last) = phases.last_mut() {
        last.entries.append(&mut pending);
    }
    phases.retain(|p| p.items() > 0);
    phases
}

/// "production-rollout-plan.md" → "Production rollout plan".
fn title_from_file(source: &str) -> String {
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

// ── Suggestions ─────────────────────────────────────────────────────────────────────────────────

const SEE_FORMAT: &str = "see the runbook format in README.md";

/// Lowercase words of `text`.
fn words_of(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn has_prefix(words: &[String], prefixes: &[&str]) -> bool {
    words.iter().any(|w| prefixes.iter().any(|p| w.starts_with(p)))
}

/// "for 15 minutes" → "15m"; "(24 hours)" → "24h".
fn duration_in(text: &str) -> Option<String> {
    durations_in(text).into_iter().next().map(|(_, d)| d)
}

/// The window of a trigger: the duration after "for" ("exceeds 1% for 5 minutes" → "5m").
fn window_in(text: &str) -> Option<String> {
    let words = words_of(text);
    durations_in(text)
        .into_iter()
        .find(|(i, _)| *i > 0 && matches!(words[*i - 1].as_str(), "for" | "during" | "lasting"))
        .map(|(_, d)| d)
}

/// Every duration written in `text`, with the index (in `words_of`) of its number.
fn durations_in(text: &str) -> Vec<(usize, String)> {
    let words = words_of(text);
    let unit_of = |u: &str| match u {
        "s" | "sec" | "secs" | "second" | "seconds" => Some("s"),
        "m" | "min" | "mins" | "minute" | "minutes" => Some("m"),
        "h" | "hr" | "hrs" | "hour" | "hours" => Some("h"),
        "d" | "day" | "days" => Some("d"),
        _ => None,
    };
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let digits = w.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            continue;
        }
        let (n, rest) = w.split_at(digits);
        let Ok(n) = n.parse::<u64>() else { continue };
        // "15 minutes", or "15m" written together
        let unit = if rest.is_empty() {
            words.get(i + 1).and_then(|u| unit_of(u))
        } else {
            unit_of(rest)
        };
        match unit {
            Some(_) if n == 0 => {}
            Some("d") => out.push((i, format!("{}h", n * 24))),
            Some(u) => out.push((i, format!("{n}{u}"))),
            None => {}
        }
    }
    out
}

fn run_hint(cmd: &str) -> String {
    format!("automate: a run step (e.g. run = \"{cmd}\"); {SEE_FORMAT}")
}

/// The `# automate:` comment for a step, if its words say a machine could do it. `phase_watch`
/// is the phase title's duration ("Monitoring (24 hours)"), offered once per phase.
fn step_hint(title: &str, phase_watch: &mut Option<String>) -> Option<String> {
    let lower = title.to_lowercase();
    let w = words_of(title);
    let is_watch = has_prefix(&w, &["monitor", "watch", "observe", "wait"]);
    if is_watch && let Some(d) = duration_in(title) {
        return Some(format!(
            "automate: a watch step (watch = \"{d}\": waits with the triggers watched, passes if none \
             fires); {SEE_FORMAT}"
        ));
    }
    if is_watch
        && matches!(w.first().map(String::as_str), Some(v) if ["monitor", "watch", "observe"].contains(&v))
        && let Some(d) = phase_watch.take()
    {
        return Some(format!(
            "automate: one watch step for the whole phase (watch = \"{d}\": waits with the triggers \
             watched, passes if none fires); {SEE_FORMAT}"
        ));
    }
    if lower.contains("health check")
        || lower.contains("healthcheck")
        || lower.contains("health-check")
        || lower.contains("healthz")
    {
        return Some(format!(
            "automate: an http step (e.g. http = {{ url = \"https://HOST/healthz\", expect_status = 200 }}); \
             {SEE_FORMAT}"
        ));
    }
    if lower.contains("status page") || lower.contains("statuspage") {
        return Some(run_hint("./status-page.sh"));
    }
    if has_prefix(&w, &["notif", "announce"]) {
        return Some(run_hint("./notify.sh"));
    }
    // Work that needs a person's judgement, whatever it mentions.
    const HUMAN: &[&str] = &[
        "schedule",
        "document",
        "review",
        "collect",
        "record",
        "discuss",
        "write",
        "confirm",
        "agree",
        "approve",
        "sign",
        "decide",
        "communicate",
        "update",
        "hold",
        "ask",
        "brief",
        "train",
        "plan",
    ];
    if w.first().is_some_and(|f| HUMAN.contains(&f.as_str())) {
        return None;
    }
    let first = w.first().map_or("", String::as_str);
    if first.starts_with("verif") || first.starts_with("validat") {
        return Some(run_hint("./verify.sh"));
    }
    if w.iter().any(|x| x == "traffic") {
        return Some(run_hint("./switch-traffic.sh"));
    }
    if has_prefix(&w, &["restor"]) {
        return Some(run_hint("./restore.sh"));
    }
    if has_prefix(&w, &["backup", "snapshot"]) || lower.contains("back up") {
        return Some(run_hint("./backup.sh"));
    }
    if has_prefix(&w, &["migrat"]) {
        if has_prefix(&w, &["test", "dry"]) {
            return Some(run_hint("./migrate.sh --dry-run"));
        }
        return Some(format!(
            "automate: a run step (e.g. run = \"./migrate.sh\"), with irreversible = true if it cannot be \
             undone; {SEE_FORMAT}"
        ));
    }
    if has_prefix(&w, &["scale", "scaling"]) {
        return Some(run_hint("./scale.sh"));
    }
    if ["deploy", "redeploy", "promote", "rollout"].contains(&first) {
        return Some(run_hint("./deploy.sh"));
    }
    if has_prefix(&w, &["test"]) {
        return Some(run_hint("./run-tests.sh"));
    }
    if has_prefix(&w, &["scan"]) {
        return Some(run_hint("./security-scan.sh"));
    }
    if has_prefix(&w, &["certificat"]) {
        return Some(run_hint("./check-certs.sh"));
    }
    if has_prefix(&w, &["verif", "validat"]) {
        return Some(run_hint("./verify.sh"));
    }
    None
}

const ABOVE: &[&str] = &["exceeds", "exceed", "above", "over", "greater", "higher", "more"];
const BELOW: &[&str] = &["below", "under", "less", "lower", "drops", "falls"];

/// What a trigger measures: its words before the comparison ("Error rate exceeds 1%" → "Error
/// rate", "Latency > 2s" → "Latency"), or all of them.
fn measured(title: &str) -> String {
    let mut end = title.find(['>', '<']).unwrap_or(title.len());
    let mut word_start = None;
    for (i, c) in title.char_indices() {
        if c.is_alphanumeric() {
            word_start.get_or_insert(i);
            continue;
        }
        if let Some(st) = word_start.take() {
            let w = title[st..i].to_lowercase();
            if ABOVE.contains(&w.as_str()) || BELOW.contains(&w.as_str()) {
                end = end.min(st);
                break;
            }
        }
    }
    let before = title[..end].trim();
    if derive_id(before).is_empty() {
        title.to_string()
    } else {
        before.to_string()
    }
}

/// The `# automate:` comment for an operator-raised trigger that a metric or check could raise.
fn trigger_hint(title: &str) -> Option<String> {
    let w = words_of(title);
    let comparison = w
        .iter()
        .position(|x| ABOVE.contains(&x.as_str()) || BELOW.contains(&x.as_str()));
    let symbolic = title.find(['>', '<']);
    if comparison.is_some() || symbolic.is_some() {
        let below = match (comparison, symbolic) {
            (_, Some(at)) => title[at..].starts_with('<'),
            (Some(i), None) => BELOW.contains(&w[i].as_str()),
            (None, None) => false,
        };
        let metric = derive_id(&measured(title)).replace('-', "_");
        let metric = if metric.is_empty() || metric.len() > 32 {
            "my_metric".to_string()
        } else {
            metric
        };
        let threshold = threshold_in(title).unwrap_or_else(|| "…".into());
        let dir = if below { "below" } else { "above" };
        let mut s = format!("automate: a metric trigger (e.g. metric = \"{metric}\", {dir} = {threshold}");
        if let Some(d) = window_in(title) {
            let _ = write!(s, ", for = \"{d}\"");
        }
        let _ = write!(s, ", with a [[metric]] of that id); {SEE_FORMAT}");
        return Some(s);
    }
    if has_prefix(&w, &["fail", "down", "unavailable", "unreachable", "broken"]) {
        return Some(format!(
            "automate: a check trigger (e.g. check = \"./smoke-test.sh\", interval = \"30s\"); {SEE_FORMAT}"
        ));
    }
    if has_prefix(&w, &["integrity", "corrupt"]) {
        return Some(format!(
            "automate: a check trigger (e.g. check = \"./check-integrity.sh\", interval = \"1m\"); {SEE_FORMAT}"
        ));
    }
    None
}

/// "1%" → 0.01; "1 second" → 1; "500ms" → 0.5.
fn threshold_in(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // skip numbers that are part of a word such as "P95"
        if chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_alphanumeric()) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let num: String = chars[start..i].iter().collect();
            let num = num.trim_end_matches('.');
            let Ok(n) = num.parse::<f64>() else { continue };
            let rest: String = chars[i..].iter().collect::<String>().trim_start().to_lowercase();
            // A "for 5 minutes" duration is not the threshold.
            let window = text[..chars[..start].iter().map(|c| c.len_utf8()).sum::<usize>()]
                .to_lowercase()
                .trim_end()
                .ends_with("for");
            if window {
                continue;
            }
            let value = if rest.starts_with('%') {
                n / 100.0
            } else if rest.starts_with("ms") {
                n / 1000.0
            } else {
                n
            };
            return Some(format_number(value));
        }
        i += 1;
    }
    None
}

fn format_number(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').map_or(s.to_string(), |x| format!("{x}.0"))
}

// ── Writing the TOML ────────────────────────────────────────────────────────────────────────────

/// A TOML basic string holding `s` as the tool will read it: quotes, backslashes and control
/// characters escaped, and `${` doubled so that it is not read as a variable.
fn toml_str(s: &str) -> String {
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
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
        .collect()
}

/// The id the tool derives for a title written as the TOML string `toml_str(title)` holds.
fn derived_step_id(title: &str) -> String {
    let raw = title.replace("${", "$${");
    derive_id(&raw.replace("${", "").replace('}', ""))
}

/// A short id from a title: derived, cut at a word boundary, never empty.
fn short_id(title: &str, max: usize, fallback: &str) -> String {
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

fn unique(base: &str, used: &mut HashSet<String>) -> String {
    let mut id = base.to_string();
    let mut n = 2;
    while used.contains(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    used.insert(id.clone());
    id
}

fn banner(o: &mut String, text: &str) {
    let head = format!("# ── {} ", comment_text(text));
    let width = head.chars().count();
    let _ = writeln!(o, "{head}{}", "─".repeat(100usize.saturating_sub(width).max(3)));
}

fn render(source: &str, doc: &Doc) -> String {
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
        for e in &group.entries {
            match e {
                Entry::Note(n) => {
                    let _ = writeln!(body, "# note: {}", comment_text(n));
                }
                Entry::Item(title) => {
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
        }
    }

    let mut section: Option<&str> = None;
    let mut step_count = 0;
    for (i, p) in doc.phases.iter().enumerate() {
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
        step_count += p.items();
        hints += steps(&mut body, p, "phase.step");
    }

    let mut rollback_steps = 0;
    if let (Some(title), false) = (&doc.rollback_title, doc.rollback.is_empty()) {
        body.push('\n');
        banner(&mut body, title);
        let _ = writeln!(body, "\n[rollback]\ntitle = {}", toml_str(title));
        for p in &doc.rollback {
            let id = unique(&short_id(&p.title, MAX_PHASE_ID, "rollback"), &mut used_phase_ids);
            let _ = writeln!(
                body,
                "\n[[rollback.phase]]\nid = {}\ntitle = {}",
                toml_str(&id),
                toml_str(&p.title)
            );
            rollback_steps += p.items();
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
        "# Every checklist item is a manual step in its own words. `# automate:` marks the items most\n\
         # worth automating: replace `manual = true` with the run, http or watch step it suggests (see\n\
         # the runbook format in README.md).",
    );
    if trigger_count > 0 {
        o.push_str(" The triggers are raised by the operator until they get a\n# `metric` or a `check`.");
    }
    o.push('\n');
    let _ = writeln!(o, "#");
    let mut summary = format!(
        "# {step_count} step{} in {} phase{}",
        plural(step_count),
        doc.phases.len(),
        plural(doc.phases.len())
    );
    if trigger_count > 0 {
        let _ = write!(summary, ", {trigger_count} trigger{}", plural(trigger_count));
    }
    if !doc.rollback.is_empty() {
        let n = doc.rollback.len();
        let _ = write!(
            summary,
            ", rollback in {n} phase{} ({rollback_steps} step{})",
            plural(n),
            plural(rollback_steps)
        );
    }
    let _ = writeln!(o, "{summary}; {hints} marked `# automate:`.");
    o.push('\n');
    o.push_str(&body);
    o
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Writes a phase's steps and notes; returns how many `# automate:` hints it wrote.
fn steps(o: &mut String, p: &PhaseOut, table: &str) -> usize {
    let mut used: HashSet<String> = HashSet::new();
    let mut hints = 0;
    let mut phase_watch = duration_in(&p.title);
    let mut notes: Vec<&str> = Vec::new();
    let mut number = 0;
    let mut seen: HashSet<&str> = HashSet::new();
    for e in &p.entries {
        match e {
            Entry::Note(n) => notes.push(n),
            Entry::Item(title) => {
                number += 1;
                o.push('\n');
                for n in notes.drain(..) {
                    let _ = writeln!(o, "# note: {}", comment_text(n));
                }
                let derived = derived_step_id(title);
                let explicit = if derived.is_empty() {
                    Some(unique(&format!("step-{number}"), &mut used))
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
                if let Some(h) = step_hint(title, &mut phase_watch) {
                    hints += 1;
                    let _ = writeln!(o, "# {h}");
                }
                let _ = writeln!(o, "[[{table}]]");
                if let Some(id) = explicit {
                    let _ = writeln!(o, "id = {}", toml_str(&id));
                }
                let _ = writeln!(o, "title = {}\nmanual = true", toml_str(title));
            }
        }
    }
    if !notes.is_empty() {
        o.push('\n');
        for n in notes {
            let _ = writeln!(o, "# note: {}", comment_text(n));
        }
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_is_stripped_from_headings() {
        assert_eq!(
            strip_numbering("1. Infrastructure Validation"),
            "Infrastructure Validation"
        );
        assert_eq!(strip_numbering("2.3 Canary"), "Canary");
        assert_eq!(strip_numbering("2) Canary"), "Canary");
        assert_eq!(strip_numbering("10% of instances"), "10% of instances");
        assert_eq!(strip_numbering("2024 review"), "2024 review");
        assert_eq!(strip_numbering("1."), "1.");
        assert_eq!(strip_numbering("1.2. Deep"), "Deep");
        assert_eq!(strip_numbering("Phase 1. Build"), "Phase 1. Build");
    }

    #[test]
    fn rollback_headings_are_recognised() {
        assert_eq!(classify("Rollback Triggers", Kind::Normal), Kind::Triggers);
        assert_eq!(classify("When to roll back", Kind::Normal), Kind::Triggers);
        assert_eq!(classify("Rollback Process", Kind::Normal), Kind::Rollback);
        assert_eq!(classify("Roll back procedure", Kind::Normal), Kind::Rollback);
        assert_eq!(classify("Rollback", Kind::Normal), Kind::Rollback);
        assert_eq!(classify("Rollback readiness", Kind::Normal), Kind::Normal);
        assert_eq!(classify("Success Criteria", Kind::Normal), Kind::Normal);
        assert_eq!(classify("Triggers", Kind::Rollback), Kind::Triggers);
        assert_eq!(classify("Database", Kind::Rollback), Kind::Rollback);
    }

    #[test]
    fn strings_are_escaped_for_toml_and_variables() {
        assert_eq!(toml_str(r#"say "hi" \ ${x}"#), r#""say \"hi\" \\ $${x}""#);
        assert_eq!(toml_str("a\tb\u{1}"), "\"a\\tb\\u0001\"");
    }

    #[test]
    fn durations_and_thresholds_are_read() {
        assert_eq!(
            duration_in("Monitor error rates for 15 minutes").as_deref(),
            Some("15m")
        );
        assert_eq!(duration_in("Monitoring (24 hours)").as_deref(), Some("24h"));
        assert_eq!(duration_in("Watch for 90s").as_deref(), Some("90s"));
        assert_eq!(duration_in("Watch error rates"), None);
        assert_eq!(
            threshold_in("Error rate exceeds 1% for 5 minutes").as_deref(),
            Some("0.01")
        );
        assert_eq!(
            threshold_in("P95 latency exceeds 1 second").as_deref(),
            Some("1.0")
        );
    }
}
