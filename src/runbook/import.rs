//! `runbook import CHECKLIST.md`: a Markdown checklist or runbook turned into a runbook TOML on
//! stdout.
//!
//! The Markdown is read with `pulldown-cmark` (task lists, tables, YAML front matter) into blocks,
//! and the document's shape becomes the runbook's: the front matter's `name`/`title` or the `#`
//! title is the runbook title; headings (and bold pseudo-headings such as `**Prep work:**`) are
//! phases, a `##` above a `###` the phase's section. Steps are `- [ ]` items, numbered items, the
//! plain bullets of a procedure heading ("Release procedure", "Mitigation"), `☐` table rows, and a
//! heading whose content is a command or the prose of a procedure. Everything an item holds —
//! its fenced blocks, sub-bullets, the label above it — is the step's visible instruction
//! (`manual = """…"""`); an item that is exactly one shell command gets a commented `run`
//! suggestion.
//!
//! Under a "rollback triggers" heading only the conditions that call for a rollback become
//! `[[trigger]]`s; a "do NOT roll back if" or "consider escalation first" list goes into a
//! "Decide whether to roll back" step instead. A "rollback process/procedure/plan" heading gives
//! the `[rollback]` procedure; a playbook that is nothing but a rollback is imported as the
//! procedure to run. Whatever becomes no step, trigger or instruction is listed for stderr with
//! its line.
//!
//! The output always validates: ids are explicit where deriving them would clash or fail, strings
//! are escaped (including `${`, which the tool would otherwise read as a variable).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::ops::Range;
use std::path::Path;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

use super::parse::derive_id;

/// The largest checklist read; anything bigger is surely not a checklist.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The longest explicit phase id written (cut at a word boundary).
const MAX_PHASE_ID: usize = 40;
/// The longest trigger id written: `plan` lines them up in a 16-wide column.
const MAX_TRIGGER_ID: usize = 16;
/// A step title longer than this is cut at a sentence or word; the whole text goes into the
/// instruction.
const MAX_TITLE: usize = 120;

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
    let imported = match convert(&name, &text) {
        Ok(t) => t,
        Err(message) => {
            crate::say!("runbook: {file}: {message}");
            return 2;
        }
    };
    for notice in &imported.notices {
        crate::say!("runbook: {file}: {notice}");
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(imported.toml.as_bytes()).and_then(|()| out.flush()) {
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

/// What an import gives: the runbook, and what the operator should know about how it was made
/// (what was not imported, with its line; a rollback-only playbook made the forward procedure).
#[derive(Debug)]
pub struct Imported {
    pub toml: String,
    /// One line each, without the `runbook: FILE: ` prefix.
    pub notices: Vec<String>,
}

/// Turns the Markdown `text` of the checklist called `source` into runbook TOML, or says why not.
pub fn convert(source: &str, text: &str) -> Result<Imported, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let blocks = markdown(&text);
    let mut doc = build(source, blocks)?;
    let toml = render(source, &doc);
    let mut notices = Vec::new();
    if doc.rollback_only {
        notices.push(
            "only a rollback procedure was found: it is imported as the procedure to run (its \
             steps are the forward phases; there is no [rollback])"
                .to_string(),
        );
    }
    doc.leftovers.sort_by_key(|(line, _)| *line);
    for (line, what) in &doc.leftovers {
        notices.push(format!("line {line}: not imported: {what}"));
    }
    Ok(Imported { toml, notices })
}

// ── Markdown, as blocks ─────────────────────────────────────────────────────────────────────────

#[derive(Debug, Clone)]
enum Block {
    Heading {
        level: u8,
        text: String,
        line: usize,
    },
    /// `pseudo`: the whole paragraph is bold (`**Prep work:**`), a heading in all but name.
    Para {
        text: String,
        line: usize,
        pseudo: bool,
        comments: Vec<String>,
    },
    Code {
        text: String,
        lang: String,
        line: usize,
    },
    List {
        items: Vec<Item>,
    },
    /// The header row first.
    Table {
        rows: Vec<Vec<String>>,
        line: usize,
    },
    Html {
        text: String,
        line: usize,
    },
    FrontMatter {
        text: String,
        line: usize,
    },
}

impl Block {
    fn line(&self) -> usize {
        match self {
            Block::Heading { line, .. }
            | Block::Para { line, .. }
            | Block::Code { line, .. }
            | Block::Table { line, .. }
            | Block::Html { line, .. }
            | Block::FrontMatter { line, .. } => *line,
            Block::List { items } => items.first().map_or(0, |i| i.line),
        }
    }
}

#[derive(Debug, Clone)]
struct Item {
    line: usize,
    /// `Some(false)` for `- [ ]`, `Some(true)` for `- [x]`.
    checked: Option<bool>,
    ordered: bool,
    /// The item's own words (its first paragraph), as inline Markdown is read: emphasis markers
    /// dropped, code spans in backticks, a link's address after its text.
    text: String,
    /// HTML comments written in the item's words (`<!-- paste link -->`).
    comments: Vec<String>,
    /// Everything nested in the item: paragraphs, code, sub-lists.
    blocks: Vec<Block>,
    /// A bold line written right under the item's words, which heads what follows the item.
    bold_tail: Option<String>,
}

/// The inline content of a paragraph, heading, item or table cell.
#[derive(Default)]
struct Inline {
    text: String,
    checked: Option<bool>,
    comments: Vec<String>,
    /// Some words outside `**…**` (besides a `:`).
    plain: bool,
    strong: bool,
    /// Where the last line starts in `text`, and whether that line has words outside and inside
    /// `**…**`: a bold last line ("**Do NOT roll back if:**" right under an item) is a heading
    /// of what follows, not part of these words.
    line_start: usize,
    line_plain: bool,
    line_strong: bool,
}

impl Inline {
    /// Splits off a bold last line (`**Do NOT roll back if:**` written right under an item).
    fn take_bold_tail(&mut self) -> Option<String> {
        if self.line_start == 0 || self.line_plain || !self.line_strong {
            return None;
        }
        let tail = self.text.get(self.line_start..)?.trim().to_string();
        self.text.truncate(self.line_start);
        self.text = self.text.trim().to_string();
        Some(tail)
    }
}

struct Reader<'a> {
    events: Vec<(Event<'a>, Range<usize>)>,
    at: usize,
    line_starts: Vec<usize>,
    /// How many lists, items and quotes enclose the block being read.
    depth: usize,
}

/// Deeper than this, a list or quote is read as one paragraph of its words: no checklist nests
/// so deep, and the reader must not run out of stack on a file that does.
const MAX_NESTING: usize = 64;

fn markdown(text: &str) -> Vec<Block> {
    let options = Options::ENABLE_TASKLISTS
        | Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let events = Parser::new_ext(text, options).into_offset_iter().collect();
    let mut line_starts = vec![0];
    line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    let mut r = Reader {
        events,
        at: 0,
        line_starts,
        depth: 0,
    };
    let mut out = Vec::new();
    while r.at < r.events.len() {
        out.extend(r.blocks());
        // an unmatched end (never in practice): step over it
        if r.at < r.events.len() {
            r.at += 1;
        }
    }
    out
}

fn is_inline(e: &Event) -> bool {
    match e {
        Event::Start(t) => matches!(
            t,
            Tag::Emphasis
                | Tag::Strong
                | Tag::Strikethrough
                | Tag::Superscript
                | Tag::Subscript
                | Tag::Link { .. }
                | Tag::Image { .. }
        ),
        Event::End(t) => matches!(
            t,
            TagEnd::Emphasis
                | TagEnd::Strong
                | TagEnd::Strikethrough
                | TagEnd::Superscript
                | TagEnd::Subscript
                | TagEnd::Link
                | TagEnd::Image
        ),
        Event::Rule | Event::Html(_) => false,
        _ => true,
    }
}

impl<'a> Reader<'a> {
    fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    fn peek(&self) -> Option<&Event<'a>> {
        self.events.get(self.at).map(|(e, _)| e)
    }

    fn here(&self) -> usize {
        let offset = self.events.get(self.at).map_or(0, |(_, r)| r.start);
        self.line(offset)
    }

    /// Blocks up to the end of the enclosing container (left for the caller) or of the text.
    fn blocks(&mut self) -> Vec<Block> {
        let mut out = Vec::new();
        while let Some(e) = self.peek() {
            if matches!(e, Event::End(_)) {
                break;
            }
            if is_inline(e) {
                let line = self.here();
                let inl = self.inline();
                if !inl.text.is_empty() || !inl.comments.is_empty() {
                    out.push(para(inl, line));
                }
                continue;
            }
            let line = self.here();
            let (event, _) = self.events[self.at].clone();
            self.at += 1;
            let container = matches!(
                event,
                Event::Start(
                    Tag::List(_)
                        | Tag::BlockQuote(_)
                        | Tag::FootnoteDefinition(_)
                        | Tag::DefinitionList
                        | Tag::DefinitionListTitle
                        | Tag::DefinitionListDefinition
                )
            );
            if container && self.depth >= MAX_NESTING {
                let text = self.flatten();
                if !text.is_empty() {
                    out.push(Block::Para {
                        text,
                        line,
                        pseudo: false,
                        comments: Vec::new(),
                    });
                }
                continue;
            }
            self.depth += usize::from(container);
            match event {
                Event::Start(Tag::Paragraph) => {
                    let mut inl = self.inline();
                    self.at += 1;
                    let tail = if inl.strong && !inl.plain {
                        None
                    } else {
                        inl.take_bold_tail()
                    };
                    if !inl.text.is_empty() || !inl.comments.is_empty() {
                        out.push(para(inl, line));
                    }
                    if let Some(text) = tail {
                        out.push(Block::Para {
                            text,
                            line: self.here().saturating_sub(1).max(line),
                            pseudo: true,
                            comments: Vec::new(),
                        });
                    }
                }
                Event::Start(Tag::Heading { level, .. }) => {
                    let inl = self.inline();
                    self.at += 1;
                    out.push(Block::Heading {
                        level: level as u8,
                        text: inl.text,
                        line,
                    });
                }
                Event::Start(Tag::CodeBlock(kind)) => {
                    let lang = match kind {
                        CodeBlockKind::Fenced(info) => info
                            .split(|c: char| c.is_whitespace() || c == ',' || c == '{')
                            .next()
                            .unwrap_or("")
                            .to_lowercase(),
                        CodeBlockKind::Indented => String::new(),
                    };
                    let text = self.raw_text();
                    out.push(Block::Code { text, lang, line });
                }
                Event::Start(Tag::HtmlBlock) => {
                    let text = self.raw_text();
                    if !text.trim().is_empty() {
                        out.push(Block::Html { text, line });
                    }
                }
                Event::Html(h) => out.push(Block::Html {
                    text: h.to_string(),
                    line,
                }),
                Event::Start(Tag::MetadataBlock(_)) => {
                    let text = self.raw_text();
                    out.push(Block::FrontMatter { text, line });
                }
                Event::Start(Tag::List(start)) => {
                    let mut items = Vec::new();
                    while let Some(Event::Start(Tag::Item)) = self.peek() {
                        let line = self.here();
                        self.at += 1;
                        let mut item = self.item(start.is_some(), line);
                        self.at += 1; // End(Item)
                        let tail = item.bold_tail.take();
                        items.push(item);
                        // a bold line under an item ends its list and heads the next one
                        if let Some(text) = tail {
                            out.push(Block::List {
                                items: std::mem::take(&mut items),
                            });
                            out.push(Block::Para {
                                text,
                                line: line + 1,
                                pseudo: true,
                                comments: Vec::new(),
                            });
                        }
                    }
                    self.at += 1; // End(List)
                    if !items.is_empty() {
                        out.push(Block::List { items });
                    }
                }
                Event::Start(Tag::Table(_)) => {
                    let rows = self.table();
                    out.push(Block::Table { rows, line });
                }
                // a quote, a footnote, a definition: its content is what counts
                Event::Start(_) => {
                    out.extend(self.blocks());
                    self.at += 1;
                }
                _ => {}
            }
            self.depth -= usize::from(container);
        }
        out
    }

    /// The words of a container too deep to read as blocks, up to and past its end.
    fn flatten(&mut self) -> String {
        let mut depth = 1usize;
        let mut words: Vec<String> = Vec::new();
        while let Some((e, _)) = self.events.get(self.at) {
            self.at += 1;
            match e {
                Event::Start(_) => depth += 1,
                Event::End(_) => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Event::Text(t) | Event::Code(t) => words.push(t.trim().to_string()),
                _ => {}
            }
        }
        words.retain(|w| !w.is_empty());
        words.join(" ")
    }

    /// The text of a code, HTML or metadata block, up to and past its end.
    fn raw_text(&mut self) -> String {
        let mut text = String::new();
        while let Some((e, _)) = self.events.get(self.at) {
            self.at += 1;
            match e {
                Event::Text(t) | Event::Html(t) => text.push_str(t),
                Event::End(_) => break,
                _ => {}
            }
        }
        text
    }

    fn item(&mut self, ordered: bool, line: usize) -> Item {
        let mut inl = self.inline();
        if inl.text.is_empty() && matches!(self.peek(), Some(Event::Start(Tag::Paragraph))) {
            self.at += 1;
            let mut first = self.inline();
            self.at += 1;
            let bold_tail = first.take_bold_tail();
            inl.text = first.text;
            inl.checked = inl.checked.or(first.checked);
            inl.comments.extend(first.comments);
            let blocks = self.blocks();
            return Item {
                line,
                checked: inl.checked,
                ordered,
                text: inl.text,
                comments: inl.comments,
                blocks,
                bold_tail,
            };
        }
        let bold_tail = inl.take_bold_tail();
        let blocks = self.blocks();
        Item {
            line,
            checked: inl.checked,
            ordered,
            text: inl.text,
            comments: inl.comments,
            blocks,
            bold_tail,
        }
    }

    fn table(&mut self) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut row: Vec<String> = Vec::new();
        while let Some((e, _)) = self.events.get(self.at).cloned() {
            self.at += 1;
            match e {
                Event::Start(Tag::TableCell) => {
                    let inl = self.inline();
                    self.at += 1;
                    row.push(inl.text);
                }
                Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                    rows.push(std::mem::take(&mut row));
                }
                Event::End(TagEnd::Table) => break,
                _ => {}
            }
        }
        rows
    }

    /// Inline events up to the next block-level event (not consumed).
    fn inline(&mut self) -> Inline {
        let mut inl = Inline::default();
        let mut strong = 0usize;
        let mut links: Vec<(String, usize)> = Vec::new();
        let mut comment: Option<String> = None;
        while let Some(e) = self.peek() {
            if !is_inline(e) {
                break;
            }
            let e = e.clone();
            self.at += 1;
            if let Some(c) = comment.as_mut() {
                let piece = match &e {
                    Event::InlineHtml(h) | Event::Text(h) | Event::Code(h) => h.to_string(),
                    Event::SoftBreak | Event::HardBreak => " ".into(),
                    _ => String::new(),
                };
                c.push_str(&piece);
                if piece.contains("-->") {
                    let c = comment.take().unwrap_or_default();
                    push_comment(&mut inl.comments, &c);
                }
                continue;
            }
            let words = |inl: &mut Inline, s: &str| {
                if strong == 0 && s.chars().any(|c| !c.is_whitespace() && c != ':') {
                    inl.plain = true;
                    inl.line_plain = true;
                } else if strong > 0 && !s.trim().is_empty() {
                    inl.strong = true;
                    inl.line_strong = true;
                }
                inl.text.push_str(s);
            };
            match e {
                Event::Text(t) => words(&mut inl, &t),
                Event::Code(t) => {
                    let ticks = if t.contains('`') { "`` " } else { "`" };
                    let close = if t.contains('`') { " ``" } else { "`" };
                    words(&mut inl, &format!("{ticks}{t}{close}"));
                }
                Event::InlineMath(t) | Event::DisplayMath(t) => words(&mut inl, &t),
                Event::InlineHtml(h) | Event::Html(h) => {
                    let lower = h.to_lowercase();
                    if h.starts_with("<!--") {
                        if h.contains("-->") {
                            push_comment(&mut inl.comments, &h);
                        } else {
                            comment = Some(h.to_string());
                        }
                    } else if lower.starts_with("<br") {
                        inl.text.push(' ');
                    } else {
                        words(&mut inl, &h);
                    }
                }
                Event::SoftBreak | Event::HardBreak => {
                    inl.text.push(' ');
                    inl.line_start = inl.text.len();
                    inl.line_plain = false;
                    inl.line_strong = false;
                }
                Event::TaskListMarker(done) => inl.checked = Some(done),
                Event::FootnoteReference(r) => words(&mut inl, &format!("[^{r}]")),
                Event::Start(Tag::Strong) => strong += 1,
                Event::End(TagEnd::Strong) => strong = strong.saturating_sub(1),
                Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                    links.push((dest_url.to_string(), inl.text.len()));
                }
                Event::End(TagEnd::Link | TagEnd::Image) => {
                    if let Some((url, from)) = links.pop() {
                        let shown = inl.text.get(from..).unwrap_or("");
                        let anchor = url.starts_with('#');
                        let bare = url.trim_start_matches("mailto:");
                        if !url.is_empty() && !anchor && !shown.contains(bare) {
                            words(&mut inl, &format!(" ({url})"));
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(c) = comment {
            push_comment(&mut inl.comments, &c);
        }
        let lead = inl.text.len() - inl.text.trim_start().len();
        inl.line_start = inl.line_start.saturating_sub(lead);
        inl.text = inl.text.trim().to_string();
        inl
    }
}

fn push_comment(out: &mut Vec<String>, raw: &str) {
    let t = raw
        .trim()
        .trim_start_matches("<!--")
        .trim_end_matches("-->")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if !t.is_empty() {
        out.push(t);
    }
}

fn para(inl: Inline, line: usize) -> Block {
    let pseudo = inl.strong && !inl.plain && inl.text.chars().count() <= 80;
    Block::Para {
        text: inl.text,
        line,
        pseudo,
        comments: inl.comments,
    }
}

// ── The runbook's shape ─────────────────────────────────────────────────────────────────────────

#[derive(Debug, Default, Clone)]
struct StepOut {
    title: String,
    /// The instruction, one chunk per paragraph, list or code block, in the document's order.
    instruction: Vec<String>,
    /// The one shell command that the item is, when it is exactly one.
    command: Option<String>,
    /// How many code blocks the instruction holds.
    codes: usize,
}

#[derive(Debug)]
struct PhaseOut {
    title: String,
    section: Option<String>,
    steps: Vec<StepOut>,
    rollback: bool,
    /// The "Decide whether to roll back" phase of a triggers heading.
    decision: bool,
    /// Whether a decision phase holds more than its triggers (then it is written).
    needed: bool,
}

#[derive(Debug)]
struct TriggerGroup {
    heading: String,
    titles: Vec<String>,
}

#[derive(Debug)]
struct Doc {
    title: String,
    description: Option<String>,
    triggers: Vec<TriggerGroup>,
    phases: Vec<PhaseOut>,
    rollback_title: Option<String>,
    rollback_only: bool,
    /// What was not imported: line and a few words on what it was.
    leftovers: Vec<(usize, String)>,
}

impl Doc {
    fn forward(&self) -> impl Iterator<Item = &PhaseOut> {
        self.phases
            .iter()
            .filter(|p| !p.rollback && (!p.decision || p.needed))
    }
    fn rollback(&self) -> impl Iterator<Item = &PhaseOut> {
        self.phases.iter().filter(|p| p.rollback)
    }
}

/// The blocks under one heading (or under none), with where that heading sits.
struct Section {
    kind: Kind,
    /// The heading texts from the outermost one (below the title) down to this section's own.
    path: Vec<String>,
    /// Under a heading that names a procedure ("Release procedure", "Mitigation", "3. Deploy").
    procedure: bool,
    /// Whether the lists of a triggers section call for a rollback (unless a lead-in says).
    calls: bool,
    /// How many of `path` are real headings (not bold pseudo-headings).
    headings: usize,
    blocks: Vec<Block>,
}

/// Words of a heading that announce a procedure: its plain bullets are steps.
fn is_procedure(text: &str) -> bool {
    let lower = text.to_lowercase();
    let words = words_of(&lower);
    let numbered = strip_numbering(text) != text.trim()
        || (words.first().is_some_and(|w| w == "step")
            && words
                .get(1)
                .is_some_and(|w| w.chars().all(|c| c.is_ascii_digit())));
    const PREFIXES: &[&str] = &[
        "procedure",
        "process",
        "step",
        "execut",
        "instruction",
        "playbook",
        "runbook",
        "checklist",
        "task",
        "action",
        "cutover",
        "rollout",
        "upgrad",
        "migrat",
        "mitigat",
        "remediat",
        "diagnos",
        "triage",
        "investigat",
        "resolution",
        "recover",
        "restor",
        "failover",
        "verif",
        "validat",
        "check",
        "prerequisite",
        "preparation",
        "prep",
        "setup",
        "cleanup",
        "backup",
        "smoke",
    ];
    numbered
        || has_prefix(&words, PREFIXES)
        || ["how to", "roll out", "set up", "clean up", "pre-", "post-"]
            .iter()
            .any(|p| lower.contains(p))
}

/// Whether a lead-in ("Roll back immediately if:", "Do NOT roll back if:", "Consider escalation
/// first if:") calls for a rollback; `None` when it does not say.
fn calls_for_rollback(text: &str) -> Option<bool> {
    let lower = text.to_lowercase();
    let w = words_of(&lower);
    let not = w.iter().any(|x| {
        matches!(
            x.as_str(),
            "not" | "don" | "dont" | "never" | "without" | "avoid" | "instead" | "before"
        )
    }) || lower.contains("n't");
    let hold_off = has_prefix(&w, &["escalat", "consider", "investigat", "monitor", "wait"]);
    if not || hold_off {
        return Some(false);
    }
    if mentions_rollback(&lower) || has_prefix(&w, &["revert", "abort"]) {
        return Some(true);
    }
    None
}

fn build(source: &str, blocks: Vec<Block>) -> Result<Doc, String> {
    let mut leftovers: Vec<(usize, String)> = Vec::new();
    let mut front_title: Option<String> = None;
    let h1s = blocks
        .iter()
        .filter(|b| matches!(b, Block::Heading { level: 1, .. }))
        .count();
    let mut title: Option<String> = None;
    let mut h1_text: Option<String> = None;
    let mut sections: Vec<Section> = vec![Section {
        kind: Kind::Normal,
        path: Vec::new(),
        procedure: false,
        calls: true,
        headings: 0,
        blocks: Vec::new(),
    }];
    // The section right under the title, whose first paragraph describes the runbook.
    let mut under_title: Option<usize> = None;
    struct Level {
        level: u8,
        text: String,
        kind: Kind,
        procedure: bool,
        calls: bool,
    }
    let mut stack: Vec<Level> = Vec::new();
    for block in blocks {
        let (level, text) = match &block {
            Block::FrontMatter { text, line } => {
                let (t, unused) = front_matter(text);
                front_title = t;
                if !unused.is_empty() {
                    leftovers.push((
                        *line,
                        format!("front matter {} (only name or title is used)", unused.join(", ")),
                    ));
                }
                continue;
            }
            Block::Heading { level, text, .. } => (*level, text.clone()),
            Block::Para {
                text, pseudo: true, ..
            } => (7, text.clone()),
            _ => {
                sections.last_mut().expect("a section").blocks.push(block);
                continue;
            }
        };
        if level == 1 && h1s == 1 && h1_text.is_none() && !text.is_empty() {
            h1_text = Some(text.clone());
            title = Some(text);
            stack.clear();
            under_title = Some(sections.len());
            sections.push(Section {
                kind: Kind::Normal,
                path: Vec::new(),
                procedure: false,
                calls: true,
                headings: 0,
                blocks: Vec::new(),
            });
            continue;
        }
        while stack.last().is_some_and(|l| l.level >= level) {
            stack.pop();
        }
        let parent = stack.last();
        let parent_kind = parent.map_or(Kind::Normal, |l| l.kind);
        let clean = strip_colon(strip_numbering(&text)).to_string();
        let kind = classify(&clean, parent_kind);
        let procedure = parent.is_some_and(|l| l.procedure) || is_procedure(&text);
        let calls = calls_for_rollback(&clean).unwrap_or(parent.is_none_or(|l| l.calls));
        stack.push(Level {
            level,
            text: clean,
            kind,
            procedure,
            calls,
        });
        sections.push(Section {
            kind,
            path: stack
                .iter()
                .map(|l| l.text.clone())
                .filter(|t| !t.is_empty())
                .collect(),
            procedure,
            calls,
            headings: stack.iter().filter(|l| l.level < 7 && !l.text.is_empty()).count(),
            blocks: Vec::new(),
        });
    }
    let mut description = None;
    let title = match (front_title, title) {
        (Some(f), h1) => {
            // The `#` heading says what the front matter's name does not: the description.
            description = h1.filter(|h| *h != f);
            f
        }
        (None, Some(h1)) => h1,
        (None, None) => title_from_file(source),
    };
    if let Some(i) = under_title
        && let Some(Block::Para {
            text,
            pseudo: false,
            comments,
            ..
        }) = sections[i].blocks.first()
        && description.is_none()
        && comments.is_empty()
        // "Steps:" heads the list below it; it does not describe the runbook
        && !(text.ends_with(':') && matches!(sections[i].blocks.get(1), Some(Block::List { .. })))
    {
        description = Some(text.clone());
        sections[i].blocks.remove(0);
    }

    let mut doc = Doc {
        title: title.clone(),
        description,
        triggers: Vec::new(),
        phases: Vec::new(),
        rollback_title: None,
        rollback_only: false,
        leftovers,
    };
    // Sections only when the checklist nests headings (a `##` above a `###`).
    let mut nested = false;
    // Forward phases are titled once `nested` is known: (phase index, path, label).
    let mut forward_titles: Vec<(usize, Vec<String>, Option<String>)> = Vec::new();
    // The decision phase that consecutive triggers headings share.
    let mut decision: Option<usize> = None;
    for sec in &sections {
        match sec.kind {
            Kind::Normal | Kind::Rollback => {
                let rollback = sec.kind == Kind::Rollback;
                let groups = section_groups(sec, &title, rollback, &mut doc.leftovers);
                if groups.is_empty() {
                    continue;
                }
                decision = None;
                if !rollback {
                    nested |= sec.headings >= 2;
                    for g in groups {
                        forward_titles.push((doc.phases.len(), sec.path.clone(), g.label));
                        doc.phases.push(PhaseOut {
                            title: String::new(),
                            section: None,
                            steps: g.steps,
                            rollback: false,
                            decision: false,
                            needed: false,
                        });
                    }
                    continue;
                }
                // The outermost rollback heading names the procedure; the headings below it
                // name its phases.
                let outer = sec
                    .path
                    .iter()
                    .position(|t| classify(t, Kind::Normal) == Kind::Rollback)
                    .unwrap_or(sec.path.len().saturating_sub(1));
                if doc.rollback_title.is_none() {
                    let t = sec.path.get(outer).cloned().unwrap_or("Rollback".into());
                    doc.rollback_title = Some(strip_colon(&t).to_string());
                }
                let below = sec.path.get(outer + 1..).unwrap_or(&[]).join(" / ");
                let heading = match (below.is_empty(), sec.path.get(outer)) {
                    (false, _) => below.clone(),
                    (true, Some(h)) => strip_colon(h).to_string(),
                    (true, None) => "Rollback".to_string(),
                };
                for g in groups {
                    let title = match (g.label, below.is_empty()) {
                        (Some(l), true) => l,
                        (Some(l), false) => format!("{below} / {l}"),
                        (None, _) => heading.clone(),
                    };
                    doc.phases.push(PhaseOut {
                        title,
                        section: None,
                        steps: g.steps,
                        rollback: true,
                        decision: false,
                        needed: false,
                    });
                }
            }
            Kind::Triggers => {
                let t = trigger_section(sec, &mut doc.leftovers);
                if t.titles.is_empty() && t.instruction.is_empty() {
                    continue;
                }
                // The heading that opened the triggers names them and their decision.
                let opened = sec
                    .path
                    .iter()
                    .position(|h| classify(h, Kind::Normal) == Kind::Triggers)
                    .map_or(sec.path.len(), |i| i + 1);
                let path = sec.path[..opened].to_vec();
                if !t.titles.is_empty() {
                    doc.triggers.push(TriggerGroup {
                        heading: path.last().cloned().unwrap_or_default(),
                        titles: t.titles,
                    });
                }
                let at = match decision {
                    Some(at) => at,
                    None => {
                        nested |= path.len() >= 2 && sec.headings >= 2;
                        forward_titles.push((doc.phases.len(), path, None));
                        doc.phases.push(PhaseOut {
                            title: String::new(),
                            section: None,
                            steps: vec![StepOut {
                                title: "Decide whether to roll back".into(),
                                ..StepOut::default()
                            }],
                            rollback: false,
                            decision: true,
                            needed: false,
                        });
                        doc.phases.len() - 1
                    }
                };
                decision = Some(at);
                let p = &mut doc.phases[at];
                p.needed |= t.needed;
                p.steps[0].instruction.extend(t.instruction);
            }
        }
    }
    for (i, path, label) in forward_titles {
        let (phase_title, section) = match path.as_slice() {
            [] => (title.clone(), None),
            [only] => (only.clone(), nested.then(|| only.clone())),
            [outer, rest @ ..] => (rest.join(" / "), Some(outer.clone())),
        };
        let phase_title = strip_colon(&phase_title).to_string();
        doc.phases[i].title = match label {
            Some(l) => format!("{phase_title} / {l}"),
            None => phase_title,
        };
        doc.phases[i].section = section;
    }

    let forward = doc.phases.iter().any(|p| !p.rollback && !p.decision);
    let rollback = doc.phases.iter().any(|p| p.rollback);
    if !forward && rollback {
        // A rollback playbook is a procedure to run: its steps are the forward phases, and the
        // conditions for running it are read in its decision step, not watched as triggers.
        doc.rollback_only = true;
        doc.rollback_title = None;
        doc.triggers.clear();
        for p in &mut doc.phases {
            p.rollback = false;
            p.needed = true;
        }
    }
    if doc.forward().next().is_none() {
        return Err(
            "no checklist items found: import turns `- [ ]` items, numbered procedures, the \
             bullets and commands of procedure headings into steps, and this file has none"
                .into(),
        );
    }
    Ok(doc)
}

/// The runbook title from YAML front matter (`name`, else `title`), and the keys not used.
fn front_matter(text: &str) -> (Option<String>, Vec<String>) {
    let mut name = None;
    let mut title = None;
    let mut unused = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t', '-', '#']) || line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim().trim_matches(['"', '\'']).trim().to_string();
        match key {
            "name" if !value.is_empty() => name = Some(value),
            "title" if !value.is_empty() => title = Some(value),
            _ => unused.push(format!("`{key}`")),
        }
    }
    let used = name.or(title);
    (used, unused)
}

/// A phase's worth of steps: under the section's own heading, or under an item that labels them
/// ("Immediate actions:", "Mock Run").
struct Group {
    label: Option<String>,
    steps: Vec<StepOut>,
}

/// How a section's lists are read.
#[derive(Clone, Copy)]
struct Style {
    /// Every item is a step (a rollback procedure).
    all: bool,
    /// Plain bullets are steps (a procedure heading without checkboxes or numbers).
    plain: bool,
}

fn list_items(blocks: &[Block]) -> impl Iterator<Item = &Item> {
    blocks.iter().flat_map(|b| match b {
        Block::List { items } => items.as_slice(),
        _ => &[],
    })
}

/// Every item of the lists in `blocks`, at any depth.
fn all_items<'b>(blocks: &'b [Block], out: &mut Vec<&'b Item>) {
    for i in list_items(blocks) {
        out.push(i);
        all_items(&i.blocks, out);
    }
}

/// "<release-tag>", "<!-- -->", "…": an item that holds no words to act on.
fn is_placeholder(text: &str) -> bool {
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
fn colon_label(text: &str) -> bool {
    let t = text.trim();
    t.ends_with(':') && words_of(t).len() <= 4
}

fn is_label(item: &Item, style: Style) -> bool {
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

fn is_step(item: &Item, style: Style) -> bool {
    item.checked.is_some() || item.ordered || style.all || style.plain
}

/// A long text cut for a title: at the end of its first sentence, else at a word.
fn shorten(text: &str) -> (String, bool) {
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

/// Code blocks in these languages are shell commands.
fn is_shell(lang: &str) -> bool {
    matches!(
        lang,
        "" | "sh" | "bash" | "shell" | "console" | "zsh" | "shell-session" | "terminal" | "ksh"
    )
}

/// The one command of a code block, when it holds exactly one (comments and blank lines aside;
/// a `$ ` prompt dropped, `\` continuations joined).
fn one_command_in(code: &str) -> Option<String> {
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
fn command_span(text: &str) -> Option<String> {
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
fn one_command(text: &str, blocks: &[Block]) -> Option<String> {
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

fn code_chunk(text: &str) -> String {
    text.trim_end_matches('\n').to_string()
}

fn table_lines(rows: &[Vec<String>]) -> String {
    rows.iter().map(|r| r.join(" | ")).collect::<Vec<_>>().join("\n")
}

/// An item as instruction text: `- words`, its nested blocks indented below it.
fn item_lines(item: &Item, depth: usize, out: &mut Vec<String>) {
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

fn block_lines(b: &Block, depth: usize, out: &mut Vec<String>) {
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
fn chunk(b: &Block) -> String {
    let mut lines = Vec::new();
    block_lines(b, 0, &mut lines);
    lines.join("\n")
}

fn snippet(text: &str) -> String {
    let one = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 60 {
        let cut: String = one.chars().take(57).collect();
        format!("\"{}…\"", cut.trim_end())
    } else {
        format!("\"{one}\"")
    }
}

fn block_kind(b: &Block) -> &'static str {
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

fn block_words(b: &Block) -> String {
    match b {
        Block::List { items } => items.first().map(|i| i.text.clone()).unwrap_or_default(),
        Block::Table { rows, .. } => rows.first().map(|r| r.join(" | ")).unwrap_or_default(),
        other => chunk(other),
    }
}

/// Builds the steps of one section (or of one label's items).
struct Steps<'l> {
    style: Style,
    groups: Vec<Group>,
    /// Text before the first step, for the first step's instruction: (line, chunk).
    pending: Vec<(usize, String)>,
    /// Whether a block was read as text of the section (for a section without steps).
    leftovers: &'l mut Vec<(usize, String)>,
}

impl Steps<'_> {
    fn last_step(&mut self) -> Option<&mut StepOut> {
        self.groups.iter_mut().rev().find_map(|g| g.steps.last_mut())
    }

    fn context(&mut self, line: usize, text: String) {
        if text.is_empty() {
            return;
        }
        match self.last_step() {
            Some(s) => s.instruction.push(text),
            None => self.pending.push((line, text)),
        }
    }

    /// The group that a step outside any label goes to: the last one, unless it is a label's.
    fn open_group(&mut self) -> usize {
        if self.groups.last().is_none_or(|g| g.label.is_some()) {
            self.groups.push(Group {
                label: None,
                steps: Vec::new(),
            });
        }
        self.groups.len() - 1
    }

    fn items(&mut self, items: &[Item], lead: Option<&str>, prefix: &[String], group: Option<usize>) {
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

    fn item(&mut self, item: &Item, lead: Option<&str>, prefix: &[String], group: Option<usize>) {
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
fn item_steps(item: &Item, lead: Option<&str>, prefix: &[String], parent: Option<&str>) -> Vec<StepOut> {
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
fn has_box(cell: &str) -> bool {
    cell.contains(['☐', '☑', '☒']) || cell.contains("[ ]") || cell.contains("[x]")
}

fn section_groups(
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
    let mut lead: Option<String> = None;
    for (i, b) in blocks.iter().enumerate() {
        if let Some(text) = lead_in(blocks, i) {
            lead = Some(text.to_string());
            continue;
        }
        match b {
            Block::List { items } => {
                let l = lead.take();
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
        }
    }
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

struct TriggersOut {
    titles: Vec<String>,
    instruction: Vec<String>,
    /// Whether the section says more than its triggers (what not to roll back for, a matrix).
    needed: bool,
}

fn trigger_section(sec: &Section, leftovers: &mut Vec<(usize, String)>) -> TriggersOut {
    let mut out = TriggersOut {
        titles: Vec::new(),
        instruction: Vec::new(),
        needed: false,
    };
    let blocks = &sec.blocks;
    let own = sec.path.last().cloned().unwrap_or_default();
    let mut lead: Option<String> = None;
    for (i, b) in blocks.iter().enumerate() {
        if let Some(text) = lead_in(blocks, i) {
            lead = Some(text.to_string());
            continue;
        }
        match b {
            Block::List { items } => {
                let label = lead.take();
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
        }
    }
    out
}

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

/// The `# automate:` comment for a step, where its own words say what a machine could do: a
/// duration to watch ("Monitor error rates for 15 minutes"), a migration that may not be undone.
/// Nothing is guessed from a keyword alone: a step whose words name no duration or command gets
/// no suggestion. `phase_watch` is the phase title's duration ("Monitoring (24 hours)"), offered
/// once per phase.
fn step_hint(title: &str, phase_watch: &mut Option<String>) -> Option<String> {
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
    let first = w.first().map_or("", String::as_str);
    if ["apply", "run", "execute", "perform"].contains(&first) && has_prefix(&w, &["migrat"]) {
        return Some(format!(
            "automate: a migration: if it cannot be undone, mark its step irreversible = true; \
             {SEE_FORMAT}"
        ));
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

/// The `# automate:` comment for an operator-raised trigger whose words give a comparison and a
/// threshold ("Error rate exceeds 1% for 5 minutes"). A comparison in parentheses qualifies
/// something else ("Performance slightly degraded (< 5%)") and suggests nothing.
fn trigger_hint(title: &str) -> Option<String> {
    let outside = outside_parentheses(title);
    let w = words_of(&outside);
    let comparison = w
        .iter()
        .position(|x| ABOVE.contains(&x.as_str()) || BELOW.contains(&x.as_str()));
    let symbolic = outside.find(['>', '<']);
    if comparison.is_none() && symbolic.is_none() {
        return None;
    }
    let below = match (comparison, symbolic) {
        (_, Some(at)) => outside[at..].starts_with('<'),
        (Some(i), None) => BELOW.contains(&w[i].as_str()),
        (None, None) => false,
    };
    let threshold = threshold_in(&outside)?;
    let metric = derive_id(&measured(&outside)).replace('-', "_");
    let metric = if metric.is_empty() || metric.len() > 32 {
        "my_metric".to_string()
    } else {
        metric
    };
    let dir = if below { "below" } else { "above" };
    let mut s = format!("automate: a metric trigger (e.g. metric = \"{metric}\", {dir} = {threshold}");
    if let Some(d) = window_in(&outside) {
        let _ = write!(s, ", for = \"{d}\"");
    }
    let _ = write!(s, ", with a [[metric]] of that id); {SEE_FORMAT}");
    Some(s)
}

/// `text` without what stands in parentheses.
fn outside_parentheses(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
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

/// A TOML multi-line basic string holding `s` as the tool will read it (see `toml_str`).
fn toml_text(s: &str) -> String {
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
fn toml_command(cmd: &str) -> String {
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

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Writes a phase's steps; returns how many `# automate:` hints it wrote.
fn steps(o: &mut String, p: &PhaseOut, table: &str) -> usize {
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

/// A paragraph ending in ':' right before a list, without comments: the list's lead-in ("Roll back
/// immediately if:").
fn lead_in(blocks: &[Block], i: usize) -> Option<&str> {
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
    fn lead_ins_say_whether_they_call_for_a_rollback() {
        assert_eq!(calls_for_rollback("Roll back immediately if:"), Some(true));
        assert_eq!(calls_for_rollback("Execute rollback immediately if:"), Some(true));
        assert_eq!(calls_for_rollback("Do NOT roll back if:"), Some(false));
        assert_eq!(calls_for_rollback("DO NOT rollback if"), Some(false));
        assert_eq!(calls_for_rollback("Don't roll back when"), Some(false));
        assert_eq!(calls_for_rollback("Consider escalation first if:"), Some(false));
        assert_eq!(calls_for_rollback("Escalation Before Rollback"), Some(false));
        assert_eq!(calls_for_rollback("Examples:"), None);
    }

    #[test]
    fn commands_are_suggested_only_when_the_text_is_one() {
        assert_eq!(
            one_command_in("kubectl get pods\n").as_deref(),
            Some("kubectl get pods")
        );
        assert_eq!(
            one_command_in("# comment\n$ make release\n").as_deref(),
            Some("make release")
        );
        assert_eq!(
            one_command_in("docker run \\\n  --rm x\n").as_deref(),
            Some("docker run \\\n  --rm x")
        );
        assert_eq!(one_command_in("a\nb\n"), None);
        assert_eq!(
            command_span("`git push --tags`").as_deref(),
            Some("git push --tags")
        );
        assert_eq!(command_span("`./release.sh`:").as_deref(), Some("./release.sh"));
        assert_eq!(command_span("`CHANGELOG.md`"), None);
        assert_eq!(command_span("Run `make test`"), None);
        // no keyword guesses
        let mut none = None;
        assert_eq!(step_hint("Kill the inactive pod", &mut none), None);
        assert_eq!(step_hint("Screenshot testgrid boards", &mut none), None);
        assert_eq!(trigger_hint("Performance slightly degraded (< 5%)"), None);
        assert!(trigger_hint("Error rate > 5% for 2 minutes").is_some_and(|h| h.contains("above = 0.05")));
    }

    #[test]
    fn placeholders_and_long_titles() {
        assert!(is_placeholder("<add more items here>"));
        assert!(is_placeholder(""));
        assert!(!is_placeholder("Tag v<version>"));
        assert!(!is_placeholder("<b>Bold</b> words"));
        let long = "Cut the release branch from main. ".repeat(10);
        let (title, cut) = shorten(long.trim());
        assert!(cut);
        assert_eq!(title, "Cut the release branch from main.");
        assert_eq!(shorten("Short"), ("Short".to_string(), false));
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
