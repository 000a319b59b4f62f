//! The command line's words: the subcommands, their flags (clap) and the parsers of flag values.
//! What each command does is left to the modules `cli` dispatches to.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// What `runbook report --format` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum ReportFormat {
    Markdown,
    Json,
}

/// Drive a production deploy from a runbook, and get back when it goes wrong.
#[derive(Debug, Parser)]
#[command(name = "runbook", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Execute a runbook (headless when stdout is not a terminal)
    Run {
        /// The runbook (TOML) to execute
        file: PathBuf,
        #[command(flatten)]
        exec: ExecFlags,
    },
    /// Practise: commands and HTTP requests are shown, not executed; metrics are simulated
    Rehearse {
        /// The runbook (TOML) to practise
        file: PathBuf,
        /// Divide watch durations, trigger `for` windows and auto_rollback by N
        #[arg(long, value_name = "N", default_value_t = 1.0, value_parser = parse_speed)]
        speed: f64,
        /// Inject the simulated fault this long after the start (e.g. 30s)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
        inject_fault_at: Option<std::time::Duration>,
        #[command(flatten)]
        exec: ExecFlags,
    },
    /// Check runbooks without running anything; exit 0 if all are valid
    Validate {
        /// The runbooks (TOML) to check
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Continue an interrupted run from its journal (the latest unfinished one when none is named)
    Resume {
        /// The run's journal.jsonl or its folder
        journal: Option<PathBuf>,
        /// Resume even though the runbook file changed since the run started, or the run had ended
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        exec: ExecFlags,
    },
    /// A Markdown report of a run: timeline, who confirmed what, notes, triggers, rollback, metrics
    Report {
        /// The run: its journal.jsonl, its folder, or its id (in the state dir, else in the shared
        /// store)
        #[arg(value_name = "RUN")]
        journal: PathBuf,
        /// markdown or json (the same content)
        #[arg(long, value_name = "FORMAT", default_value = "markdown")]
        format: ReportFormat,
        /// Write the report to FILE instead of stdout
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
        /// Where runs are recorded [default: $XDG_STATE_HOME/runbook, else ~/.local/state/runbook]
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// A run not in the state dir is read from this PostgreSQL store (postgres://USER@HOST/DB)
        /// [env: RUNBOOK_STORE; else `store` in $XDG_CONFIG_HOME/runbook/config.toml]
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// Turn a Markdown checklist or runbook (headings, `- [ ]` items, numbered procedures, commands) into a runbook TOML on stdout
    Import {
        /// The Markdown file to turn into a runbook
        checklist: PathBuf,
    },
    /// The runs in the state dir (or the shared store): runbook, start, who drives it (and whether that process is alive), where it stands
    Ls {
        /// text or json
        #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
        format: String,
        /// Where runs are recorded [default: $XDG_STATE_HOME/runbook, else ~/.local/state/runbook]
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Also the runs of this PostgreSQL store (postgres://USER@HOST/DB) [env: RUNBOOK_STORE;
        /// else `store` in $XDG_CONFIG_HOME/runbook/config.toml]
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// Watch a run from another terminal: the same screen, read-only, live (the latest live run when none is named)
    Attach {
        /// The run: its id (as `runbook ls` shows it), a unique part of it, or its folder
        run: Option<String>,
        /// Where runs are recorded [default: $XDG_STATE_HOME/runbook, else ~/.local/state/runbook]
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Watch a run of another host through this PostgreSQL store (postgres://USER@HOST/DB)
        /// [env: RUNBOOK_STORE; else `store` in $XDG_CONFIG_HOME/runbook/config.toml]
        #[arg(long, value_name = "URL")]
        store: Option<String>,
        /// Instead of the screen, print the run's journal events as JSON lines as they come (those
        /// so far first); it ends with the run
        #[arg(long)]
        events: bool,
    },
    /// Approve a step that waits for another operator's approval (you: this shell's Unix user)
    Approve {
        /// The run: its folder, its journal.jsonl, or its id (the folder's name under STATE_DIR/runs)
        run: PathBuf,
        /// The step: its id, or phase/step
        step: String,
        /// Where runs are recorded [default: $XDG_STATE_HOME/runbook, else ~/.local/state/runbook]
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Reach a driver on another host through this PostgreSQL store [env: RUNBOOK_STORE]
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// Add a note to a run's journal (journaled by its driver, with your name)
    Note {
        /// The run: its folder, its journal.jsonl, or its id (the folder's name under STATE_DIR/runs)
        run: PathBuf,
        /// The note
        text: String,
        /// Where runs are recorded [default: $XDG_STATE_HOME/runbook, else ~/.local/state/runbook]
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Reach a driver on another host through this PostgreSQL store [env: RUNBOOK_STORE]
        #[arg(long, value_name = "URL")]
        store: Option<String>,
    },
    /// Take over driving a run: its driver's operator is asked, or it happens at once if the driver is gone
    Takeover {
        /// The run: its folder, its journal.jsonl, or its id (the folder's name under STATE_DIR/runs)
        run: PathBuf,
        /// Why (journaled, and shown to the driver's operator)
        #[arg(long, value_name = "TEXT", required = true)]
        reason: String,
        /// Go on even though the runbook file changed since the run started
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        exec: ExecFlags,
    },
    /// Replay every metric trigger over Prometheus history: when would it have gone pending and fired
    Backtest {
        /// The runbook (TOML) whose triggers to replay
        file: PathBuf,
        /// How far back: a duration before --until (7d, 36h), or a time (2026-11-22T10:00:00Z)
        #[arg(long, value_name = "DURATION|TIME")]
        since: String,
        /// The end of the window: RFC 3339, a date, Unix seconds, or a duration ago [default: now]
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Use this Prometheus instead of the runbook's [metrics] url
        #[arg(long, value_name = "URL")]
        prometheus: Option<String>,
        /// text or json
        #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
        format: String,
        /// Override a [vars] entry (repeatable)
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
    },
    /// Runs one step's command for `runbook` itself (its spec on stdin); not for people
    #[command(name = "__monitor", hide = true)]
    Monitor,
    /// Print the phases, steps, triggers and rollback procedure as an outline
    Plan {
        /// The runbook (TOML) to outline
        file: PathBuf,
        /// Override a [vars] entry (repeatable)
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
    },
}

/// Flags every executing command takes.
#[derive(Debug, Args, Clone)]
pub struct ExecFlags {
    /// Plain, line-oriented progress on stdout instead of the terminal UI
    #[arg(long)]
    pub headless: bool,
    /// Override a [vars] entry (repeatable); an unknown NAME is an error
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Confirm every manual and `confirm = true` step without asking (recorded as "auto")
    #[arg(long)]
    pub yes: bool,
    /// Where runs are recorded [default: $XDG_STATE_HOME/runbook, else ~/.local/state/runbook]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Use this Prometheus instead of the runbook's [metrics] url
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Use simulated metrics whatever the runbook says
    #[arg(long)]
    pub simulate_metrics: bool,
    /// Share the run through this PostgreSQL store (postgres://USER@HOST/DB) [env: RUNBOOK_STORE;
    /// else `store` in $XDG_CONFIG_HOME/runbook/config.toml]
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

impl ExecFlags {
    /// `--state-dir`, or the default one.
    pub(super) fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(crate::journal::default_state_dir)
    }
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 1.0 => Ok(n),
        _ => Err(format!("`{s}` is not a speed-up factor of 1 or more")),
    }
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse_duration(s)
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}
