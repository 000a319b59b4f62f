//! Reading a journal back on arbitrary bytes, as `resume` and `report` do: the reader, the run's
//! info and resume plan against a real runbook, the screen rebuilt from the events, and the report
//! in Markdown and JSON. Never panics, never hangs.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use runbook::journal::{read, report, resume};

/// The runbook the journals are resumed against: the seed plan, with every kind of step.
fn runbook() -> &'static Arc<runbook::runbook::Runbook> {
    static RB: OnceLock<Arc<runbook::runbook::Runbook>> = OnceLock::new();
    RB.get_or_init(|| {
        let text = include_str!("../../runbooks/production-rollout.toml");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks/production-rollout.toml");
        Arc::new(runbook::runbook::parse::parse_str(&path, text, &[]).expect("the seed runbook is valid"))
    })
}

/// The reader takes a path: one file per fuzzing process, in memory where there is a tmpfs.
fn journal_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("runbook-fuzz-journal-{}.jsonl", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = journal_file();
    std::fs::write(path, data).expect("write the journal file");
    let Ok((records, torn)) = read(path) else {
        return;
    };
    let rb = runbook();
    if let Some(info) = resume::info(&records) {
        let _ = resume::resumable(&info);
        let _ = resume::changes(&records, &info.sha256, rb);
    }
    let _ = resume::plan(&records, rb);
    // What `resume` shows: the screen rebuilt from the journal's events.
    let mut app =
        runbook::tui::state::App::new(rb.clone(), runbook::engine::Mode::Resume, &[], String::new());
    for r in &records {
        app.apply(runbook::engine::Update::Event(r.clone()));
    }
    let r = report::build("journal.jsonl", &records, torn);
    let _ = report::markdown(&r);
    let _ = serde_json::to_string_pretty(&r);
});
