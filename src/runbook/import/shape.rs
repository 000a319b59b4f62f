//! The runbook's shape in the blocks: the title (front matter, `#`), the phases and their sections,
//! the rollback procedure, the triggers, and what is left over.

use super::*;

#[derive(Debug, Default, Clone)]
pub(super) struct StepOut {
    pub(super) title: String,
    /// The instruction, one chunk per paragraph, list or code block, in the document's order.
    pub(super) instruction: Vec<String>,
    /// The one shell command that the item is, when it is exactly one.
    pub(super) command: Option<String>,
    /// How many code blocks the instruction holds.
    pub(super) codes: usize,
}

#[derive(Debug)]
pub(super) struct PhaseOut {
    pub(super) title: String,
    pub(super) section: Option<String>,
    pub(super) steps: Vec<StepOut>,
    pub(super) rollback: bool,
    /// The "Decide whether to roll back" phase of a triggers heading.
    pub(super) decision: bool,
    /// Whether a decision phase holds more than its triggers (then it is written).
    pub(super) needed: bool,
}

#[derive(Debug)]
pub(super) struct TriggerGroup {
    pub(super) heading: String,
    pub(super) titles: Vec<String>,
}

#[derive(Debug)]
pub(super) struct Doc {
    pub(super) title: String,
    pub(super) description: Option<String>,
    pub(super) triggers: Vec<TriggerGroup>,
    pub(super) phases: Vec<PhaseOut>,
    pub(super) rollback_title: Option<String>,
    pub(super) rollback_only: bool,
    /// What was not imported: line and a few words on what it was.
    pub(super) leftovers: Vec<(usize, String)>,
}

impl Doc {
    pub(super) fn forward(&self) -> impl Iterator<Item = &PhaseOut> {
        self.phases
            .iter()
            .filter(|p| !p.rollback && (!p.decision || p.needed))
    }
    pub(super) fn rollback(&self) -> impl Iterator<Item = &PhaseOut> {
        self.phases.iter().filter(|p| p.rollback)
    }
}

/// The blocks under one heading (or under none), with where that heading sits.
pub(super) struct Section {
    pub(super) kind: Kind,
    /// The heading texts from the outermost one (below the title) down to this section's own.
    pub(super) path: Vec<String>,
    /// Under a heading that names a procedure ("Release procedure", "Mitigation", "3. Deploy").
    pub(super) procedure: bool,
    /// Whether the lists of a triggers section call for a rollback (unless a lead-in says).
    pub(super) calls: bool,
    /// How many of `path` are real headings (not bold pseudo-headings).
    pub(super) headings: usize,
    pub(super) blocks: Vec<Block>,
}

impl Section {
    /// The blocks under no heading (before the first, or right under the title).
    pub(super) fn untitled() -> Section {
        Section {
            kind: Kind::Normal,
            path: Vec::new(),
            procedure: false,
            calls: true,
            headings: 0,
            blocks: Vec::new(),
        }
    }
}

/// Words of a heading that announce a procedure: its plain bullets are steps.
pub(super) fn is_procedure(text: &str) -> bool {
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
pub(super) fn calls_for_rollback(text: &str) -> Option<bool> {
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

pub(super) fn build(source: &str, blocks: Vec<Block>) -> Result<Doc, String> {
    let mut leftovers: Vec<(usize, String)> = Vec::new();
    let mut front_title: Option<String> = None;
    let h1s = blocks
        .iter()
        .filter(|b| matches!(b, Block::Heading { level: 1, .. }))
        .count();
    let mut title: Option<String> = None;
    let mut h1_text: Option<String> = None;
    let mut sections: Vec<Section> = vec![Section::untitled()];
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
            sections.push(Section::untitled());
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
pub(super) fn front_matter(text: &str) -> (Option<String>, Vec<String>) {
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
