//! The `runbook` binary: the command line is in `cli`; this only installs the panic guard.

fn main() -> std::process::ExitCode {
    std::panic::set_hook(Box::new(|info| {
        runbook::process::kill_all_now();
        runbook::say!("runbook: internal error: {info}");
        runbook::say!(
            "runbook: the journal of this run is intact; `runbook resume` can carry on. Please report this."
        );
    }));
    runbook::cli::main()
}
