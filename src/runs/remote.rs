//! Following a run through the shared store, from a host that does not have its folder: what
//! `follow` does with inotify on a run folder, done with the store's notifications. The watcher
//! LISTENs on a connection of its own; when the driver's copy commits (journal lines, log bytes,
//! a lease renewed or taken over), the store says so, and the rows after the last ones held are
//! read: no polling. When the connection drops, that is said at once (`StoreLost`); it reconnects
//! with a growing pause, then says so (`StoreBack`) and catches up on everything it missed.
//!
//! The driver's lease says who drives and whether it is alive: a lease whose time runs out
//! without a renewal is read again when it expires, and the driver is gone if it was not renewed.
//! A watcher's notes and approvals go to the driver through the store's `requests`
//! (`store::requests`), not through here.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_postgres::Client;

use super::follow::Followed;
use super::{Driver, shared};
use crate::journal::Record;
use crate::store::connect;
use crate::store::lease::{self, Holder};
use crate::store::watch::{self, Change, Notifications};
use crate::store::{StoreConfig, StoreError};

/// The most of a log read back when following starts in the middle of a step (as `follow`).
const TAIL: u64 = 1 << 20;
/// Reconnecting: the first pause, and the longest.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How long one read may take before the connection is taken for lost.
const READ_LIMIT: Duration = Duration::from_secs(10);

/// A step log followed through the store.
struct RemoteLog {
    rel: String,
    /// Bytes read so far (from the log's start).
    have: u64,
    /// Not read yet, and the step has been running a while: start at its last `TAIL` bytes.
    tail: bool,
}

/// What is to be read from the store (notifications said it changed, or it was missed).
#[derive(Debug, Default, Clone, Copy)]
struct Wanted {
    lines: bool,
    logs: bool,
    lease: bool,
}

impl Wanted {
    const ALL: Wanted = Wanted {
        lines: true,
        logs: true,
        lease: true,
    };
}

/// Follows one run of the store.
///
/// `next` may be dropped at any await (the watcher's loop selects over keys and frames too):
/// whatever was read is kept in `ready` and what is still to be read in `wanted`, each updated
/// only once a read has returned, so that nothing read or notified is lost.
pub struct StoreFollower {
    config: StoreConfig,
    run_id: String,
    client: Option<Client>,
    notes: Option<Notifications>,
    /// The last journal line read (its `seq`).
    seq: i64,
    log: Option<RemoteLog>,
    /// The log of the step that ended last: its final bytes may reach the store after its end.
    closing: Option<RemoteLog>,
    holder: Option<Holder>,
    /// When the lease runs out unless renewed (by this host's clock).
    lease_until: Option<Instant>,
    /// What the lease row last said the run waits for from other operators.
    waiting: Option<crate::control::ApprovalWaiting>,
    /// Since when the store cannot be reached.
    lost: Option<SystemTime>,
    retry: Duration,
    retry_at: Option<Instant>,
    wanted: Wanted,
    /// Read, not handed out yet.
    ready: Vec<Followed>,
}

/// The store's settings for a watcher's connection: TCP keepalives, so that a store cut off
/// without a word (a network partition) is noticed within seconds, not hours.
fn listening(config: &StoreConfig) -> StoreConfig {
    let mut c = config.clone();
    c.pg.keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3);
    c
}

impl StoreFollower {
    /// Starts following run `run_id`: returns its journal as the store has it now; what is
    /// committed after comes from `next`.
    pub async fn open(
        config: &StoreConfig,
        run_id: &str,
    ) -> Result<(StoreFollower, Vec<Followed>), StoreError> {
        let config = listening(config);
        // Listening before reading: nothing committed in between is missed.
        let (client, notes) = watch::listen(&config).await?;
        let sql = |e: tokio_postgres::Error| connect::explain(&config, &e);
        let Some(run) = watch::run(&client, run_id).await.map_err(sql)? else {
            return Err(StoreError::Message(format!(
                "{run_id}: no such run in the store {}",
                config.display()
            )));
        };
        let mut f = StoreFollower {
            run_id: run_id.to_string(),
            client: Some(client),
            notes: Some(notes),
            seq: 0,
            log: None,
            closing: None,
            holder: None,
            lease_until: None,
            waiting: None,
            lost: None,
            retry: RETRY_FIRST,
            retry_at: None,
            wanted: Wanted::default(),
            ready: Vec::new(),
            config: config.clone(),
        };
        f.set_holder(run.lease);
        let now = f.read_lines().await.map_err(sql)?;
        Ok((f, now))
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The store's settings (with this watcher's keepalives).
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// `user@host:port/db`, for what the screen says.
    pub fn store(&self) -> String {
        self.config.display()
    }

    /// Who drives, from the lease (or, before any lease, who started the run).
    pub fn driver(&self, records: &[Record]) -> Option<Driver> {
        match &self.holder {
            Some(h) => Some(shared::lease_driver(h)),
            None => super::started_by(records).map(|(operator, host, pid)| Driver {
                alive: super::liveness(&host, pid),
                operator,
                host,
                pid,
            }),
        }
    }

    fn set_holder(&mut self, h: Option<Holder>) {
        self.lease_until = h
            .as_ref()
            .filter(|h| h.expires_in > 0.0)
            .map(|h| Instant::now() + Duration::from_secs_f64(h.expires_in));
        self.holder = h;
    }

    /// What of the driver a watcher sees change: who, which epoch, alive or not.
    fn driver_key(&self) -> Option<(i64, String, String, i32, bool)> {
        self.holder.as_ref().map(|h| {
            (
                h.epoch,
                h.driver.operator.clone(),
                h.driver.host.clone(),
                h.driver.pid,
                shared::lease_driver(h).alive == super::Liveness::Alive,
            )
        })
    }

    /// Follows a step's log from now on (relative to the run folder). `tail`: the step has been
    /// running a while; read only the end of what it wrote so far. Returns what the store has.
    pub async fn follow_log(&mut self, rel: &str, tail: bool) -> Vec<Followed> {
        self.log = Some(RemoteLog {
            rel: rel.to_string(),
            have: 0,
            tail,
        });
        match self.limited(|f| f.read_log_followed()).await {
            Ok(out) => out,
            Err(e) => {
                // Read again once the store is back.
                self.wanted.logs = true;
                self.lose(e);
                Vec::new()
            }
        }
    }

    /// Stops following the step's log (the step ended), after reading what the store has of it.
    /// Its last bytes may reach the store after the step's end: they come as `LogOutput`.
    pub async fn stop_log(&mut self) -> Vec<Followed> {
        if let Some(log) = &mut self.log {
            log.tail = false;
        }
        let out = match self.limited(|f| f.read_log_followed()).await {
            Ok(out) => out,
            Err(e) => {
                self.lose(e);
                Vec::new()
            }
        };
        self.closing = self.log.take();
        out
    }

    /// The end (at most `max` bytes, from a line's start) of a log of the run.
    pub async fn read_log(&mut self, rel: &str, max: u64) -> Result<Vec<u8>, String> {
        let Some(c) = &self.client else {
            return Err(format!(
                "the store {} cannot be reached now: select the step again when it is back",
                self.config.display()
            ));
        };
        let read = async {
            let len = watch::log_len(c, &self.run_id, rel).await?;
            let from = len.saturating_sub(max);
            let mut bytes = watch::log_from(c, &self.run_id, rel, from).await?;
            if from > 0 {
                let cut = memchr::memchr(b'\n', &bytes).map_or(0, |i| i + 1);
                bytes.drain(..cut);
            }
            Ok::<_, tokio_postgres::Error>((len, bytes))
        };
        match tokio::time::timeout(READ_LIMIT, read).await {
            Ok(Ok((0, _))) => Err(format!("no log: the store has no {rel} of this run")),
            Ok(Ok((_, bytes))) => Ok(bytes),
            Ok(Err(e)) => Err(format!(
                "cannot read {rel} from the store: {}",
                connect::explain(&self.config, &e)
            )),
            Err(_) => Err(format!(
                "cannot read {rel} from the store: it did not answer in 10s"
            )),
        }
    }

    /// Waits until something changed, and returns it. The store going away and coming back are
    /// said too; this never fails (it reconnects).
    pub async fn next(&mut self) -> Vec<Followed> {
        loop {
            if self.client.is_none() {
                // That it was lost is said before trying again.
                if !self.ready.is_empty() {
                    return std::mem::take(&mut self.ready);
                }
                self.reconnect().await;
                continue;
            }
            // The logs first, then the journal: a step's last output comes before its end.
            if self.wanted.logs {
                match self.limited(|f| f.read_logs()).await {
                    Ok(out) => {
                        self.ready.extend(out);
                        self.wanted.logs = false;
                    }
                    Err(e) => self.lose(e),
                }
                continue;
            }
            if self.wanted.lines {
                match self.limited(|f| f.read_lines()).await {
                    Ok(out) => {
                        self.ready.extend(out);
                        self.wanted.lines = false;
                    }
                    Err(e) => self.lose(e),
                }
                continue;
            }
            if self.wanted.lease {
                match self.limited(|f| f.read_lease()).await {
                    Ok(out) => {
                        self.ready.extend(out);
                        self.wanted.lease = false;
                    }
                    Err(e) => self.lose(e),
                }
                continue;
            }
            if !self.ready.is_empty() {
                return std::mem::take(&mut self.ready);
            }
            let Some(notes) = self.notes.as_mut() else {
                self.lose("the connection to the store was closed".into());
                continue;
            };
            // A lease that runs out without a word is read again then (plus a little: its
            // renewal may be on its way).
            let expiry = self.lease_until.map(|t| t + Duration::from_millis(300));
            tokio::select! {
                n = notes.recv() => {
                    let Some(first) = n else {
                        self.lose("the connection to the store was closed".into());
                        continue;
                    };
                    let mut changes = vec![first];
                    while let Ok(more) = notes.try_recv() {
                        changes.push(more);
                    }
                    self.notified(&changes);
                }
                _ = crate::duration::sleep_until_opt(expiry) => {
                    self.lease_until = None;
                    self.wanted.lease = true;
                }
            }
        }
    }

    /// Notes what the notifications say changed of this run: its journal, a followed log, the
    /// lease.
    fn notified(&mut self, notes: &[tokio_postgres::Notification]) {
        for n in notes {
            let Some(c) = Change::parse(n.payload()) else {
                continue;
            };
            if c.run != self.run_id {
                continue;
            }
            self.wanted.lines |= c.seq.is_some_and(|s| s > self.seq);
            self.wanted.lease |= c.lease.is_some();
            if let (Some(l), Some(end)) = (c.log, c.end) {
                self.wanted.logs |= [&self.log, &self.closing]
                    .into_iter()
                    .flatten()
                    .any(|f| f.rel == l && end as u64 > f.have);
            }
        }
    }

    /// The store went away: said once, then reconnected to by `next`.
    fn lose(&mut self, why: String) {
        self.client = None;
        self.notes = None;
        if self.lost.is_none() {
            self.lost = Some(SystemTime::now());
            self.ready.push(Followed::StoreLost(why));
        }
    }

    /// One attempt to reconnect, after a pause that grows; once connected, everything that may
    /// have been missed is read again.
    async fn reconnect(&mut self) {
        let at = *self.retry_at.get_or_insert_with(|| Instant::now() + self.retry);
        tokio::time::sleep_until(at).await;
        self.retry_at = None;
        self.retry = (self.retry * 2).min(RETRY_MAX);
        let Ok(Ok((client, notes))) = tokio::time::timeout(READ_LIMIT, watch::listen(&self.config)).await
        else {
            return;
        };
        self.client = Some(client);
        self.notes = Some(notes);
        self.retry = RETRY_FIRST;
        self.wanted = Wanted::ALL;
        if self.lost.take().is_some() {
            self.ready.push(Followed::StoreBack);
        }
    }

    /// One read, within `READ_LIMIT`, its error in words.
    async fn limited<'a, F, Fut>(&'a mut self, read: F) -> Result<Vec<Followed>, String>
    where
        F: FnOnce(&'a mut StoreFollower) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<Followed>, tokio_postgres::Error>> + 'a,
    {
        let config = self.config.clone();
        if self.client.is_none() {
            return Err("not connected".into());
        }
        match tokio::time::timeout(READ_LIMIT, read(self)).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(connect::explain(&config, &e).to_string()),
            Err(_) => Err("the store did not answer in 10s".into()),
        }
    }

    /// The followed log's new bytes, and the last bytes of the one that ended.
    async fn read_logs(&mut self) -> Result<Vec<Followed>, tokio_postgres::Error> {
        let mut out = self.read_log_closing().await?;
        out.extend(self.read_log_followed().await?);
        Ok(out)
    }

    async fn read_log_closing(&mut self) -> Result<Vec<Followed>, tokio_postgres::Error> {
        let (Some(c), Some(log)) = (&self.client, &mut self.closing) else {
            return Ok(Vec::new());
        };
        let bytes = watch::log_from(c, &self.run_id, &log.rel, log.have).await?;
        if bytes.is_empty() {
            return Ok(Vec::new());
        }
        log.have += bytes.len() as u64;
        Ok(vec![Followed::LogOutput {
            log: log.rel.clone(),
            bytes,
        }])
    }

    async fn read_log_followed(&mut self) -> Result<Vec<Followed>, tokio_postgres::Error> {
        let (Some(c), Some(log)) = (&self.client, &mut self.log) else {
            return Ok(Vec::new());
        };
        let mut from = log.have;
        let mut skip_to_line = false;
        if log.tail && log.have == 0 {
            let len = watch::log_len(c, &self.run_id, &log.rel).await?;
            if len > TAIL {
                from = len - TAIL;
                skip_to_line = true;
            }
        }
        let mut bytes = watch::log_from(c, &self.run_id, &log.rel, from).await?;
        // Nothing below awaits: what was read and where it ends change together.
        log.tail = false;
        log.have = from + bytes.len() as u64;
        if skip_to_line {
            let cut = memchr::memchr(b'\n', &bytes).map_or(0, |i| i + 1);
            bytes.drain(..cut);
        }
        Ok(if bytes.is_empty() {
            Vec::new()
        } else {
            vec![Followed::Output(bytes)]
        })
    }

    async fn read_lines(&mut self) -> Result<Vec<Followed>, tokio_postgres::Error> {
        let Some(c) = &self.client else {
            return Ok(Vec::new());
        };
        let rows = watch::lines_after(c, &self.run_id, self.seq).await?;
        let mut out = Vec::new();
        for (seq, line) in rows {
            // Lines are committed in order; one not there yet is read at the next notification.
            if seq != self.seq + 1 {
                break;
            }
            self.seq = seq;
            match serde_json::from_str::<Record>(&line) {
                Ok(r) => out.push(Followed::Record(Box::new(r))),
                Err(e) => out.push(Followed::BadLine(format!(
                    "event {seq} of {} in the store cannot be read ({e}); skipped",
                    self.run_id
                ))),
            }
        }
        Ok(out)
    }

    async fn read_lease(&mut self) -> Result<Vec<Followed>, tokio_postgres::Error> {
        let Some(c) = &self.client else {
            return Ok(Vec::new());
        };
        let read = lease::holder_waiting(c, &self.run_id).await?;
        let (h, waiting) = match read {
            // What a lease that ran out says is not the driver's word any more.
            Some((h, w)) => {
                let w = w.filter(|_| h.expires_in > 0.0);
                (Some(h), w)
            }
            None => (None, None),
        };
        let before = self.driver_key();
        self.set_holder(h);
        let mut out = Vec::new();
        if self.driver_key() != before {
            out.push(Followed::DriverChanged);
        }
        if waiting != self.waiting {
            self.waiting.clone_from(&waiting);
            out.extend(waiting.map(Followed::Approvals));
        }
        Ok(out)
    }
}
