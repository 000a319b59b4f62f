//! Reading a journal back (for `resume` and `report`): every line an event, a torn last line
//! skipped and reported, anything else refused with the line that is wrong.

use std::path::Path;

use super::Record;

/// The largest journal read back (`report`, `resume`). A journal of a long, chatty run is a few
/// MiB; this is far beyond any, and keeps a wrong file from filling memory.
pub const MAX_JOURNAL_BYTES: u64 = 256 * 1024 * 1024;

/// Reads a journal back. A torn last line (power loss mid-write) is skipped and reported. A file
/// that is not a journal (or not a regular file, or beyond `MAX_JOURNAL_BYTES`) is refused with
/// an error that says so, of kind `InvalidData` (or `InvalidInput` for what is not a file).
pub fn read(path: &Path) -> std::io::Result<(Vec<Record>, Option<String>)> {
    use std::io::{Error, ErrorKind};
    let bytes = crate::runbook::read_regular_file(path, MAX_JOURNAL_BYTES).map_err(|e| match e {
        crate::runbook::ReadError::Io(e) => e,
        crate::runbook::ReadError::NotFound => Error::new(ErrorKind::NotFound, e.to_string()),
        crate::runbook::ReadError::PermissionDenied => Error::new(ErrorKind::PermissionDenied, e.to_string()),
        other => Error::new(ErrorKind::InvalidInput, other.to_string()),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        not_journal(&path.display().to_string(), line, "it is not text")
    })?;
    parse(&text, &path.display().to_string())
}

fn not_journal(name: &str, line: usize, why: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "{name}:{line}: this is not a runbook journal ({why}); give the journal.jsonl of a run, or its folder"
        ),
    )
}

/// A journal's text read back as `read` reads a file (the shared store's copy of a journal is
/// read by the same rules); `name` names it in errors, as the file's path does.
pub fn parse(text: &str, name: &str) -> std::io::Result<(Vec<Record>, Option<String>)> {
    use std::io::{Error, ErrorKind};
    let mut torn = None;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut records = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_end_matches('\n');
        if trimmed.is_empty() {
            continue;
        }
        match super::line::record(trimmed) {
            Ok(r) => records.push(r),
            // The writer starts every line with `{"ts":`; a last line cut short by a crash still does.
            Err(e) if i + 1 == lines.len() && !line.ends_with('\n') && trimmed.starts_with("{\"ts\":") => {
                torn = Some(format!("ignored a torn last line ({} bytes): {e}", trimmed.len()));
            }
            Err(e) => {
                // A line that is a journal event (an object with `ts` and `event`) which cannot be
                // read is a damaged journal; anything else means the file is something else.
                let value = serde_json::from_str::<serde_json::Value>(trimmed).ok();
                let event = value
                    .as_ref()
                    .filter(|v| v["ts"].is_string())
                    .and_then(|v| v["event"].as_str());
                return Err(match event {
                    Some(event) => Error::new(
                        ErrorKind::InvalidData,
                        format!("{name}:{}: a `{event}` event that cannot be read: {e}", i + 1),
                    ),
                    None => not_journal(
                        name,
                        i + 1,
                        "each line of a journal is an event, a JSON object with `ts` and `event`",
                    ),
                });
            }
        }
    }
    Ok((records, torn))
}
