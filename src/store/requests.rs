//! Requests to a run's driver from another host, through the shared store: the control socket's
//! `Request`s (hello, note, approve, takeover) as rows of `requests`, answered in their row with
//! the socket's `Response`. The asker inserts its row and `NOTIFY runbook_requests` (the run's
//! id); the driver, while it holds the run's lease, `LISTEN`s, hands the request to its engine
//! (`team::store_server`), writes the answer and `NOTIFY runbook_answers` (the row's id).
//!
//! Who asked: the store role of the asking session (`current_user`, written by the store itself:
//! the only thing the store vouches for), and the Unix user, host and pid the asking `runbook`
//! reports. A request nobody may answer never waits for a driver that comes later: when the
//! run's lease has expired (or was released) the asker answers its own row as the local
//! client's "nobody drives this run", and an asker that gives up (its session gone) is seen by
//! the driver, which then does not carry the request out.
//!
//! This module knows rows and notifications; turning a request into an engine command is
//! `team::store_server`'s.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_postgres::{Client, Notification};

use super::{Store, StoreConfig, StoreError, connect};
use crate::control::{Origin, Peer, Request, Response};

/// The channel askers notify (payload: the run's id).
pub const ASKED: &str = "runbook_requests";
/// The channel drivers notify (payload: the request's id).
pub const ANSWERED: &str = "runbook_answers";

/// How long a request waits for its answer: as on the control socket (`team::client`), 15 s,
/// but a takeover waits for the driver's operator as long as it takes (Ctrl-C gives up).
fn answer_timeout(req: &Request) -> Option<Duration> {
    match req {
        Request::Takeover { .. } => None,
        _ => Some(Duration::from_secs(15)),
    }
}

/// How often a waiting asker looks at the run's lease (a driver that died stops answering).
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Sends `req` to the driver of the run `run_id` through the store and returns its answer.
/// `StoreError::NoDriver` when nobody holds the run's lease (at once, or while waiting).
pub async fn request(store: &Store, run_id: &str, req: &Request) -> Result<Response, StoreError> {
    let cfg = &store.config;
    let sql = |e: tokio_postgres::Error| connect::explain(cfg, &e);
    let (tx, mut notices) = mpsc::unbounded_channel();
    let client = connect::connect_listening(cfg, tx).await?;
    client
        .batch_execute(&format!("LISTEN {ANSWERED}"))
        .await
        .map_err(sql)?;
    let known = client
        .query_opt("SELECT 1 FROM runs WHERE run_id = $1", &[&run_id])
        .await
        .map_err(sql)?;
    if known.is_none() {
        return Err(StoreError::Message(format!(
            "{run_id}: no such run in the shared store {}",
            cfg.display()
        )));
    }
    let payload = serde_json::to_string(req).map_err(|e| StoreError::Message(e.to_string()))?;
    let me = super::lease::Driver::me();
    let row = client
        .query_one(
            "INSERT INTO requests (run_id, kind, payload, role, unix_user, host, pid, backend, created_at)
             VALUES ($1, $2, $3::text::jsonb, '', $4, $5, $6, 0, now()) RETURNING id",
            &[&run_id, &req.op(), &payload, &unix_user(), &me.host, &me.pid],
        )
        .await
        .map_err(sql)?;
    let id: i64 = row.get(0);
    if !driven(&client, run_id).await.map_err(sql)? {
        return settle(&client, id, Err(StoreError::NoDriver))
            .await
            .map_err(sql)?;
    }
    client
        .execute("SELECT pg_notify($1, $2)", &[&ASKED, &run_id])
        .await
        .map_err(sql)?;
    let deadline = answer_timeout(req).map(|t| Instant::now() + t);
    loop {
        tokio::select! {
            n = notices.recv() => match n {
                Some(n) if n.payload() != id.to_string() => continue,
                Some(_) => {}
                None => {
                    return Err(StoreError::Unreachable(format!(
                        "the connection to the store {} was lost while waiting for the driver's answer",
                        cfg.display()
                    )));
                }
            },
            _ = crate::duration::sleep_until_opt(deadline) => {
                let late = StoreError::Message(format!(
                    "no answer from the driver within {}s (it may be stopped: Ctrl-Z, SIGSTOP, or cut off from the store)",
                    answer_timeout(req).unwrap_or_default().as_secs()
                ));
                return settle(&client, id, Err(late)).await.map_err(sql)?;
            }
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
        if let Some(answer) = answer_of(&client, id).await.map_err(sql)? {
            return Ok(answer);
        }
        if !driven(&client, run_id).await.map_err(sql)? {
            return settle(&client, id, Err(StoreError::NoDriver))
                .await
                .map_err(sql)?;
        }
    }
}

/// The asker gives up on its request: the row is answered with why (so that no driver carries
/// it out later), unless the driver answered it this moment, whose answer then counts.
async fn settle(
    client: &Client,
    id: i64,
    outcome: Result<Response, StoreError>,
) -> Result<Result<Response, StoreError>, tokio_postgres::Error> {
    let why = match &outcome {
        Ok(r) => r.clone(),
        Err(e) => Response::refused(e.to_string()),
    };
    let text = serde_json::to_string(&why).unwrap_or_default();
    let n = client
        .execute(
            "UPDATE requests SET answered_at = now(), answer = $2::text::jsonb
             WHERE id = $1 AND answered_at IS NULL",
            &[&id, &text],
        )
        .await?;
    if n == 0
        && let Some(answer) = answer_of(client, id).await?
    {
        return Ok(Ok(answer));
    }
    Ok(outcome)
}

/// The row's answer, once it has one.
async fn answer_of(client: &Client, id: i64) -> Result<Option<Response>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT answer::text FROM requests WHERE id = $1 AND answered_at IS NOT NULL",
            &[&id],
        )
        .await?;
    Ok(row.map(|r| {
        let text: Option<String> = r.get(0);
        text.and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_else(|| Response::refused("the driver's answer could not be read"))
    }))
}

/// Whether someone holds the run's lease now (by the store's clock). A holder on this host
/// whose process is dead holds nothing (as `lease::may_take` sees it).
pub async fn driven(client: &Client, run_id: &str) -> Result<bool, tokio_postgres::Error> {
    let Some(h) = super::lease::holder(client, run_id).await? else {
        return Ok(false);
    };
    let dead_here = h.driver.host == crate::identity::host()
        && !std::path::Path::new(&format!("/proc/{}", h.driver.pid)).exists();
    Ok(h.expires_in > 0.0 && !dead_here)
}

/// This process's Unix user, from the kernel (not `$USER`): what it reports as the asker.
fn unix_user() -> String {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| format!("uid{uid}"), |u| u.name)
}

/// A request as the driver receives it from the store.
#[derive(Debug, Clone)]
pub struct Asking {
    pub id: i64,
    pub request: Request,
    /// Who asked: the reported Unix user; `origin` has the reported host and pid and the store
    /// role. The uid is not known across hosts (`u32::MAX`).
    pub peer: Peer,
    /// The asking session: while it lives, the asker waits.
    pub backend: i32,
}

/// The driver's side: its run's requests, while it holds the run's lease.
pub struct Inbox {
    client: Arc<Client>,
    notices: mpsc::UnboundedReceiver<Notification>,
    run_id: String,
    /// The highest request id handed out already.
    seen: i64,
}

impl Inbox {
    /// Listens for the requests of `run_id`.
    pub async fn open(config: &StoreConfig, run_id: &str) -> Result<Inbox, StoreError> {
        let (tx, notices) = mpsc::unbounded_channel();
        let client = connect::connect_listening(config, tx).await?;
        client
            .batch_execute(&format!("LISTEN {ASKED}"))
            .await
            .map_err(|e| connect::explain(config, &e))?;
        Ok(Inbox {
            client: Arc::new(client),
            notices,
            run_id: run_id.to_string(),
            seen: 0,
        })
    }

    /// Where answers are written.
    pub fn answers(&self) -> Answers {
        Answers {
            client: self.client.clone(),
        }
    }

    /// The next requests for this run that this driver (`host`, `pid`) should answer: waits for
    /// a notification (or looks every few seconds, in case one was missed), and hands out only
    /// while the run's lease in the store is this driver's and valid, only requests whose asker
    /// still waits. An error means the connection is gone: open a new inbox.
    pub async fn next(&mut self, host: &str, pid: i32) -> Result<Vec<Asking>, StoreError> {
        let lost = |e: tokio_postgres::Error| StoreError::Unreachable(e.to_string());
        loop {
            tokio::select! {
                n = self.notices.recv() => match n {
                    Some(n) if n.payload() == self.run_id => {}
                    Some(_) => continue,
                    None => return Err(StoreError::Unreachable("the store's connection closed".into())),
                },
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            let rows = self
                .client
                .query(
                    "SELECT r.id, r.payload::text, r.role, r.unix_user, r.host, r.pid, r.backend
                     FROM requests r
                     WHERE r.run_id = $1 AND r.answered_at IS NULL AND r.id > $2
                       AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = r.backend)
                       AND EXISTS (SELECT 1 FROM leases l WHERE l.run_id = $1 AND l.host = $3
                                   AND l.pid = $4 AND l.expires_at > now())
                     ORDER BY r.id",
                    &[&self.run_id, &self.seen, &host, &pid],
                )
                .await
                .map_err(lost)?;
            let mut out = Vec::new();
            for row in rows {
                let id: i64 = row.get(0);
                self.seen = self.seen.max(id);
                let payload: String = row.get(1);
                let peer = Peer {
                    uid: u32::MAX,
                    user: row.get(3),
                    origin: Origin {
                        host: row.get(4),
                        pid: u32::try_from(row.get::<_, i32>(5)).ok(),
                        store_role: Some(row.get(2)),
                        ..Default::default()
                    },
                };
                match serde_json::from_str::<Request>(&payload) {
                    Ok(request) => out.push(Asking {
                        id,
                        request,
                        peer,
                        backend: row.get(6),
                    }),
                    Err(e) => {
                        let no = Response::refused(format!("not a request this driver understands: {e}"));
                        self.answers().answer(id, &no).await.map_err(lost)?;
                    }
                }
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// Writes answers (shared by the tasks that wait for the engine).
#[derive(Clone)]
pub struct Answers {
    client: Arc<Client>,
}

impl Answers {
    /// Answers request `id` (unless its asker settled it already) and tells the asker.
    pub async fn answer(&self, id: i64, response: &Response) -> Result<(), tokio_postgres::Error> {
        let text = serde_json::to_string(response).unwrap_or_default();
        self.client
            .execute(
                "UPDATE requests SET answered_at = now(), answer = $2::text::jsonb
                 WHERE id = $1 AND answered_at IS NULL",
                &[&id, &text],
            )
            .await?;
        self.client
            .execute("SELECT pg_notify($1, $2)", &[&ANSWERED, &id.to_string()])
            .await?;
        Ok(())
    }

    /// Whether the asker still waits: its session is open.
    pub async fn asker_waits(&self, backend: i32) -> Result<bool, tokio_postgres::Error> {
        let row = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
                &[&backend],
            )
            .await?;
        Ok(row.get(0))
    }
}

/// Where a run stands in the store: whether it is there, and how it ended (the outcome of a
/// `run_finished` after its last `run_started`), for messages before anything is asked.
pub async fn standing(store: &Store, run_id: &str) -> Result<Option<Option<String>>, StoreError> {
    let cfg = &store.config;
    let sql = |e: tokio_postgres::Error| connect::explain(cfg, &e);
    let client = store.client().await?;
    let known = client
        .query_opt("SELECT 1 FROM runs WHERE run_id = $1", &[&run_id])
        .await
        .map_err(sql)?;
    if known.is_none() {
        return Ok(None);
    }
    let last = client
        .query_opt(
            "SELECT event, line FROM events WHERE run_id = $1 AND event IN ('run_started', 'run_finished')
             ORDER BY seq DESC LIMIT 1",
            &[&run_id],
        )
        .await
        .map_err(sql)?;
    let outcome = last.and_then(|row| {
        let event: String = row.get(0);
        let line: String = row.get(1);
        (event == "run_finished").then(|| {
            serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v["outcome"].as_str().map(|o| o.replace('_', " ")))
                .unwrap_or_else(|| "finished".into())
        })
    });
    Ok(Some(outcome))
}

/// After a driver agreed to hand over: waits until nobody holds the run's lease (the old driver
/// has copied what it had and released it, or it expired), at most `limit`. `Ok(false)`: still
/// held after `limit`.
pub async fn wait_undriven(store: &Store, run_id: &str, limit: Duration) -> Result<bool, StoreError> {
    let cfg = &store.config;
    let client = store.client().await?;
    let deadline = Instant::now() + limit;
    loop {
        if !driven(&client, run_id)
            .await
            .map_err(|e| connect::explain(cfg, &e))?
        {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
