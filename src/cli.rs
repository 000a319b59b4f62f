//! The command line: parsing (clap) and dispatch to the library. No run logic lives here.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::engine::Mode;
use crate::runbook::plan::count;
use crate::runbook::{LoadError, load};
use crate::session::{self, Request};

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
        /// Plain, line-oriented progress on stdout instead of the terminal UI
        #[arg(long)]
        headless: bool,
        #[command(flatten)]
        exec: ExecFlags,
    },
    /// Practise: commands and HTTP requests are shown, not executed; metrics are simulated
    Rehearse {
        /// The runbook (TOML) to practise
        file: PathBuf,
        /// Plain, line-oriented progress on stdout instead of the terminal UI
        #[arg(long)]
        headless: bool,
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
        /// Plain, line-oriented progress on stdout instead of the terminal UI
        #[arg(long)]
        headless: bool,
        /// Resume even though the runbook file changed since the run started, or the run had ended
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        exec: ExecFlags,
    },
    /// A Markdown report of a run: timeline, who confirmed what, notes, triggers, rollback, metrics
    Report {
        /// The run's journal.jsonl or its folder
        journal: PathBuf,
        /// markdown or json (the same content)
        #[arg(long, value_name = "FORMAT", default_value = "markdown")]
        format: ReportFormat,
        /// Write the report to FILE instead of stdout
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Turn a Markdown checklist or runbook (headings, `- [ ]` items, numbered procedures, commands) into a runbook TOML on stdout
    Import {
        /// The Markdown file to turn into a runbook
        checklist: PathBuf,
    },
    /// The runs in the state dir: runbook, start, who drives it (and whether that process is alive), where it stands
    Ls {
        /// text or json
        #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
        format: String,
        /// Where runs are recorded [default: $XDG_STATE_HOME/runbook, else ~/.local/state/runbook]
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Watch a run from another terminal: the same screen, read-only, live (the latest live run when none is named)
    Attach {
        /// The run: its id (as `runbook ls` shows it), a unique part of it, or its folder
        run: Option<String>,
        /// Where runs are recorded [default: $XDG_STATE_HOME/runbook, else ~/.local/state/runbook]
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
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
    },
    /// Take over driving a run: its driver's operator is asked, or it happens at once if the driver is gone
    Takeover {
        /// The run: its folder, its journal.jsonl, or its id (the folder's name under STATE_DIR/runs)
        run: PathBuf,
        /// Why (journaled, and shown to the driver's operator)
        #[arg(long, value_name = "TEXT", required = true)]
        reason: String,
        /// Plain, line-oriented progress on stdout instead of the terminal UI
        #[arg(long)]
        headless: bool,
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
    fn state_dir(&self) -> PathBuf {
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Cmd::Validate { files } => validate(&files),
        Cmd::Monitor => crate::process::monitor::main(),
        Cmd::Plan { file, vars } => match load(&file, &vars) {
            Ok(rb) => {
                crate::out_inline!("{}", crate::runbook::plan::outline(&rb));
                0
            }
            // Problems in the file are `FILE:LINE:COL: message`, as `validate` shows them; a file
            // that cannot be read, or a --var the runbook lacks, is the command's own error.
            Err(e @ LoadError::Invalid { .. }) => report_load_error(&e),
            Err(e) => {
                crate::say_inline!("runbook: {}", e.render());
                2
            }
        },
        Cmd::Report {
            journal,
            format,
            output,
        } => report(&journal, format, output.as_deref()),
        Cmd::Import { checklist } => import(&checklist),
        Cmd::Ls { format, state_dir } => crate::runs::ls::main(
            &state_dir.unwrap_or_else(crate::journal::default_state_dir),
            &format,
        ),
        Cmd::Attach { run, state_dir } => crate::tui::attach::main(
            &state_dir.unwrap_or_else(crate::journal::default_state_dir),
            run.as_deref(),
        ),
        Cmd::Approve { run, step, state_dir } => {
            let state_dir = state_dir.unwrap_or_else(crate::journal::default_state_dir);
            crate::team::approve::main(&run, &step, &state_dir)
        }
        Cmd::Takeover {
            run,
            reason,
            headless,
            force,
            exec,
        } => {
            let state_dir = exec.state_dir();
            match crate::team::takeover::prepare(&run, &reason, &state_dir) {
                Err(code) => code,
                Ok(taken) => {
                    // A rehearsal stays one: nothing it shows is run for real after a hand-over.
                    let rehearsal = taken.rehearsal.then_some(crate::engine::Rehearsal {
                        speed: 1.0,
                        inject_fault_at: None,
                    });
                    let how = How {
                        mode: Mode::Resume,
                        rehearsal,
                        resume: Some((taken.run_dir, force)),
                        front: front_end(headless),
                        // The run is in this state dir: `prepare` found it there.
                        restore: None,
                    };
                    execute(PathBuf::new(), exec, how)
                }
            }
        }
        Cmd::Backtest {
            file,
            since,
            until,
            prometheus,
            format,
            vars,
        } => backtest(crate::backtest::Request {
            file: &file,
            vars: &vars,
            since: &since,
            until: until.as_deref(),
            prometheus,
            json: format == "json",
        }),
        Cmd::Rehearse {
            file,
            headless,
            speed,
            inject_fault_at,
            exec,
        } => {
            let rehearsal = crate::engine::Rehearsal {
                speed,
                inject_fault_at,
            };
            let how = How {
                mode: Mode::Rehearse,
                rehearsal: Some(rehearsal),
                resume: None,
                front: front_end(headless),
                restore: None,
            };
            execute(file, exec, how)
        }
        Cmd::Run { file, headless, exec } => {
            let how = How {
                mode: Mode::Run,
                rehearsal: None,
                resume: None,
                front: front_end(headless),
                restore: None,
            };
            execute(file, exec, how)
        }
        Cmd::Resume {
            journal,
            headless,
            force,
            exec,
        } => {
            let state_dir = exec.state_dir();
            let mut restore = None;
            let dir = match journal {
                Some(j) if j.is_dir() => j,
                Some(j) if j.is_file() => j.parent().map(PathBuf::from).unwrap_or_default(),
                // A run's id: its folder in the state dir, else (with a store) rebuilt from it.
                Some(j) if crate::store::is_run_id(&j) => {
                    let dir = state_dir.join("runs").join(&j);
                    if !dir.is_dir() {
                        restore = Some(j.display().to_string());
                    }
                    dir
                }
                Some(j) => {
                    crate::say!("runbook: {}: no such journal or run folder", j.display());
                    return ExitCode::from(2);
                }
                None => match crate::journal::resume::latest_unfinished(&state_dir) {
                    Some(d) => {
                        crate::say!("runbook: resuming the latest unfinished run: {}", d.display());
                        d
                    }
                    None => {
                        crate::say!(
                            "runbook: no unfinished run in {}",
                            state_dir.join("runs").display()
                        );
                        return ExitCode::from(2);
                    }
                },
            };
            let how = How {
                mode: Mode::Resume,
                rehearsal: None,
                resume: Some((dir, force)),
                front: front_end(headless),
                restore,
            };
            execute(PathBuf::new(), exec, how)
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The terminal UI, unless `--headless` was given or stdout or stdin is not a terminal (which
/// `execute` says, once the run has started: an error that stops it comes alone).
fn front_end(headless: bool) -> FrontEnd {
    if headless {
        FrontEnd::Headless
    } else if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        FrontEnd::HeadlessNoTerminal
    } else {
        FrontEnd::Tui
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrontEnd {
    Tui,
    /// `--headless`.
    Headless,
    /// Headless because stdout or stdin is not a terminal.
    HeadlessNoTerminal,
}

/// `runbook report`: the report of a journal, as Markdown or JSON, on stdout or into a file.
fn report(journal: &std::path::Path, format: ReportFormat, output: Option<&std::path::Path>) -> i32 {
    use std::io::Write as _;
    let report = match crate::journal::report::load(journal) {
        Ok(r) => r,
        Err(e) => {
            crate::say!("runbook: {e}");
            return 2;
        }
    };
    let text = match format {
        ReportFormat::Markdown => crate::journal::report::markdown(&report),
        ReportFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => s + "\n",
            Err(e) => {
                crate::say!("runbook: cannot write the report as JSON: {e}");
                return 2;
            }
        },
    };
    match output {
        Some(file) => match std::fs::write(file, text) {
            Ok(()) => 0,
            Err(e) => {
                crate::say!("runbook: cannot write {}: {e}", file.display());
                2
            }
        },
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => 0,
                // `runbook report J | head` is fine.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
                Err(e) => {
                    crate::say!("runbook: cannot write the report: {e}");
                    2
                }
            }
        }
    }
}

fn report_load_error(e: &LoadError) -> i32 {
    crate::say_inline!("{}", e.render());
    2
}

fn validate(files: &[PathBuf]) -> i32 {
    let mut ok = true;
    for f in files {
        match load(f, &[]) {
            Ok(rb) => {
                let triggers = rb.triggers.len();
                let rollback = rb.rollback.as_ref().map_or(0, |r| r.phases.len());
                crate::out!(
                    "{}: ok ({}, {}, {}, {})",
                    f.display(),
                    count(rb.phases.len(), "phase"),
                    count(rb.step_count(), "step"),
                    count(triggers, "trigger"),
                    count(rollback, "rollback phase")
                );
            }
            Err(e) => {
                ok = false;
                report_load_error(&e);
            }
        }
    }
    if ok { 0 } else { 2 }
}

/// How an executing command runs.
struct How {
    mode: Mode,
    rehearsal: Option<crate::engine::Rehearsal>,
    /// `resume`: the run folder, and --force.
    resume: Option<(PathBuf, bool)>,
    front: FrontEnd,
    /// `resume RUN` of a run not in the state dir: rebuild it from the shared store first.
    restore: Option<String>,
}

/// One thread runs the engine and the front end: on a two-core bastion the step's command gets the
/// other core, and nothing in the engine needs more than one.
fn execute(file: PathBuf, exec: ExecFlags, how: How) -> i32 {
    let How {
        mode,
        rehearsal,
        resume,
        front,
        restore,
    } = how;
    let tui = front == FrontEnd::Tui;
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            crate::say!("runbook: cannot start: {e}");
            return 1;
        }
    };
    let state_dir = exec.state_dir();
    let req = Request {
        file,
        vars: exec.vars,
        yes: exec.yes,
        state_dir: exec.state_dir,
        mode,
        rehearsal,
        prometheus: exec.prometheus,
        simulate_metrics: exec.simulate_metrics,
        // In the terminal UI the operator chooses; headless, nobody is there to, so it rolls back.
        on_fire: if tui {
            crate::engine::OnFire::Hold
        } else {
            crate::engine::OnFire::RollBack
        },
        // Someone can answer the irreversible steps' confirmation: the UI, or a terminal on stdin.
        ask_irreversible: tui || std::io::stdin().is_terminal(),
        force: resume.as_ref().is_some_and(|(_, f)| *f),
        resume: resume.map(|(dir, _)| dir),
    };
    let speed = rehearsal.map_or(1.0, |r| r.speed);
    let resume_dir = req.resume.clone();
    let sources = crate::metrics::SourceOptions {
        prometheus: req.prometheus.clone(),
        simulate: req.simulate_metrics || rehearsal.is_some(),
    };
    let store_flag = exec.store.clone();
    let code = runtime.block_on(async move {
        // The store first: a wrong password or an unknown database stops us before anything runs.
        let store = match crate::store::from_settings(store_flag.as_deref()).await {
            Ok(s) => s,
            Err(e) => {
                crate::say!("runbook: {e}");
                return 2;
            }
        };
        let steal = match crate::store::prepare_resume(
            store.as_ref(),
            resume_dir.as_deref(),
            restore.as_deref(),
            &state_dir,
        )
        .await
        {
            Ok(steal) => steal,
            Err(e) => {
                crate::say!("runbook: {e}");
                return 2;
            }
        };
        let session = match session::start_shared(req, store.as_ref().map(|s| (s, steal))) {
            Ok(s) => s,
            Err(e) => {
                crate::say_inline!("runbook: {e}");
                if !e.to_string().ends_with('\n') {
                    crate::say!();
                }
                return 2;
            }
        };
        let mut session = session;
        let shared = session.store.take();
        // Earlier runs of this host whose copy to this store was left unfinished (SPEC §9).
        let catchup = store.as_ref().and_then(|s| {
            let (n, task) = crate::store::catchup::start(s, &state_dir, Some(&session.run_dir))?;
            crate::say!("runbook: copying to the store what it lacks of {n} earlier run(s) of this host, in the background");
            Some(task)
        });
        session::forward_signals(session.commands.clone());
        if front == FrontEnd::HeadlessNoTerminal {
            crate::say!("runbook: stdout or stdin is not a terminal; running headless");
        }
        if session.history.is_empty() {
            crate::say!("runbook: recording this run in {}", session.run_dir.display());
        } else {
            crate::say!(
                "runbook: resuming; appending to {}",
                session.run_dir.join("journal.jsonl").display()
            );
        }
        let run_dir = session.run_dir.clone();
        let code = if tui {
            let kinds = crate::metrics::source_kinds(&session.runbook, &sources);
            crate::tui::run(session, mode, kinds, speed).await
        } else {
            crate::headless::run(session).await
        };
        // What the shared store still lacks is copied now (at most 15 s, said), then the lease is
        // released; so is what earlier runs here left uncopied.
        let fenced = shared.as_ref().and_then(crate::store::Handle::fenced_by);
        let wait = std::time::Duration::from_secs(15);
        crate::store::finish(shared, catchup, wait, |m| crate::say!("runbook: {m}")).await;
        if let Some(by) = fenced {
            crate::say!(
                "runbook: {by} drives this run now (the shared store says so); nothing more runs here"
            );
            return code;
        }
        // Stopped (q, Ctrl-C, SIGTERM), aborted, failed, or a rollback that failed: the run can
        // go on from its journal. Succeeded (0) and rolled back (3) are done.
        if matches!(code, 1 | 4 | 130) {
            crate::say!(
                "runbook: to go on from here: runbook resume {}",
                run_dir.display()
            );
        }
        code
    });
    // Whatever path led here, no command of ours outlives us.
    crate::process::kill_all_now();
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

/// `runbook import`: the runbook TOML on stdout, what the operator should know on stderr.
fn import(checklist: &std::path::Path) -> i32 {
    match crate::runbook::import::import(checklist) {
        Ok(imported) => {
            for notice in &imported.notices {
                crate::say!("runbook: {}: {notice}", checklist.display());
            }
            write_stdout(imported.toml.as_bytes(), "the runbook")
        }
        Err(message) => {
            crate::say!("runbook: {message}");
            2
        }
    }
}

fn backtest(req: crate::backtest::Request) -> i32 {
    match crate::backtest::run(req) {
        Ok(report) => write_stdout(report.as_bytes(), "the backtest"),
        Err(message) => {
            crate::say_inline!("{message}");
            2
        }
    }
}

/// Writes a command's result to stdout: 0, or 2 with a message when it cannot be written. A reader
/// that stopped reading (`runbook import x.md | head`) has what it wanted: no error.
fn write_stdout(bytes: &[u8], what: &str) -> i32 {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            crate::say!("runbook: cannot write {what} to stdout: {e}");
            2
        }
    }
}
