//! The driver's lease: one row per run in `leases` (run, operator, host, pid, epoch, expiry by the
//! store's clock). Taken when the run starts (a new epoch), renewed every third of its length,
//! released when the run ends. Counted by this host's clock from when a renewal was sent: two
//! thirds of the lease without an answer and no new step starts (`store_lease_unconfirmed`: the
//! lease still holds in the store, but not for long enough to start something); the whole lease
//! and it is lost (`store_lease_lost`). Either way steps go on once it is renewed; a newer epoch
//! in the row fences this driver for good. The row also says what the run waits for from other
//! operators (`waiting`: a step's approvals), written with each renewal and at once when it
//! changes, cleared when the lease is released.

use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout};
use tokio_postgres::Client;

use super::link::{LeaseState, Signal};
use super::{StoreConfig, StoreError, connect};
use crate::control::ApprovalWaiting;
use crate::journal::Event;

/// Who drives: what the lease row says.
#[derive(Debug, Clone)]
pub struct Driver {
    pub operator: String,
    pub host: String,
    pub pid: i32,
}

impl Driver {
    pub fn me() -> Driver {
        Driver {
            operator: crate::identity::operator(),
            host: crate::identity::host(),
            pid: std::process::id() as i32,
        }
    }

    pub fn name(&self) -> String {
        format!("{}@{} (pid {})", self.operator, self.host, self.pid)
    }
}

/// The run's row in `runs`, written with the first lease.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub run_id: String,
    pub runbook: String,
    pub title: String,
    pub file: String,
    pub sha256: String,
}

impl RunRow {
    /// The row of the run recorded in `run_dir` (its folder name is its id).
    pub fn of(rb: &crate::runbook::Runbook, run_dir: &std::path::Path) -> RunRow {
        RunRow {
            run_id: run_id(run_dir),
            runbook: rb.id.clone(),
            title: rb.title.clone(),
            file: rb.absolute_file(),
            sha256: rb.sha256.clone(),
        }
    }
}

/// A run's id in the store: its folder's name (`<UTC time>-<runbook id>`).
pub fn run_id(run_dir: &std::path::Path) -> String {
    run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A lease row as read: who, which epoch, valid until (seconds from now by the store's clock;
/// negative when expired).
#[derive(Debug, Clone)]
pub struct Holder {
    pub driver: Driver,
    pub epoch: i64,
    pub expires_in: f64,
}

/// The lease of `run_id`, if it has one.
pub async fn holder(client: &Client, run_id: &str) -> Result<Option<Holder>, tokio_postgres::Error> {
    Ok(holder_waiting(client, run_id).await?.map(|(h, _)| h))
}

/// The lease of `run_id`, if it has one, with what its driver says the run waits for from other
/// operators (`waiting`: a step's approvals), in one query.
pub async fn holder_waiting(
    client: &Client,
    run_id: &str,
) -> Result<Option<(Holder, Option<ApprovalWaiting>)>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT operator, host, pid, epoch, extract(epoch FROM expires_at - now())::float8,
                 waiting::text
             FROM leases WHERE run_id = $1",
            &[&run_id],
        )
        .await?;
    Ok(row.map(|r| {
        let holder = Holder {
            driver: Driver {
                operator: r.get(0),
                host: r.get(1),
                pid: r.get(2),
            },
            epoch: r.get(3),
            expires_in: r.get(4),
        };
        // A value that is not one (written by hand) is as good as none.
        let waiting = r
            .get::<_, Option<&str>>(5)
            .and_then(|w| serde_json::from_str(w).ok());
        (holder, waiting)
    }))
}

/// Runs the lease of one run until `done` says the run ended (then releases it), or it is
/// fenced. `epoch` tells the replicator which epoch it writes with.
pub struct LeaseTask {
    pub config: StoreConfig,
    /// A connection already open, if any (else one is made).
    pub client: Option<Client>,
    pub run: RunRow,
    /// Take the lease even though it has not expired: its holder was on this host and is dead.
    pub steal: bool,
    pub signals: mpsc::Sender<Signal>,
    pub epoch: watch::Sender<Option<i64>>,
    /// Until when a step may start, by this host's clock (see `Link`).
    pub valid_until: watch::Sender<Option<Instant>>,
    /// What the run waits for from other operators (`link::share_waiting`): written on the lease
    /// row with every renewal, and at once (a renewal ahead of time) when it changes.
    pub waiting: watch::Receiver<Option<ApprovalWaiting>>,
    pub done: watch::Receiver<bool>,
}

impl LeaseTask {
    pub async fn run(mut self) {
        let ttl = self.config.lease;
        let every = ttl / 3;
        // How long one attempt may take. Not bounded by the lease: the lease's margin and its end
        // are said on time while an attempt is still under way (below), and a store that is only
        // slow (a busy machine) still gets its renewal through.
        let op_timeout = every.max(Duration::from_secs(5));
        let connect_timeout = Duration::from_secs(10);
        let me = Driver::me();
        let mut client: Option<Client> = self.client.take();
        let mut state = LeaseState::Taking;
        // By this host's clock, when the last answered renewal was sent: steps may start until two
        // thirds of the lease after it, and the lease holds until its whole length after it.
        let mut confirmed: Option<Instant> = None;
        let mut next_try = Instant::now();
        let mut waiting_open = true;
        loop {
            // Wait for the next renewal, the end of the lease's margin or of the lease, or the run's.
            let deadline = lapses(&state, confirmed, ttl);
            tokio::select! {
                _ = tokio::time::sleep_until(next_try) => {}
                // What the run waits for changed: renewed now, carrying it.
                changed = self.waiting.changed(), if waiting_open => {
                    if changed.is_err() {
                        waiting_open = false;
                        continue;
                    }
                }
                _ = crate::duration::sleep_until_opt(deadline) => {
                    self.lapse(&mut state, confirmed, ttl).await;
                    continue;
                }
                changed = self.done.changed() => {
                    if changed.is_err() || *self.done.borrow() {
                        if let (
                            Some(c),
                            LeaseState::Held { epoch }
                            | LeaseState::Unconfirmed { epoch, .. }
                            | LeaseState::Lost { epoch, .. },
                        ) = (&client, &state)
                        {
                            let _ = timeout(op_timeout, release(c, &self.run.run_id, *epoch)).await;
                        }
                        return;
                    }
                    continue;
                }
            }
            next_try = Instant::now() + Duration::from_secs(1);
            let epoch = match &state {
                LeaseState::Taking => None,
                LeaseState::Held { epoch }
                | LeaseState::Unconfirmed { epoch, .. }
                | LeaseState::Lost { epoch, .. } => Some(*epoch),
                LeaseState::Fenced { .. } | LeaseState::Refused { .. } => return,
            };
            // One attempt (connecting first if need be). The lease's margin or its end passing
            // meanwhile is said on time; the attempt goes on.
            let waiting = self
                .waiting
                .borrow_and_update()
                .as_ref()
                .and_then(|w| serde_json::to_string(w).ok());
            let attempt = {
                let (config, run, me, steal) = (&self.config, &self.run, &me, self.steal);
                let waiting = waiting.as_deref();
                let mut c = client.take();
                async move {
                    if c.is_none() {
                        c = Some(
                            timeout(connect_timeout, connect::connect(config))
                                .await
                                .ok()?
                                .ok()?,
                        );
                    }
                    let conn = c.as_ref()?;
                    let sent = Instant::now();
                    let result = match epoch {
                        None => timeout(op_timeout, take(conn, run, me, ttl, steal, waiting)).await,
                        Some(epoch) => {
                            timeout(op_timeout, renew(conn, &run.run_id, epoch, ttl, waiting)).await
                        }
                    };
                    // Unreachable, or too slow: a fresh connection next time.
                    let outcome = result.ok()?.ok()?;
                    Some((c, sent, outcome))
                }
            };
            tokio::pin!(attempt);
            let done = loop {
                let deadline = lapses(&state, confirmed, ttl);
                tokio::select! {
                    biased;
                    _ = crate::duration::sleep_until_opt(deadline) => {
                        self.lapse(&mut state, confirmed, ttl).await;
                    }
                    done = &mut attempt => break done,
                }
            };
            let Some((c, sent, outcome)) = done else { continue };
            client = c;
            match outcome {
                Taken::Held(epoch) => {
                    let was_lost = matches!(state, LeaseState::Lost { .. } | LeaseState::Unconfirmed { .. });
                    let changed = !matches!(state, LeaseState::Held { .. });
                    state = LeaseState::Held { epoch };
                    confirmed = Some(sent);
                    let _ = self.valid_until.send(Some(sent + ttl * 2 / 3));
                    next_try = sent + every;
                    let _ = self.epoch.send(Some(epoch));
                    if was_lost {
                        self.tell(Signal::Journal(Event::StoreLeaseRenewed { epoch }))
                            .await;
                    }
                    if changed {
                        self.tell(Signal::Lease(state.clone())).await;
                    }
                }
                Taken::Other(h) => {
                    state = if matches!(state, LeaseState::Taking) {
                        LeaseState::Refused {
                            holder: h.driver.name(),
                        }
                    } else {
                        // Journaled by the engine, which hears it from here or from the copy.
                        LeaseState::Fenced {
                            by: h.driver.name(),
                            epoch: h.epoch,
                        }
                    };
                    let _ = self.epoch.send(None);
                    self.tell(Signal::Lease(state)).await;
                    return;
                }
            }
        }
    }

    /// The lease's margin or the lease itself ran out (`lapses`): said, journaled.
    async fn lapse(&self, state: &mut LeaseState, confirmed: Option<Instant>, ttl: Duration) {
        let Some(at) = confirmed else { return };
        match *state {
            LeaseState::Held { epoch } => {
                let (since, expires) = (wall(at), wall(at + ttl));
                *state = LeaseState::Unconfirmed {
                    epoch,
                    since,
                    expires,
                };
                self.tell(Signal::Journal(Event::StoreLeaseUnconfirmed {
                    since: crate::journal::timestamp(since),
                    expires: crate::journal::timestamp(expires),
                }))
                .await;
            }
            LeaseState::Unconfirmed { epoch, .. } => {
                *state = LeaseState::Lost {
                    epoch,
                    since: SystemTime::now(),
                };
                self.tell(Signal::Journal(Event::StoreLeaseLost {
                    expired: crate::journal::timestamp(SystemTime::now()),
                }))
                .await;
            }
            _ => return,
        }
        self.tell(Signal::Lease(state.clone())).await;
    }

    async fn tell(&self, s: Signal) {
        let _ = self.signals.send(s).await;
    }
}

/// When the lease's state next lapses by itself, counted from the last answered renewal
/// (`confirmed`): steps stop at two thirds of the lease, the lease ends at its whole length.
fn lapses(state: &LeaseState, confirmed: Option<Instant>, ttl: Duration) -> Option<Instant> {
    match (state, confirmed) {
        (LeaseState::Held { .. }, Some(at)) => Some(at + ttl * 2 / 3),
        (LeaseState::Unconfirmed { .. }, Some(at)) => Some(at + ttl),
        _ => None,
    }
}

/// An instant of this host's monotonic clock as a wall-clock time (for the journal).
fn wall(at: Instant) -> SystemTime {
    let now = Instant::now();
    if at >= now {
        SystemTime::now() + (at - now)
    } else {
        SystemTime::now() - (now - at)
    }
}

enum Taken {
    Held(i64),
    Other(Holder),
}

/// Registers the run and takes its lease with a new epoch, unless someone holds it still. An
/// epoch this very process took already (`fence`, before it rebuilt the run folder) is kept.
async fn take(
    c: &Client,
    run: &RunRow,
    me: &Driver,
    ttl: Duration,
    steal: bool,
    waiting: Option<&str>,
) -> Result<Taken, tokio_postgres::Error> {
    c.execute(
        "INSERT INTO runs (run_id, runbook, title, file, sha256, operator, host)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        &[
            &run.run_id,
            &run.runbook,
            &run.title,
            &run.file,
            &run.sha256,
            &me.operator,
            &me.host,
        ],
    )
    .await?;
    let secs = ttl.as_secs_f64();
    let row = c
        .query_opt(
            "INSERT INTO leases AS l (run_id, epoch, operator, host, pid, acquired_at, renewed_at, expires_at, waiting)
             VALUES ($1, 1, $2, $3, $4, now(), now(), now() + make_interval(secs => $5), ($7::text)::jsonb)
             ON CONFLICT (run_id) DO UPDATE SET
                 epoch = CASE WHEN l.host = EXCLUDED.host AND l.pid = EXCLUDED.pid
                     THEN l.epoch ELSE l.epoch + 1 END,
                 operator = EXCLUDED.operator,
                 host = EXCLUDED.host, pid = EXCLUDED.pid, acquired_at = now(), renewed_at = now(),
                 expires_at = EXCLUDED.expires_at, waiting = EXCLUDED.waiting
             WHERE l.expires_at < now() OR $6 OR (l.host = EXCLUDED.host AND l.pid = EXCLUDED.pid)
             RETURNING epoch",
            &[&run.run_id, &me.operator, &me.host, &me.pid, &secs, &steal, &waiting],
        )
        .await?;
    match row {
        Some(r) => Ok(Taken::Held(r.get(0))),
        None => match holder(c, &run.run_id).await? {
            Some(h) => Ok(Taken::Other(h)),
            None => Ok(Taken::Other(Holder {
                driver: Driver {
                    operator: "?".into(),
                    host: "?".into(),
                    pid: 0,
                },
                epoch: 0,
                expires_in: 0.0,
            })),
        },
    }
}

/// Renews the lease of `epoch`, with what the run waits for now; a newer epoch in the row means
/// this driver is fenced.
async fn renew(
    c: &Client,
    run_id: &str,
    epoch: i64,
    ttl: Duration,
    waiting: Option<&str>,
) -> Result<Taken, tokio_postgres::Error> {
    let n = c
        .execute(
            "UPDATE leases SET renewed_at = now(), expires_at = now() + make_interval(secs => $3),
                 waiting = ($4::text)::jsonb
             WHERE run_id = $1 AND epoch = $2",
            &[&run_id, &epoch, &ttl.as_secs_f64(), &waiting],
        )
        .await?;
    if n == 1 {
        return Ok(Taken::Held(epoch));
    }
    match holder(c, run_id).await? {
        Some(h) => Ok(Taken::Other(h)),
        None => Ok(Taken::Held(epoch)),
    }
}

/// The run ended: the lease expires now, so that another host may go on at once.
async fn release(c: &Client, run_id: &str, epoch: i64) -> Result<u64, tokio_postgres::Error> {
    c.execute(
        "UPDATE leases SET expires_at = now(), waiting = NULL WHERE run_id = $1 AND epoch = $2",
        &[&run_id, &epoch],
    )
    .await
}

/// Before a run folder is rebuilt or brought up to date from the store to be driven here: the
/// run's lease is taken by this process with a new epoch (kept if this process holds it already),
/// so that nothing an older driver still sends (the catch-up of a host that comes back, a copy
/// under way) lands in the store between the rebuild and this driver's first line. The session's
/// lease task then keeps that epoch (`take`). `steal`: as for `take`. A run without a lease row
/// has nobody to fence.
pub async fn fence(c: &Client, config: &StoreConfig, run_id: &str, steal: bool) -> Result<(), StoreError> {
    let me = Driver::me();
    let secs = config.lease.as_secs_f64();
    let fenced = c
        .query_opt(
            "UPDATE leases l SET
                 epoch = CASE WHEN l.host = $3 AND l.pid = $4 THEN l.epoch ELSE l.epoch + 1 END,
                 operator = $2, host = $3, pid = $4, acquired_at = now(), renewed_at = now(),
                 expires_at = now() + make_interval(secs => $5), waiting = NULL
             WHERE run_id = $1 AND (l.expires_at < now() OR $6 OR (l.host = $3 AND l.pid = $4))
             RETURNING epoch",
            &[&run_id, &me.operator, &me.host, &me.pid, &secs, &steal],
        )
        .await
        .map_err(|e| connect::explain(config, &e))?;
    if fenced.is_some() {
        return Ok(());
    }
    match holder(c, run_id)
        .await
        .map_err(|e| connect::explain(config, &e))?
    {
        None => Ok(()),
        Some(h) => Err(StoreError::Message(format!(
            "this run is driven by {} (lease epoch {}, valid for {:.0}s more); only one runbook drives \
             a run at a time",
            h.driver.name(),
            h.epoch,
            h.expires_in.ceil()
        ))),
    }
}

/// Before resuming: may this host take the run's lease? `Ok(steal)`, or who holds it.
pub async fn may_take(c: &Client, config: &StoreConfig, run_id: &str) -> Result<bool, StoreError> {
    let h = holder(c, run_id)
        .await
        .map_err(|e| connect::explain(config, &e))?;
    let Some(h) = h else { return Ok(false) };
    if h.expires_in < 0.0 {
        return Ok(false);
    }
    let me = Driver::me();
    // Taken by this process already (`fence`, before `takeover` rebuilt the folder).
    if h.driver.host == me.host && h.driver.pid == me.pid {
        return Ok(false);
    }
    let dead = h.driver.host == me.host && !std::path::Path::new(&format!("/proc/{}", h.driver.pid)).exists();
    if dead {
        return Ok(true);
    }
    Err(StoreError::Message(format!(
        "this run is driven by {} (lease epoch {}, valid for {:.0}s more); only one runbook drives \
         a run at a time: wait for the lease to expire if that runbook is gone",
        h.driver.name(),
        h.epoch,
        h.expires_in.ceil()
    )))
}
