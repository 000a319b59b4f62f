//! A section's steps: which list items are steps (checkboxes, numbered items, a procedure's
//! bullets, `☐` table rows), the labels that group them, their titles and instructions, and the one
//! command a step may be.

use super::*;

/// A phase's worth of steps: under the section's own heading, or under an item that labels them
/// ("Immediate actions:", "Mock Run").
pub(super) struct Group {
    pub(super) label: Option<String>,
    pub(super) steps: Vec<StepOut>,
}

/// How a section's lists are read.
#[derive(Clone, Copy)]
pub(super) struct Style {
    /// Every item is a step (a rollback procedure).
    pub(super) all: bool,
    /// Plain bullets are steps (a procedure heading without checkboxes or numbers).
    pub(super) plain: bool,
}

pub(super) fn list_items(blocks: &[Block]) -> impl Iterator<Item = &Item> {
    blocks.iter().flat_map(|b| match b {
        Block::List { items } => items.as_slice(),
        _ => &[],
    })
}

/// Every item of the lists in `blocks`, at any depth.
pub(super) fn all_items<'b>(blocks: &'b [Block], out: &mut Vec<&'b Item>) {
    for i in list_items(blocks) {
        out.push(i);
        all_items(&i.blocks, out);
    }
}

/// "<release-tag>", "<!-- -->", "…": an item that holds no words to act on.
pub(super) fn is_placeholder(text: &str) -> bool {
    let t = text.trim().trim_end_matches([':', '.']);
    if t.is_empty() {
        return true;
    }
    let mut rest = String::new();
    let mut depth = 0;
    for c in t.chars() {
        match c {
            '<' => depth += 1,
            '>' if depth > 0 => depth -= 1,
            _ if depth == 0 => rest.push(c),
            _ => {}
        }
    }
    t.starts_with('<') && rest.chars().all(|c| !c.is_alphanumeric())
}

/// A short label ending in a colon: "Immediate Actions:", "Restore snapshot:".
pub(super) fn colon_label(text: &str) -> bool {
    let t = text.trim();
    t.ends_with(':') && words_of(t).len() <= 4
}

pub(super) fn is_label(item: &Item, style: Style) -> bool {
    if item.checked.is_some() {
        return false;
    }
    let kids: Vec<&Item> = list_items(&item.blocks).collect();
    if kids.is_empty() {
        return false;
    }
    kids.iter().any(|k| k.checked.is_some() || k.ordered)
        || (colon_label(&item.text) && (style.all || style.plain || item.ordered))
}

pub(super) fn is_step(item: &Item, style: Style) -> bool {
    item.checked.is_some() || item.ordered || style.all || style.plain
}

/// A long text cut for a title: at the end of its first sentence, else at a word.
pub(super) fn shorten(text: &str) -> (String, bool) {
    if text.chars().count() <= MAX_TITLE {
        return (text.to_string(), false);
    }
    let limit = text.char_indices().nth(MAX_TITLE).map_or(text.len(), |(i, _)| i);
    let head = &text[..limit];
    if let Some(end) = head.find(". ").filter(|&e| e >= 20) {
        return (head[..=end].trim().to_string(), true);
    }
    let cut = head.rfind(' ').filter(|&c| c >= 20).unwrap_or(limit);
    (format!("{}…", head[..cut].trim_end()), true)
}

/// Builds the steps of one section (or of one label's items).
pub(super) struct Steps<'l> {
    pub(super) style: Style,
    pub(super) groups: Vec<Group>,
    /// Text before the first step, for the first step's instruction: (line, chunk).
    pub(super) pending: Vec<(usize, String)>,
    /// Whether a block was read as text of the section (for a section without steps).
    pub(super) leftovers: &'l mut Vec<(usize, String)>,
}

impl Steps<'_> {
    pub(super) fn last_step(&mut self) -> Option<&mut StepOut> {
        self.groups.iter_mut().rev().find_map(|g| g.steps.last_mut())
    }

    pub(super) fn context(&mut self, line: usize, text: String) {
        if text.is_empty() {
            return;
        }
        match self.last_step() {
            Some(s) => s.instruction.push(text),
            None => self.pending.push((line, text)),
        }
    }

    /// The group that a step outside any label goes to: the last one, unless it is a label's.
    pub(super) fn open_group(&mut self) -> usize {
        if self.groups.last().is_none_or(|g| g.label.is_some()) {
            self.groups.push(Group {
                label: None,
                steps: Vec::new(),
            });
        }
        self.groups.len() - 1
    }

    pub(super) fn items(
        &mut self,
        items: &[Item],
        lead: Option<&str>,
        prefix: &[String],
        group: Option<usize>,
    ) {
        let steps = items
            .iter()
            .any(|i| is_label(i, self.style) || is_step(i, self.style));
        let lead = match lead {
            // a lead-in to a list that holds no steps is text like the list itself
            Some(l) if !steps => {
                self.context(items.first().map_or(0, |i| i.line), l.to_string());
                None
            }
            other => other,
        };
        // consecutive items that are not steps stay one list in the instruction
        let mut lines: Vec<String> = Vec::new();
        let mut first_line = 0;
        for item in items {
            if !is_label(item, self.style) && !is_step(item, self.style) {
                if lines.is_empty() {
                    first_line = item.line;
                }
                item_lines(item, 0, &mut lines);
                continue;
            }
            if !lines.is_empty() {
                self.context(first_line, std::mem::take(&mut lines).join("\n"));
            }
            self.item(item, lead, prefix, group);
        }
        if !lines.is_empty() {
            self.context(first_line, lines.join("\n"));
        }
    }

    pub(super) fn item(&mut self, item: &Item, lead: Option<&str>, prefix: &[String], group: Option<usize>) {
        if is_label(item, self.style) {
            let label = strip_colon(&item.text).to_string();
            let (group, prefix) = if group.is_none() && prefix.is_empty() {
                self.groups.push(Group {
                    label: Some(label),
                    steps: Vec::new(),
                });
                (Some(self.groups.len() - 1), Vec::new())
            } else {
                let mut p = prefix.to_vec();
                p.push(label);
                (group, p)
            };
            // What the label says besides its sub-items goes to the first of them.
            let mut words: Vec<String> = lead.map(str::to_string).into_iter().collect();
            words.extend(item.comments.iter().map(|c| format!("Note: {c}")));
            let mut first = true;
            for b in &item.blocks {
                match b {
                    Block::List { items } => {
                        for k in items {
                            let lead = (first && !words.is_empty()).then(|| words.join("\n\n"));
                            self.item(k, lead.as_deref(), &prefix, group);
                            first = false;
                        }
                    }
                    other => {
                        let text = chunk(other);
                        if first {
                            words.push(text);
                        } else {
                            self.context(other.line(), text);
                        }
                    }
                }
            }
            return;
        }
        if !is_step(item, self.style) {
            let mut lines = Vec::new();
            item_lines(item, 0, &mut lines);
            self.context(item.line, lines.join("\n"));
            return;
        }
        if is_placeholder(&item.text) {
            let what = if item.text.is_empty() {
                "an empty item".to_string()
            } else {
                format!("placeholder item {}", snippet(&item.text))
            };
            self.leftovers.push((item.line, what));
            return;
        }
        let group = group.unwrap_or_else(|| self.open_group());
        for step in item_steps(item, lead, prefix, None) {
            self.groups[group].steps.push(step);
        }
    }
}

/// The step an item is, followed by the steps of its nested checkbox items.
pub(super) fn item_steps(
    item: &Item,
    lead: Option<&str>,
    prefix: &[String],
    parent: Option<&str>,
) -> Vec<StepOut> {
    let (short, cut) = shorten(&item.text);
    let title = if prefix.is_empty() {
        short
    } else {
        format!("{} / {short}", prefix.join(" / "))
    };
    let mut step = StepOut {
        title: title.clone(),
        instruction: Vec::new(),
        command: one_command(&item.text, &item.blocks),
        codes: item
            .blocks
            .iter()
            .filter(|b| matches!(b, Block::Code { .. }))
            .count(),
    };
    if let Some(p) = parent {
        step.instruction.push(format!("Part of: {p}"));
    }
    if let Some(l) = lead {
        step.instruction.push(l.to_string());
    }
    if cut {
        step.instruction.push(item.text.clone());
    }
    if item.checked == Some(true) {
        step.instruction
            .push("Already checked in the checklist ([x]).".to_string());
    }
    for c in &item.comments {
        step.instruction.push(format!("Note: {c}"));
    }
    let mut subs: Vec<&Item> = Vec::new();
    for b in &item.blocks {
        match b {
            Block::List { items } => {
                let mut lines = Vec::new();
                for k in items {
                    if k.checked.is_some() && !is_placeholder(&k.text) {
                        subs.push(k);
                    } else {
                        item_lines(k, 0, &mut lines);
                    }
                }
                if !lines.is_empty() {
                    step.instruction.push(lines.join("\n"));
                }
            }
            other => {
                let c = chunk(other);
                if !c.is_empty() {
                    step.instruction.push(c);
                }
            }
        }
    }
    let mut out = vec![step];
    for k in subs {
        out.extend(item_steps(k, None, prefix, Some(&title)));
    }
    out
}

/// `☐ Yes / ☐ No`, `[ ]`: a table cell that is a checkbox.
pub(super) fn has_box(cell: &str) -> bool {
    cell.contains(['☐', '☑', '☒']) || cell.contains("[ ]") || cell.contains("[x]")
}

pub(super) fn section_groups(
    sec: &Section,
    doc_title: &str,
    rollback: bool,
    leftovers: &mut Vec<(usize, String)>,
) -> Vec<Group> {
    let mut every = Vec::new();
    all_items(&sec.blocks, &mut every);
    let boxes = every.iter().any(|i| i.checked.is_some());
    let numbers = list_items(&sec.blocks).any(|i| i.ordered);
    let style = Style {
        all: rollback,
        plain: sec.procedure && !boxes && !numbers,
    };
    let mut s = Steps {
        style,
        groups: Vec::new(),
        pending: Vec::new(),
        leftovers,
    };
    let blocks = &sec.blocks;
    with_lead_ins(blocks, |b, l| match b {
        Block::List { items } => {
            s.items(items, l.as_deref(), &[], None);
        }
        Block::Table { rows, line } if rows.iter().skip(1).any(|r| r.iter().any(|c| has_box(c))) => {
            let header = rows.first().cloned().unwrap_or_default();
            for row in rows.iter().skip(1) {
                if !row.iter().any(|c| has_box(c)) {
                    s.context(*line, row.join(" | "));
                    continue;
                }
                let Some(at) = row.iter().position(|c| !c.trim().is_empty() && !has_box(c)) else {
                    s.leftovers
                        .push((*line, format!("table row {}", snippet(&row.join(" | ")))));
                    continue;
                };
                let mut step = StepOut {
                    title: shorten(&row[at]).0,
                    ..StepOut::default()
                };
                if shorten(&row[at]).1 {
                    step.instruction.push(row[at].clone());
                }
                let lines: Vec<String> = row
                    .iter()
                    .enumerate()
                    .filter(|(j, c)| *j != at && !c.trim().is_empty())
                    .map(|(j, c)| match header.get(j).filter(|h| !h.trim().is_empty()) {
                        Some(h) => format!("{h}: {c}"),
                        None => c.clone(),
                    })
                    .collect();
                if !lines.is_empty() {
                    step.instruction.push(lines.join("\n"));
                }
                let g = s.open_group();
                s.groups[g].steps.push(step);
            }
        }
        Block::Html { text, line } => {
            s.leftovers.push((*line, format!("HTML {}", snippet(text))));
        }
        // A fence written flush left under a numbered step ends its list, but is its command.
        Block::Code { text, lang, line } => {
            s.context(*line, chunk(b));
            if let Some(last) = s.last_step() {
                last.codes += 1;
                last.command = (last.codes == 1 && is_shell(lang) && !last.title.contains('`'))
                    .then(|| one_command_in(text))
                    .flatten();
            }
        }
        other => s.context(other.line(), chunk(other)),
    });
    let Steps {
        mut groups,
        pending,
        leftovers,
        ..
    } = s;
    groups.retain(|g| !g.steps.is_empty());
    if groups.is_empty() {
        // A heading whose content is a command, or the prose of a procedure, is one step.
        let code = blocks.iter().any(|b| matches!(b, Block::Code { .. }));
        if !pending.is_empty() && (code || sec.procedure || rollback) {
            let title = sec.path.last().map_or(doc_title, String::as_str);
            let command = match blocks
                .iter()
                .filter(|b| !matches!(b, Block::Html { .. }))
                .collect::<Vec<_>>()
                .as_slice()
            {
                [Block::Code { text, lang, .. }] if is_shell(lang) => one_command_in(text),
                _ => None,
            };
            return vec![Group {
                label: None,
                steps: vec![StepOut {
                    title: shorten(title).0,
                    instruction: pending.into_iter().map(|(_, t)| t).collect(),
                    command,
                    codes: 0,
                }],
            }];
        }
        let heading = sec.path.last().map_or(doc_title, String::as_str);
        for b in blocks {
            if matches!(b, Block::Html { .. }) {
                continue;
            }
            leftovers.push((
                b.line(),
                format!(
                    "{} under \"{heading}\" {}",
                    block_kind(b),
                    snippet(&block_words(b))
                ),
            ));
        }
        return Vec::new();
    }
    if !pending.is_empty()
        && let Some(first) = groups.iter_mut().find_map(|g| g.steps.first_mut())
    {
        let mut before: Vec<String> = pending.into_iter().map(|(_, t)| t).collect();
        // "Part of:" stays first
        before.append(&mut first.instruction);
        first.instruction = before;
    }
    groups
}

/// A paragraph ending in ':' right before a list, without comments: the list's lead-in ("Roll back
/// immediately if:").
/// Walks a section's blocks, holding each lead-in back for the next list it introduces: `each` sees
/// every other block, a list with the lead-in given since the last list.
pub(super) fn with_lead_ins<'a>(blocks: &'a [Block], mut each: impl FnMut(&'a Block, Option<String>)) {
    let mut lead: Option<String> = None;
    for (i, b) in blocks.iter().enumerate() {
        if let Some(text) = lead_in(blocks, i) {
            lead = Some(text.to_string());
            continue;
        }
        let l = if matches!(b, Block::List { .. }) {
            lead.take()
        } else {
            None
        };
        each(b, l);
    }
}

pub(super) fn lead_in(blocks: &[Block], i: usize) -> Option<&str> {
    match &blocks[i] {
        Block::Para { text, comments, .. }
            if text.ends_with(':')
                && comments.is_empty()
                && matches!(blocks.get(i + 1), Some(Block::List { .. })) =>
        {
            Some(text)
        }
        _ => None,
    }
}
