//! A run left uncopied on this host (`catchup`) that another driver took over meanwhile: what it
//! became, and what of this host's copy the store will never take.
//!
//! After a takeover the store's journal of the run is the newer driver's: its lines follow the
//! ones the store had from this host when it took over (the lease's newer epoch). The lines and
//! log bytes this host wrote after that are its own view of a run that went on elsewhere; they
//! are not copied (the store refuses them anyway: every write checks the epoch), and they stay in
//! the run folder. This module only reads the store and the folder, and words it for the
//! operator; `catchup` decides to call it and removes the folder's mark. Such a folder is not
//! resumed as it is either (`went_on`): it would run again what the newer driver ran; `resume`
//! refuses it, or brings it up to date first (`refresh`).

use std::collections::BTreeMap;
use std::path::Path;

use tokio_postgres::Client;

use super::lease::{self, Holder};
use super::{StoreConfig, connect};
use crate::journal::{Event, Outcome, Record};

/// The store's side of a run taken over, and what of the local folder it lacks.
#[derive(Debug, Clone, PartialEq)]
pub struct TakenOver {
    pub run_id: String,
    /// Who holds the lease now: `operator@host (pid N)`.
    pub by: String,
    pub epoch: i64,
    pub now: Now,
    /// Journal lines and log bytes of this folder written after the store last took any of its
    /// epoch (or an older one).
    pub lines: u64,
    pub bytes: u64,
}

/// Where the run stands in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Now {
    /// The newer driver's lease holds.
    Driven,
    /// Its last session ended the run.
    Ended(Outcome),
    /// Its lease ran out, or was released, without an end.
    Stopped,
}

/// Whether the run in `run_dir`, written here under `epoch`, has since been taken over by a
/// newer driver (`None`: not, or the store has no lease for it).
pub async fn check(
    config: &StoreConfig,
    run_dir: &Path,
    epoch: i64,
) -> Result<Option<TakenOver>, super::StoreError> {
    let c = connect::connect(config).await?;
    read(&c, run_dir, epoch)
        .await
        .map_err(|e| connect::explain(config, &e))
}

async fn read(c: &Client, run_dir: &Path, epoch: i64) -> Result<Option<TakenOver>, tokio_postgres::Error> {
    let run_id = lease::run_id(run_dir);
    let Some(Holder {
        driver,
        epoch: theirs,
        expires_in,
    }) = lease::holder(c, &run_id).await?
    else {
        return Ok(None);
    };
    if theirs <= epoch {
        return Ok(None);
    }
    // What the store has of this host's view: everything written under its epoch or before.
    let have: i64 = c
        .query_one(
            "SELECT coalesce(max(seq), 0) FROM events WHERE run_id = $1 AND epoch <= $2",
            &[&run_id, &epoch],
        )
        .await?
        .get(0);
    let mut logs = BTreeMap::new();
    for r in c
        .query(
            "SELECT log, max(\"offset\" + length(data))::int8 FROM log_chunks
             WHERE run_id = $1 AND epoch <= $2 GROUP BY log",
            &[&run_id, &epoch],
        )
        .await?
    {
        logs.insert(r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64);
    }
    let now = if expires_in > 0.0 {
        Now::Driven
    } else {
        now_of(last_line(c, &run_id).await?.map(|(_, line)| line).as_deref())
    };
    let (lines, bytes) = left_here(run_dir, have.max(0) as u64, &logs);
    Ok(Some(TakenOver {
        run_id,
        by: driver.name(),
        epoch: theirs,
        now,
        lines,
        bytes,
    }))
}

/// The store's last journal line of `run_id`: its number and text.
async fn last_line(c: &Client, run_id: &str) -> Result<Option<(i64, String)>, tokio_postgres::Error> {
    Ok(c.query_opt(
        "SELECT seq, line FROM events WHERE run_id = $1 ORDER BY seq DESC LIMIT 1",
        &[&run_id],
    )
    .await?
    .map(|r| (r.get(0), r.get(1))))
}

/// Where a run stands whose lease has ended, by its last line in the store.
fn now_of(last: Option<&str>) -> Now {
    match last.map(serde_json::from_str::<Record>) {
        Some(Ok(Record {
            event: Event::RunFinished { outcome, .. },
            ..
        })) => Now::Ended(outcome),
        _ => Now::Stopped,
    }
}

/// A folder here that the run went on without: where the run stands, and the words that refuse
/// to resume the folder as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct WentOn {
    pub now: Now,
    pub words: String,
}

/// Before `resume` of the folder `run_dir` on this host: whether the store's journal of the run
/// went on without it (its last line is not this folder's line of that number: another host
/// took the run over and wrote on). Then the folder is only this host's view of a run that went
/// on elsewhere, and resuming it as it is would run again what the other host ran.
pub async fn went_on(
    c: &Client,
    config: &StoreConfig,
    run_dir: &Path,
) -> Result<Option<WentOn>, super::StoreError> {
    went_on_with(c, run_dir)
        .await
        .map_err(|e| connect::explain(config, &e))
}

async fn went_on_with(c: &Client, run_dir: &Path) -> Result<Option<WentOn>, tokio_postgres::Error> {
    let run_id = lease::run_id(run_dir);
    let Some((seq, line)) = last_line(c, &run_id).await? else {
        return Ok(None);
    };
    let text = std::fs::read(run_dir.join("journal.jsonl")).unwrap_or_default();
    let here = super::whole_lines(&text);
    let same = usize::try_from(seq - 1)
        .ok()
        .and_then(|i| here.get(i))
        .is_some_and(|l| *l == line.as_bytes());
    if same {
        return Ok(None);
    }
    let holder = lease::holder(c, &run_id).await?;
    let now = match &holder {
        Some(h) if h.expires_in > 0.0 => Now::Driven,
        _ => now_of(Some(&line)),
    };
    let by = holder.map_or_else(
        || "another host".to_string(),
        |h| format!("{} (lease epoch {})", h.driver.name(), h.epoch),
    );
    Ok(Some(WentOn {
        now,
        words: went_on_words(&run_id, run_dir, &by, now, here.len(), seq),
    }))
}

fn went_on_words(run_id: &str, run_dir: &Path, by: &str, now: Now, here: usize, stored: i64) -> String {
    let head = format!(
        "{run_id} went on without this host: the shared store's journal of it ({stored} lines) is not \
         {} ({here} lines), which is only this host's view of it",
        run_dir.display()
    );
    match now {
        Now::Ended(o) => format!(
            "{head}; {by} drove it to its end ({}): there is nothing to resume (runbook ls shows it)",
            o.words()
        ),
        Now::Driven => format!("{head}; {by} drives it now: nothing is resumed here"),
        Now::Stopped => format!(
            "{head}; {by} drove it last, and its lease has ended without the run's end: it goes on \
             from the store's journal, not from this folder"
        ),
    }
}

/// The whole journal lines of `run_dir` beyond its first `have`, and its log bytes beyond `logs`.
fn left_here(run_dir: &Path, have: u64, logs: &BTreeMap<String, u64>) -> (u64, u64) {
    let text = std::fs::read(run_dir.join("journal.jsonl")).unwrap_or_default();
    let whole = text.iter().filter(|&&b| b == b'\n').count() as u64;
    let lines = whole.saturating_sub(have);
    let mut bytes = 0;
    if let Ok(dir) = std::fs::read_dir(run_dir.join("logs")) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".log") {
                continue;
            }
            let stored = logs.get(&format!("logs/{name}")).copied().unwrap_or(0);
            bytes += e.metadata().map_or(0, |m| m.len()).saturating_sub(stored);
        }
    }
    (lines, bytes)
}

impl TakenOver {
    /// In words for the operator, naming the folder that keeps this host's lines.
    pub fn say(&self, run_dir: &Path) -> String {
        let now = match self.now {
            Now::Driven => "who drives it now".to_string(),
            Now::Ended(o) => format!("who drove it to its end ({})", o.words()),
            Now::Stopped => "whose lease has ended without the run's end".to_string(),
        };
        let head = format!(
            "{}: taken over by {} (lease epoch {}), {now}; the store keeps that driver's journal of it",
            self.run_id, self.by, self.epoch
        );
        let lines = match self.lines {
            1 => "1 journal line".to_string(),
            n => format!("{n} journal lines"),
        };
        let logs = format!("{} of step logs", super::link::bytes(self.bytes));
        let mine = match (self.lines, self.bytes) {
            (0, 0) => return format!("{head}, with all this host wrote of it before"),
            (_, 0) => lines,
            (0, _) => logs,
            _ => format!("{lines} and {logs}"),
        };
        format!(
            "{head}. This host's last {mine}, written after the store last heard from it, were not \
             copied: they stay in {}",
            run_dir.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(lines: u64, bytes: u64, now: Now) -> TakenOver {
        TakenOver {
            run_id: "20261129T120000Z-rb".into(),
            by: "bob@bastion-b (pid 42)".into(),
            epoch: 2,
            now,
            lines,
            bytes,
        }
    }

    #[test]
    fn the_words_say_who_where_the_run_stands_and_what_stays_here() {
        let dir = Path::new("/s/runs/20261129T120000Z-rb");
        assert_eq!(
            taken(4, 1234, Now::Ended(Outcome::RolledBack)).say(dir),
            "20261129T120000Z-rb: taken over by bob@bastion-b (pid 42) (lease epoch 2), who drove it \
             to its end (rolled back); the store keeps that driver's journal of it. This host's last 4 \
             journal lines and 1.2 KB of step logs, written after the store last heard from it, were \
             not copied: they stay in /s/runs/20261129T120000Z-rb"
        );
        let driven = taken(1, 0, Now::Driven).say(dir);
        assert!(driven.contains("who drives it now"), "{driven}");
        assert!(driven.contains("last 1 journal line, written"), "{driven}");
        let logs = taken(0, 10, Now::Stopped).say(dir);
        assert!(
            logs.contains("whose lease has ended without the run's end"),
            "{logs}"
        );
        assert!(logs.contains("last 10 B of step logs, written"), "{logs}");
        let none = taken(0, 0, Now::Driven).say(dir);
        assert!(none.ends_with("with all this host wrote of it before"), "{none}");
    }

    #[test]
    fn a_folder_the_run_went_on_without_is_refused_in_words_that_say_who_and_where_the_run_stands() {
        let dir = Path::new("/s/runs/20261129T120000Z-rb");
        let by = "bob@bastion-b (pid 42) (lease epoch 2)";
        let ended = went_on_words(
            "20261129T120000Z-rb",
            dir,
            by,
            Now::Ended(Outcome::Succeeded),
            8,
            10,
        );
        assert_eq!(
            ended,
            "20261129T120000Z-rb went on without this host: the shared store's journal of it (10 \
             lines) is not /s/runs/20261129T120000Z-rb (8 lines), which is only this host's view of \
             it; bob@bastion-b (pid 42) (lease epoch 2) drove it to its end (succeeded): there is \
             nothing to resume (runbook ls shows it)"
        );
        let stopped = went_on_words("20261129T120000Z-rb", dir, by, Now::Stopped, 8, 10);
        assert!(
            stopped.ends_with("it goes on from the store's journal, not from this folder"),
            "{stopped}"
        );
        let driven = went_on_words("20261129T120000Z-rb", dir, by, Now::Driven, 8, 10);
        assert!(
            driven.ends_with("drives it now: nothing is resumed here"),
            "{driven}"
        );
    }

    #[test]
    fn a_run_whose_last_line_is_its_end_has_ended_whatever_came_before() {
        assert_eq!(
            now_of(Some(
                r#"{"ts":"2026-11-29T12:00:00.000Z","event":"run_finished","outcome":"rolled_back","exit_code":3}"#
            )),
            Now::Ended(Outcome::RolledBack)
        );
        assert_eq!(
            now_of(Some(
                r#"{"ts":"2026-11-29T12:00:00.000Z","event":"note","text":"x","operator":"bob"}"#
            )),
            Now::Stopped
        );
        assert_eq!(now_of(Some("not json")), Now::Stopped);
        assert_eq!(now_of(None), Now::Stopped);
    }

    #[test]
    fn what_stays_here_is_counted_beyond_what_the_store_had() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("journal.jsonl"), "{}\n{}\n{}\n{\"partial").unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("logs/p--a--1.log"), "0123456789").unwrap();
        std::fs::write(dir.path().join("logs/p--b--1.log"), "abc").unwrap();
        std::fs::write(dir.path().join("logs/p--b--1.status"), "not a log").unwrap();
        let logs = BTreeMap::from([("logs/p--a--1.log".to_string(), 4)]);
        assert_eq!(left_here(dir.path(), 1, &logs), (2, 6 + 3));
        assert_eq!(left_here(dir.path(), 5, &logs), (0, 9));
    }
}
