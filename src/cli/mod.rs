//! The command line: parsing (clap) and dispatch to the library. No run logic lives here.
//!
//! `cli` alone owns stdout, broken pipes and exit codes: the commands it calls compute a result,
//! and it prints it. `args` holds the words (subcommands and flags), `print` the commands that
//! compute and print (validate, plan, report, import, backtest), `execute` the ones that drive a
//! run (run, rehearse, resume, takeover). A new subcommand is a variant of `Cmd` and one arm in
//! `main`.

mod args;
mod execute;
mod print;

use std::process::ExitCode;

use clap::Parser;

use crate::journal::default_state_dir;
pub use args::{Cli, Cmd, ExecFlags, ReportFormat};

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Cmd::Validate { files } => print::validate(&files),
        Cmd::Monitor => crate::process::monitor::main(),
        Cmd::Plan { file, vars } => print::plan(&file, &vars),
        Cmd::Report {
            journal,
            format,
            output,
            state_dir,
            store,
        } => {
            let state_dir = state_dir.unwrap_or_else(default_state_dir);
            let found = crate::runs::report::load(&journal, &state_dir, store.as_deref());
            print::report(found, format, output.as_deref())
        }
        Cmd::Import { checklist } => print::import(&checklist),
        Cmd::Backtest {
            file,
            since,
            until,
            prometheus,
            format,
            vars,
        } => print::backtest(crate::backtest::Request {
            file: &file,
            vars: &vars,
            since: &since,
            until: until.as_deref(),
            prometheus,
            json: format == "json",
        }),
        Cmd::Ls {
            format,
            state_dir,
            store,
        } => crate::runs::ls::main(
            &state_dir.unwrap_or_else(default_state_dir),
            &format,
            store.as_deref(),
        ),
        Cmd::Attach {
            run,
            state_dir,
            store,
            events: true,
        } => crate::runs::events::main(
            &state_dir.unwrap_or_else(default_state_dir),
            run.as_deref(),
            store.as_deref(),
        ),
        Cmd::Attach {
            run,
            state_dir,
            store,
            events: false,
        } => crate::tui::attach::main(
            &state_dir.unwrap_or_else(default_state_dir),
            run.as_deref(),
            store.as_deref(),
        ),
        Cmd::Approve {
            run,
            step,
            state_dir,
            store,
        } => crate::team::approve::main(
            &run,
            &step,
            &state_dir.unwrap_or_else(default_state_dir),
            store.as_deref(),
        ),
        Cmd::Note {
            run,
            text,
            state_dir,
            store,
        } => crate::team::note::main(
            &run,
            &text,
            &state_dir.unwrap_or_else(default_state_dir),
            store.as_deref(),
        ),
        Cmd::Run { file, exec } => execute::run(file, exec),
        Cmd::Rehearse {
            file,
            speed,
            inject_fault_at,
            exec,
        } => {
            let rehearsal = crate::engine::Rehearsal {
                speed,
                inject_fault_at,
            };
            execute::rehearse(file, rehearsal, exec)
        }
        Cmd::Resume { journal, force, exec } => execute::resume(journal, force, exec),
        Cmd::Takeover {
            run,
            reason,
            force,
            exec,
        } => execute::takeover(&run, &reason, force, exec),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
