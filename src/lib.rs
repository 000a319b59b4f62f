//! `runbook`: drive a production deploy from a TOML runbook, and get back when it goes wrong.
//!
//! ```text
//! runbook file ──parse/validate──▶ Runbook (plain data)
//!                                      │
//! front end (tui | headless) ──Command──▶ Engine ──Event──▶ journal (JSONL, fsync)
//!        ▲                                  │
//!        └──────────── Update ──────────────┘
//! ```
//!
//! The engine (`engine`) knows nothing of terminals; front ends (`tui`, `headless`) send it
//! commands and render its updates; the journal (`journal`) records every event to disk before
//! anyone sees it. Each event, once journaled, is offered to `notify`, which delivers the
//! `[[notify]]` targets in the background. Other operators reach a run's driver through its
//! control socket (`team`): their requests become engine commands like the front end's, so the
//! driver alone writes the journal. A watcher (`runbook attach`, `runbook ls`: `runs`,
//! `tui::attach`) only reads the run folder — the journal and the running step's log as they
//! grow — and sends its notes and approvals through that socket; from another host it reads the
//! same through the shared store (`store::watch`, `runs::remote`).
//!
//! ## Layers
//!
//! A module uses only modules of the layers below its own, never one above it nor, for the front
//! ends, one beside it (`tests/layering.rs` reads this list and checks every `crate::` path under
//! `src/` against it; a new module must be given its line here):
//!
//! ```text
//! cli                                      the command line: parsing, dispatch, stdout, exit codes
//! tui | headless | backtest                the front ends; backtest replays triggers over history
//! session | runs                           starting an execution, signals; the runs of a state dir as a watcher sees them
//! team                                     the control socket's server and client, deploy locks, approve, takeover
//! engine                                   the run: steps, waits, triggers, rollback
//! store                                    the shared store: copy, lease, restore (PostgreSQL)
//! notify                                   delivering notifications in the background
//! metrics | journal                        metric sources and triggers; the journal, resume, report
//! secrets                                  reading `[secrets]`
//! runbook                                  the format: model, parse, validate, plan, import
//! process | control                        running commands, the step monitor; the control socket's words
//! files | mask | duration | text | identity   private files, masking, durations, text, who/where
//! ```

/// `eprintln!` that never panics: after SIGHUP the terminal is gone, and a message that cannot be
/// shown must not turn into a crash.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// `eprint!` that never panics (a prompt).
#[macro_export]
macro_rules! say_inline {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut err = std::io::stderr();
        let _ = write!(err, $($t)*);
        let _ = err.flush();
    }};
}

/// `println!` that never panics (stdout closed early, e.g. `runbook plan FILE | head`).
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!` that never panics.
#[macro_export]
macro_rules! out_inline {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

pub mod backtest;
pub mod cli;
pub mod control;
pub mod duration;
pub mod engine;
pub mod files;
pub mod headless;
pub mod identity;
pub mod journal;
pub mod mask;
pub mod metrics;
pub mod notify;
pub mod process;
pub mod runbook;
pub mod runs;
pub mod secrets;
pub mod session;
pub mod store;
pub mod team;
pub mod text;
pub mod tui;
