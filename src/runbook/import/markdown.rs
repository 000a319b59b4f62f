//! Markdown, as blocks: `pulldown-cmark`'s events (task lists, tables, front matter) gathered into
//! headings, paragraphs, lists with their items, code, tables and quotes, each with its line.

use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

#[derive(Debug, Clone)]
pub(super) enum Block {
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
    pub(super) fn line(&self) -> usize {
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
pub(super) struct Item {
    pub(super) line: usize,
    /// `Some(false)` for `- [ ]`, `Some(true)` for `- [x]`.
    pub(super) checked: Option<bool>,
    pub(super) ordered: bool,
    /// The item's own words (its first paragraph), as inline Markdown is read: emphasis markers
    /// dropped, code spans in backticks, a link's address after its text.
    pub(super) text: String,
    /// HTML comments written in the item's words (`<!-- paste link -->`).
    pub(super) comments: Vec<String>,
    /// Everything nested in the item: paragraphs, code, sub-lists.
    pub(super) blocks: Vec<Block>,
    /// A bold line written right under the item's words, which heads what follows the item.
    pub(super) bold_tail: Option<String>,
}

/// The inline content of a paragraph, heading, item or table cell.
#[derive(Default)]
pub(super) struct Inline {
    pub(super) text: String,
    pub(super) checked: Option<bool>,
    pub(super) comments: Vec<String>,
    /// Some words outside `**…**` (besides a `:`).
    pub(super) plain: bool,
    pub(super) strong: bool,
    /// Where the last line starts in `text`, and whether that line has words outside and inside
    /// `**…**`: a bold last line ("**Do NOT roll back if:**" right under an item) is a heading
    /// of what follows, not part of these words.
    pub(super) line_start: usize,
    pub(super) line_plain: bool,
    pub(super) line_strong: bool,
}

impl Inline {
    /// Splits off a bold last line (`**Do NOT roll back if:**` written right under an item).
    pub(super) fn take_bold_tail(&mut self) -> Option<String> {
        if self.line_start == 0 || self.line_plain || !self.line_strong {
            return None;
        }
        let tail = self.text.get(self.line_start..)?.trim().to_string();
        self.text.truncate(self.line_start);
        self.text = self.text.trim().to_string();
        Some(tail)
    }
}

pub(super) struct Reader<'a> {
    pub(super) events: Vec<(Event<'a>, Range<usize>)>,
    pub(super) at: usize,
    pub(super) line_starts: Vec<usize>,
    /// How many lists, items and quotes enclose the block being read.
    pub(super) depth: usize,
}

/// Deeper than this, a list or quote is read as one paragraph of its words: no checklist nests
/// so deep, and the reader must not run out of stack on a file that does.
pub(super) const MAX_NESTING: usize = 64;

pub(super) fn markdown(text: &str) -> Vec<Block> {
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

pub(super) fn is_inline(e: &Event) -> bool {
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
    pub(super) fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    pub(super) fn peek(&self) -> Option<&Event<'a>> {
        self.events.get(self.at).map(|(e, _)| e)
    }

    pub(super) fn here(&self) -> usize {
        let offset = self.events.get(self.at).map_or(0, |(_, r)| r.start);
        self.line(offset)
    }

    /// Blocks up to the end of the enclosing container (left for the caller) or of the text.
    pub(super) fn blocks(&mut self) -> Vec<Block> {
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
    pub(super) fn flatten(&mut self) -> String {
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
    pub(super) fn raw_text(&mut self) -> String {
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

    pub(super) fn item(&mut self, ordered: bool, line: usize) -> Item {
        let mut inl = self.inline();
        let bold_tail = if inl.text.is_empty() && matches!(self.peek(), Some(Event::Start(Tag::Paragraph))) {
            self.at += 1;
            let mut first = self.inline();
            self.at += 1;
            let bold_tail = first.take_bold_tail();
            inl.text = first.text;
            inl.checked = inl.checked.or(first.checked);
            inl.comments.extend(first.comments);
            bold_tail
        } else {
            inl.take_bold_tail()
        };
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

    pub(super) fn table(&mut self) -> Vec<Vec<String>> {
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
    pub(super) fn inline(&mut self) -> Inline {
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

pub(super) fn push_comment(out: &mut Vec<String>, raw: &str) {
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

pub(super) fn para(inl: Inline, line: usize) -> Block {
    let pseudo = inl.strong && !inl.plain && inl.text.chars().count() <= 80;
    Block::Para {
        text: inl.text,
        line,
        pseudo,
        comments: inl.comments,
    }
}
