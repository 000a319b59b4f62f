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
//!
//! The work is split as it happens: `markdown` reads the Markdown into blocks; `shape` finds the
//! runbook's shape in them (title, phases, rollback), with `steps` (a section's steps),
//! `instructions` (a step's text and its one command) and `triggers` (trigger sections, what a
//! heading announces); `hints` words the `# automate:` suggestions; `write` writes the TOML. The
//! command itself (printing, exit status) is `cli`'s.

mod hints;
mod instructions;
mod markdown;
mod shape;
mod steps;
mod triggers;
mod write;

use std::path::Path;

use super::parse::derive_id;
use hints::*;
use instructions::*;
use markdown::*;
use shape::*;
use steps::*;
use triggers::*;
use write::*;

/// The largest checklist read; anything bigger is surely not a checklist.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The longest explicit phase id written (cut at a word boundary).
const MAX_PHASE_ID: usize = 40;
/// The longest trigger id written: `plan` lines them up in a 16-wide column.
const MAX_TRIGGER_ID: usize = 16;
/// A step title longer than this is cut at a sentence or word; the whole text goes into the
/// instruction.
const MAX_TITLE: usize = 120;

/// Reads and converts the checklist at `checklist`; the error says what is wrong, after the
/// file's name (`FILE: message`).
pub fn import(checklist: &Path) -> Result<Imported, String> {
    let file = checklist.display().to_string();
    let text = read(checklist).map_err(|message| format!("{file}: {message}"))?;
    let name = checklist
        .file_name()
        .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
    convert(&name, &text).map_err(|message| format!("{file}: {message}"))
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

#[cfg(test)]
mod tests;
