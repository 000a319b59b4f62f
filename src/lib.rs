//! `runbook`: drive a production deploy from a TOML runbook, and get back when it goes wrong.
//!
//! ```text
//! runbook file ──parse/validate──▶ Runbook (plain data)
//!                                      │
//! front end (headless) ──Command──▶ Engine ──Event──▶ journal (JSONL, fsync)
//!        ▲                             │
//!        └────────── Update ───────────┘
//! ```
//!
//! The engine (`engine`) knows nothing of terminals; front ends (`headless`) send it commands and
//! render its updates; the journal (`journal`) records every event to disk before anyone sees it.

pub mod cli;
pub mod duration;
pub mod engine;
pub mod headless;
pub mod journal;
pub mod metrics;
pub mod runbook;
pub mod secrets;
pub mod session;
pub mod tui;
