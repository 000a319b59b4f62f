//! `runbook takeover RUN --reason TEXT`: take over driving a run. If its driver is alive, its
//! operator is asked (on their screen) and the driver hands over on `y`; if it is gone (its process
//! is dead: the run's lock is free), the takeover happens at once and `handover` is journaled here.
//! Either way the caller then goes on with the run as `resume` does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::remote::Asked;
use crate::control::Request;
use crate::journal::{Event, Journal, OpenError};

/// The run to go on with once it is ours, and whether it is a rehearsal.
pub struct Taken {
    pub run_dir: PathBuf,
    pub rehearsal: bool,
}

/// Asks for the run (or takes it from a dead driver). Prints what happens; on failure returns
/// the exit status (1: refused, or nobody can agree; 2: no such run, or it has ended). With a
/// shared store (`store`: `--store`), a run driven on another host is asked for through the
/// store, and its folder is rebuilt here from the store when this host lacks it.
pub fn prepare(run: &Path, reason: &str, state_dir: &Path, store: Option<&str>) -> Result<Taken, i32> {
    let mut found = super::remote::find(run, state_dir, store).map_err(|(code, e)| {
        crate::say!("runbook: {e}");
        code
    })?;
    let reason = reason.trim();
    if reason.is_empty() {
        crate::say!(
            "runbook: a takeover needs a reason (--reason TEXT): it is journaled and shown to the driver"
        );
        return Err(2);
    }
    if let Some(dir) = &found.dir {
        check(dir)?;
    }
    crate::say!("runbook: asking the driver of this run to hand it over to you (Ctrl-C gives up)…");
    let asked = found.ask(&Request::Takeover {
        reason: reason.to_string(),
    });
    let dir = match asked {
        Asked::Answered(r) if r.ok => {
            crate::say!("runbook: {}", r.text());
            // The old driver lets go of the run as it exits: its lock here, its lease in the store.
            if let Some(dir) = &found.dir {
                wait_for_run(dir)?;
            }
            found.wait_released().map_err(|e| {
                crate::say!("runbook: {e}");
                1
            })?;
            super::remote::sync_folder(&mut found, state_dir)?
        }
        Asked::Answered(r) => {
            crate::say!("runbook: not taken over: {}", r.text());
            return Err(1);
        }
        Asked::NoDriver { ended: Some(outcome) } => {
            crate::say!("runbook: this run has ended ({outcome}); there is nothing to take over");
            return Err(2);
        }
        Asked::NoDriver { ended: None } => {
            let dir = super::remote::sync_folder(&mut found, state_dir)?;
            let records = check(&dir)?;
            take_from_gone(&dir, &last_driver(&records), reason)?;
            dir
        }
        Asked::Failed(e) => {
            crate::say!("runbook: not taken over: {e}");
            return Err(1);
        }
    };
    let records = check(&dir)?;
    let rehearsal = records
        .iter()
        .find_map(|r| match &r.event {
            Event::RunStarted { mode, .. } => Some(mode == "rehearse"),
            _ => None,
        })
        .unwrap_or(false);
    Ok(Taken {
        run_dir: dir,
        rehearsal,
    })
}

/// The run's journal, if it records a run that has not ended; else why not (exit 2).
fn check(dir: &Path) -> Result<Vec<crate::journal::Record>, i32> {
    let journal = dir.join("journal.jsonl");
    let (records, _) = crate::journal::read(&journal).map_err(|e| {
        crate::say!("runbook: cannot read {}: {e}", journal.display());
        2
    })?;
    let Some(info) = crate::journal::resume::info(&records) else {
        crate::say!(
            "runbook: {} records no run_started: nothing to take over",
            journal.display()
        );
        return Err(2);
    };
    if !crate::journal::resume::resumable(&info) {
        let outcome = info.finished.map(|o| o.as_str()).unwrap_or("finished");
        crate::say!("runbook: this run has ended ({outcome}); there is nothing to take over");
        return Err(2);
    }
    Ok(records)
}

/// Who drove the run last: the operator of its latest `run_started`.
fn last_driver(records: &[crate::journal::Record]) -> String {
    records
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::RunStarted { operator, host, .. } => Some(format!("{operator}@{host}")),
            _ => None,
        })
        .unwrap_or_else(|| "the last driver".into())
}

/// Nobody answers on the socket: if nobody holds the run's lock either, the driver is gone and the
/// run is ours at once (`handover` journaled, consent: false). A live holder that does not answer
/// is not overruled.
fn take_from_gone(dir: &Path, driver: &str, reason: &str) -> Result<(), i32> {
    let lock = match crate::journal::lock_run(dir) {
        Ok(l) => l,
        Err(OpenError::Locked { holder }) => {
            crate::say!(
                "runbook: not taken over: {holder} holds this run but does not answer on its control socket; \
                 ask them, or stop that process (the run can then be taken over at once)"
            );
            return Err(1);
        }
        Err(OpenError::Io(e)) => {
            crate::say!("runbook: cannot take the run's lock in {}: {e}", dir.display());
            return Err(2);
        }
    };
    let mut journal = Journal::open(dir, lock, crate::secrets::Redactor::default()).map_err(|e| {
        crate::say!("runbook: cannot open the journal in {}: {e}", dir.display());
        2
    })?;
    let me = crate::identity::operator();
    let event = Event::Handover {
        from: driver.split('@').next().unwrap_or(driver).to_string(),
        to: me.clone(),
        reason: reason.to_string(),
        at: crate::control::origin(Some(std::process::id())),
        consent: false,
    };
    journal.append(event).map_err(|e| {
        crate::say!("runbook: cannot write the journal in {}: {e}", dir.display());
        2
    })?;
    crate::say!("runbook: the driver ({driver}) is gone: {me} takes the run over at once");
    Ok(())
}

/// After the driver agreed: waits until it has let go of the run (its lock), at most a minute.
fn wait_for_run(dir: &Path) -> Result<(), i32> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match crate::journal::lock_run(dir) {
            Ok(_) => return Ok(()),
            Err(OpenError::Locked { holder }) if Instant::now() >= deadline => {
                crate::say!("runbook: {holder} agreed to hand over but still holds the run after a minute");
                return Err(1);
            }
            Err(OpenError::Locked { .. }) => std::thread::sleep(Duration::from_millis(100)),
            Err(OpenError::Io(e)) => {
                crate::say!("runbook: cannot take the run's lock in {}: {e}", dir.display());
                return Err(2);
            }
        }
    }
}
