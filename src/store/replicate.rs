//! Copying a run to the store: every journal line (as `events`, numbered from 1 in file order)
//! and every step log (as `log_chunks`, by byte offset), read back from the local files, which
//! were written (and the journal fsynced) first. The backlog is those files: memory holds one
//! batch at most, a wake-up can be lost without losing anything, and after an outage the copy
//! goes on from what the store already has. Writes are idempotent (`ON CONFLICT DO NOTHING`) and
//! refused when the run's lease has a newer epoch than the one this driver holds.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::timeout;
use tokio_postgres::Client;

use super::link::{Behind, LeaseState, Signal, Status};
use super::{StoreConfig, connect};
use crate::journal::Event;

/// At most this many journal lines go in one transaction.
const MAX_EVENTS: usize = 500;
/// At most this many bytes of a log go in one chunk.
const MAX_CHUNK: usize = 1 << 20;
/// While a step runs, its log is looked at this often (the journal wakes us up itself).
const LOG_POLL: Duration = Duration::from_millis(100);

pub struct Replicator {
    pub config: StoreConfig,
    pub run_id: String,
    pub run_dir: PathBuf,
    /// The lease's epoch, once taken (`None`: not yet, or fenced).
    pub epoch: watch::Receiver<Option<i64>>,
    pub nudge: Arc<Notify>,
    pub signals: mpsc::Sender<Signal>,
    /// The run ended: copy what is left, then stop.
    pub done: watch::Receiver<bool>,
    /// Where the copy stands, for whoever waits for it at the end.
    pub progress: watch::Sender<Status>,
    /// What the store has of the run, as far as this copy knows (for what is left at the end).
    pub copied: Copied,
    /// Marks the run folder as not fully copied (`catchup::MARKER`) once the epoch is known.
    pub mark: bool,
}

/// What the store has of a run, shared with whoever asks how much is left.
pub type Copied = Arc<std::sync::Mutex<Option<Cursor>>>;

/// How much of the run in `run_dir` the store lacks: journal lines and bytes (journal and logs).
pub fn remaining(run_dir: &std::path::Path, copied: &Copied) -> (u64, u64) {
    let cursor = copied.lock().ok().and_then(|c| c.clone());
    backlog(run_dir, cursor.as_ref())
}

/// What the store has of this run.
#[derive(Default, Clone)]
pub struct Cursor {
    /// Journal lines copied, and where the next one starts in the file.
    lines: u64,
    offset: u64,
    /// Bytes copied of each log (by its path in the run folder).
    logs: BTreeMap<String, u64>,
    /// A step runs (its log grows without the journal saying so).
    step_running: bool,
}

/// One batch read from the local files.
enum Batch {
    Events(Vec<Line>),
    Chunk { log: String, offset: u64, data: Vec<u8> },
}

struct Line {
    seq: i64,
    event: String,
    ts: String,
    text: String,
}

#[derive(serde::Deserialize)]
struct Head {
    ts: String,
    event: String,
}

enum Sent {
    Ok,
    /// Another driver holds a newer epoch.
    Fenced(String, i64),
}

impl Replicator {
    pub async fn run(mut self) {
        let op_timeout = Duration::from_secs(10);
        let mut client: Option<Client> = None;
        let mut cursor: Option<Cursor> = None;
        let mut behind: Option<(SystemTime, String)> = None;
        let mut finishing = false;
        loop {
            // Connected while the lease is being taken: the copy is ready when it is.
            if client.is_none()
                && self.epoch.borrow().is_none()
                && !finishing
                && let Ok(Ok(c)) = timeout(op_timeout, connect_for_copy(&self.config)).await
            {
                client = Some(c);
            }
            let Some(epoch) = *self.epoch.borrow() else {
                // Not taken yet, or fenced: nothing is written under no lease.
                tokio::select! {
                    r = self.epoch.changed() => if r.is_err() { return },
                    r = self.done.changed() => if r.is_err() || *self.done.borrow() { return },
                }
                continue;
            };
            if client.is_none() {
                match timeout(op_timeout, connect_for_copy(&self.config)).await {
                    Ok(Ok(c)) => client = Some(c),
                    Ok(Err(e)) => {
                        self.fell_behind(&mut behind, e.to_string(), &cursor).await;
                        if finishing {
                            return;
                        }
                        self.pause(Duration::from_secs(1), &mut finishing).await;
                        continue;
                    }
                    Err(_) => {
                        self.fell_behind(&mut behind, "timed out connecting".into(), &cursor)
                            .await;
                        if finishing {
                            return;
                        }
                        self.pause(Duration::from_secs(1), &mut finishing).await;
                        continue;
                    }
                }
            }
            if std::mem::take(&mut self.mark) {
                // A later `runbook` with this store finishes the copy if this one cannot.
                let _ = super::catchup::mark(&self.run_dir, &self.config, epoch);
            }
            let Some(c) = client.as_mut() else { continue };
            if cursor.is_none() {
                match timeout(op_timeout, load_cursor(c, &self.run_id, &self.run_dir)).await {
                    Ok(Ok(cur)) => {
                        self.share(&cur);
                        cursor = Some(cur);
                    }
                    _ => {
                        client = None;
                        continue;
                    }
                }
            }
            let Some(cur) = cursor.as_mut() else { continue };
            // A file that cannot be read now is read again at the next wake-up.
            let batch = next_batch(&self.run_dir, cur).unwrap_or_default();
            let Some(batch) = batch else {
                if let Some((since, _)) = behind.take() {
                    let ms = since.elapsed().map_or(0, |d| d.as_millis() as u64);
                    let _ = self.signals.send(Signal::Status(Status::default())).await;
                    let _ = self
                        .signals
                        .send(Signal::Journal(Event::StoreCaughtUp { behind_ms: ms }))
                        .await;
                    continue;
                }
                // Said once (a watcher such as the screen wakes up for each change).
                self.progress
                    .send_if_modified(|s| std::mem::take(s) != Status::default());
                if finishing {
                    return;
                }
                let poll = if cur.step_running { Some(LOG_POLL) } else { None };
                self.wait(poll, &mut finishing).await;
                continue;
            };
            match timeout(op_timeout, send(c, &self.run_id, epoch, &batch)).await {
                Ok(Ok(Sent::Ok)) => {
                    advance(cur, batch);
                    self.share(cur);
                }
                Ok(Ok(Sent::Fenced(by, newer))) => {
                    let _ = self
                        .signals
                        .send(Signal::Lease(LeaseState::Fenced { by, epoch: newer }))
                        .await;
                    return;
                }
                Ok(Err(e)) => {
                    let why = connect::explain(&self.config, &e).to_string();
                    client = None;
                    self.fell_behind(&mut behind, why, &cursor).await;
                    if finishing {
                        return;
                    }
                    self.pause(Duration::from_secs(1), &mut finishing).await;
                }
                Err(_) => {
                    client = None;
                    self.fell_behind(&mut behind, "the store did not answer in 10s".into(), &cursor)
                        .await;
                    if finishing {
                        return;
                    }
                }
            }
        }
    }

    fn share(&self, cur: &Cursor) {
        if let Ok(mut c) = self.copied.lock() {
            *c = Some(cur.clone());
        }
    }

    /// The store cannot be written: say so once (journaled), then keep the figures fresh.
    async fn fell_behind(
        &self,
        behind: &mut Option<(SystemTime, String)>,
        why: String,
        cursor: &Option<Cursor>,
    ) {
        let why = short(&why);
        let first = behind.is_none();
        let since = behind.as_ref().map_or_else(SystemTime::now, |b| b.0);
        *behind = Some((since, why.clone()));
        let (events, bytes) = backlog(&self.run_dir, cursor.as_ref());
        let status = Status {
            behind: Some(Behind {
                since,
                events,
                bytes,
                error: why.clone(),
            }),
        };
        let _ = self.progress.send(status.clone());
        if first {
            let _ = self
                .signals
                .send(Signal::Journal(Event::StoreBehind {
                    since: crate::journal::timestamp(since),
                    events,
                    bytes,
                    error: why,
                }))
                .await;
        }
        let _ = self.signals.send(Signal::Status(status)).await;
    }

    /// Waits for a wake-up (the journal grew), the poll of a running step's log, or the end.
    async fn wait(&mut self, poll: Option<Duration>, finishing: &mut bool) {
        let deadline = poll.map(|p| tokio::time::Instant::now() + p);
        tokio::select! {
            _ = self.nudge.notified() => {}
            _ = crate::duration::sleep_until_opt(deadline) => {}
            r = self.done.changed() => if r.is_err() || *self.done.borrow() { *finishing = true },
        }
    }

    async fn pause(&mut self, d: Duration, finishing: &mut bool) {
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            r = self.done.changed() => if r.is_err() || *self.done.borrow() { *finishing = true },
        }
    }
}

/// A connection for the copy. Logs are stored compressed with lz4 where the server has it
/// (PostgreSQL 14 and later, built with lz4, as Debian's is): its default, pglz, makes
/// PostgreSQL spend about 70 ms on each MiB of a chatty step's log, lz4 about 20 ms. A server
/// without it keeps its default.
async fn connect_for_copy(config: &StoreConfig) -> Result<Client, super::StoreError> {
    let c = connect::connect(config).await?;
    let _ = c.batch_execute("SET default_toast_compression = 'lz4'").await;
    Ok(c)
}

/// The first line of an error: messages stay short on an 80-column header.
fn short(why: &str) -> String {
    let line = why.lines().next().unwrap_or(why);
    let line = line.strip_prefix("cannot reach the store ").unwrap_or(line);
    line.chars().take(120).collect()
}

/// What the store has of the run, and where that ends in the local files.
async fn load_cursor(
    c: &Client,
    run_id: &str,
    run_dir: &std::path::Path,
) -> Result<Cursor, tokio_postgres::Error> {
    let row = c
        .query_one(
            "SELECT coalesce(max(seq), 0) FROM events WHERE run_id = $1",
            &[&run_id],
        )
        .await?;
    let lines: i64 = row.get(0);
    let mut cur = Cursor::default();
    for r in c
        .query(
            "SELECT log, max(\"offset\" + length(data))::int8 FROM log_chunks WHERE run_id = $1 GROUP BY log",
            &[&run_id],
        )
        .await?
    {
        cur.logs.insert(r.get(0), r.get::<_, i64>(1) as u64);
    }
    // Where line `lines` ends in the local journal; whether a step was running by then.
    let text = std::fs::read(run_dir.join("journal.jsonl")).unwrap_or_default();
    let mut n = 0u64;
    let mut offset = 0usize;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if n == lines as u64 || !line.ends_with(b"\n") {
            break;
        }
        n += 1;
        offset += line.len();
        note_step(&mut cur, line);
    }
    cur.lines = n;
    cur.offset = offset as u64;
    Ok(cur)
}

fn note_step(cur: &mut Cursor, line: &[u8]) {
    use memchr::memmem::find;
    if find(line, br#""event":"step_started""#).is_some() {
        cur.step_running = true;
    } else if find(line, br#""event":"step_finished""#).is_some() {
        cur.step_running = false;
    }
}

/// The next batch: journal lines first (whole lines only), then the logs. `None`: nothing new.
fn next_batch(run_dir: &std::path::Path, cur: &Cursor) -> std::io::Result<Option<Batch>> {
    let mut f = std::fs::File::open(run_dir.join("journal.jsonl"))?;
    f.seek(SeekFrom::Start(cur.offset))?;
    let mut buf = Vec::new();
    f.take(4 << 20).read_to_end(&mut buf)?;
    let mut lines = Vec::new();
    for (seq, raw) in (cur.lines as i64 + 1..).zip(buf.split_inclusive(|&b| b == b'\n')) {
        if !raw.ends_with(b"\n") || lines.len() == MAX_EVENTS {
            break;
        }
        let text = String::from_utf8_lossy(&raw[..raw.len() - 1]).into_owned();
        let head: Option<Head> = serde_json::from_str(&text).ok();
        let (ts, event) = head.map_or_else(|| (String::new(), "unreadable".into()), |h| (h.ts, h.event));
        lines.push(Line { seq, event, ts, text });
    }
    if !lines.is_empty() {
        return Ok(Some(Batch::Events(lines)));
    }
    let logs = run_dir.join("logs");
    let Ok(dir) = std::fs::read_dir(&logs) else {
        return Ok(None);
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    for name in names {
        let rel = format!("logs/{name}");
        let have = cur.logs.get(&rel).copied().unwrap_or(0);
        let len = std::fs::metadata(logs.join(&name)).map_or(0, |m| m.len());
        if len <= have {
            continue;
        }
        let mut f = std::fs::File::open(logs.join(&name))?;
        f.seek(SeekFrom::Start(have))?;
        let mut data = Vec::new();
        f.take(MAX_CHUNK as u64).read_to_end(&mut data)?;
        if data.is_empty() {
            continue;
        }
        return Ok(Some(Batch::Chunk {
            log: rel,
            offset: have,
            data,
        }));
    }
    Ok(None)
}

fn advance(cur: &mut Cursor, batch: Batch) {
    match batch {
        Batch::Events(lines) => {
            for l in &lines {
                cur.lines = l.seq as u64;
                cur.offset += l.text.len() as u64 + 1;
                note_step(cur, l.text.as_bytes());
            }
        }
        Batch::Chunk { log, offset, data } => {
            cur.logs.insert(log, offset + data.len() as u64);
        }
    }
}

/// Writes one batch in a transaction, if the lease is still ours.
async fn send(
    c: &mut Client,
    run_id: &str,
    epoch: i64,
    batch: &Batch,
) -> Result<Sent, tokio_postgres::Error> {
    let tx = c.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT epoch, operator, host, pid FROM leases WHERE run_id = $1 FOR SHARE",
            &[&run_id],
        )
        .await?;
    if let Some(r) = &row {
        let theirs: i64 = r.get(0);
        if theirs != epoch {
            let by = format!(
                "{}@{} (pid {})",
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, i32>(3)
            );
            return Ok(Sent::Fenced(by, theirs));
        }
    }
    match batch {
        Batch::Events(lines) => {
            let seqs: Vec<i64> = lines.iter().map(|l| l.seq).collect();
            let events: Vec<&str> = lines.iter().map(|l| l.event.as_str()).collect();
            let ts: Vec<&str> = lines.iter().map(|l| l.ts.as_str()).collect();
            let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
            tx.execute(
                "INSERT INTO events (run_id, seq, event, ts, line, epoch)
                 SELECT $1, s.seq, s.event, s.ts, s.line, $2
                 FROM unnest($3::int8[], $4::text[], $5::text[], $6::text[]) AS s(seq, event, ts, line)
                 ON CONFLICT DO NOTHING",
                &[&run_id, &epoch, &seqs, &events, &ts, &texts],
            )
            .await?;
        }
        Batch::Chunk { log, offset, data } => {
            tx.execute(
                "INSERT INTO log_chunks (run_id, log, \"offset\", data, epoch) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT DO NOTHING",
                &[&run_id, log, &(*offset as i64), data, &epoch],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Sent::Ok)
}

/// How much the store lacks: journal lines and bytes (journal and logs) beyond what it has.
fn backlog(run_dir: &std::path::Path, cursor: Option<&Cursor>) -> (u64, u64) {
    let empty = Cursor::default();
    let cur = cursor.unwrap_or(&empty);
    let text = std::fs::read(run_dir.join("journal.jsonl")).unwrap_or_default();
    let rest = text.get(cur.offset as usize..).unwrap_or_default();
    let events = rest.iter().filter(|&&b| b == b'\n').count() as u64;
    let mut bytes = rest.len() as u64;
    if let Ok(dir) = std::fs::read_dir(run_dir.join("logs")) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".log") {
                continue;
            }
            let have = cur.logs.get(&format!("logs/{name}")).copied().unwrap_or(0);
            let len = e.metadata().map_or(0, |m| m.len());
            bytes += len.saturating_sub(have);
        }
    }
    (events, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_step_is_seen_in_the_journal_lines() {
        let mut cur = Cursor::default();
        note_step(
            &mut cur,
            br#"{"ts":"t","event":"step_started","phase":"p","step":"s"}"#,
        );
        assert!(cur.step_running);
        note_step(&mut cur, br#"{"ts":"t","event":"note","text":"step_started"}"#);
        assert!(cur.step_running);
        note_step(&mut cur, br#"{"ts":"t","event":"step_finished","phase":"p"}"#);
        assert!(!cur.step_running);
    }
}
