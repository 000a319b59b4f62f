//! Notifications (SPEC §6): every journaled event is offered here, and the `[[notify]]` targets
//! that name it get it, in the background, so that a slow or failing receiver never delays a step
//! or the screen.
//!
//! ```text
//! engine ──offer (try_send, never waits)──▶ dispatcher ──▶ one worker per target, in order
//!                                              │ waiting timers      │ 3 attempts, backoff, timeout
//!                                              ▼                     ▼
//!                                                journal: notify_sent / notify_failed / notify_rehearsed
//! ```
//!
//! The engine's queue is bounded (`QUEUE`), and so is each target's (`TARGET_QUEUE`): what does not
//! fit is journaled as not sent, never waited for. A rehearsal sends nothing and journals what it
//! would have sent. When the run ends, what is still pending gets `GRACE`, then is journaled as not
//! sent. What a target sends is `runbook::notify`'s; the HTTP request is `deliver`'s.

mod deliver;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::journal::{Appender, Event, Record};
use crate::runbook::notify::{self as format, RunInfo, WAITING};
use crate::runbook::{NotifyTarget, Runbook};
use crate::secrets::{Redactor, Secrets};

/// Events waiting for the dispatcher; it only sorts them, so this is never full in practice.
pub const QUEUE: usize = 1024;
/// Notifications waiting for one target; beyond this they are journaled as not sent.
pub const TARGET_QUEUE: usize = 64;
/// How long the end of a run waits for notifications still pending.
pub const GRACE: Duration = Duration::from_secs(5);

/// What the engine offers the dispatcher.
enum Offer {
    Event(Box<Record>),
    /// The run waits for an operator at this step, for this reason.
    Waiting {
        phase: String,
        step: String,
        why: &'static str,
    },
}

/// One notification for one target.
struct Job {
    id: u64,
    on: String,
    /// The event as journaled (secrets masked).
    record: Value,
    /// What a template sees.
    context: Value,
}

/// Notifications taken but not yet journaled, by job id: (target, event name, attempts made).
type Pending = Arc<Mutex<HashMap<u64, (String, String, u32)>>>;

/// The engine's side: offers events and waits, and at the end gives pending deliveries their grace.
pub struct Notifier {
    inner: Option<Running>,
}

struct Running {
    offers: mpsc::Sender<Offer>,
    dropped: Arc<AtomicU64>,
    dispatcher: Option<tokio::task::JoinHandle<Vec<tokio::task::JoinHandle<()>>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// Every worker, to be stopped if the notifier is dropped without `finish` (the run could not
    /// be journaled): a worker retrying a slow receiver must not keep the front end waiting.
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    pending: Pending,
    journal: Appender,
    shown: mpsc::Sender<Record>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(d) = &self.dispatcher {
            d.abort();
        }
        if let Ok(tasks) = self.tasks.lock() {
            tasks.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }
}

/// What the notifier needs of the run.
pub struct Setup {
    pub runbook: Arc<Runbook>,
    pub run: RunInfo,
    pub secrets: Secrets,
    pub redactor: Redactor,
    pub journal: Appender,
    /// Events the notifier journals, for the front end to show.
    pub shown: mpsc::Sender<Record>,
}

/// What a template sees of the run under `run`, as it starts (`outcome` is filled in at its end).
pub fn run_info(
    rb: &Runbook,
    run_dir: &std::path::Path,
    operator: &str,
    host: &str,
    mode: &str,
    rehearsal: bool,
) -> RunInfo {
    let now = std::time::SystemTime::now();
    RunInfo {
        id: run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        runbook: rb.id.clone(),
        title: rb.title.clone(),
        vars: rb.vars.iter().cloned().collect(),
        operator: operator.into(),
        host: host.into(),
        mode: mode.into(),
        rehearsal,
        dir: run_dir.display().to_string(),
        started: crate::journal::timestamp(now),
        started_ms: now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        outcome: None,
    }
}

impl Notifier {
    /// A notifier that sends nothing (a runbook without `[[notify]]`).
    pub fn none() -> Notifier {
        Notifier { inner: None }
    }

    /// Starts the dispatcher and a worker per target. Must be called inside a tokio runtime.
    pub fn start(setup: Setup) -> Notifier {
        if setup.runbook.notify.is_empty() {
            return Notifier::none();
        }
        let (offers, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let pending: Pending = Arc::default();
        let journal = setup.journal.clone();
        let shown = setup.shown.clone();
        let tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let dispatcher = tokio::spawn(dispatch(
            setup,
            rx,
            dropped.clone(),
            pending.clone(),
            tasks.clone(),
        ));
        Notifier {
            inner: Some(Running {
                offers,
                dropped,
                dispatcher: Some(dispatcher),
                workers: Vec::new(),
                tasks,
                pending,
                journal,
                shown,
            }),
        }
    }

    /// Offers a journaled event; never waits. A notification event itself is never offered.
    pub fn offer(&self, record: &Record) {
        let Some(r) = &self.inner else { return };
        if matches!(
            record.event,
            Event::NotifySent { .. } | Event::NotifyFailed { .. } | Event::NotifyRehearsed { .. }
        ) {
            return;
        }
        if r.offers.try_send(Offer::Event(Box::new(record.clone()))).is_err() {
            r.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The run now waits for an operator (`why` in words: "go-ahead", "failed step", ...).
    pub fn waiting(&self, phase: &str, step: &str, why: &'static str) {
        let Some(r) = &self.inner else { return };
        let _ = r.offers.try_send(Offer::Waiting {
            phase: phase.into(),
            step: step.into(),
            why,
        });
    }

    /// The run has ended and every event is offered: the dispatcher hands the last of them to
    /// the targets. Returns how many notifications are still pending.
    pub async fn close(&mut self) -> usize {
        let Some(r) = &mut self.inner else { return 0 };
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut r.offers, closed));
        if let Some(dispatcher) = r.dispatcher.take() {
            // The dispatcher only sorts what is queued: it is done in a moment.
            r.workers = dispatcher.await.unwrap_or_default();
        }
        r.pending.lock().map_or(0, |p| p.len())
    }

    /// Waits up to `limit` for the pending notifications to be journaled; returns how many are
    /// still pending.
    pub async fn settle(&self, limit: Duration) -> usize {
        let Some(r) = &self.inner else { return 0 };
        let count = || r.pending.lock().map_or(0, |p| p.len());
        let deadline = Instant::now() + limit;
        while count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        count()
    }

    /// Waits up to `grace` for what is pending, then journals what is left as not sent. Returns
    /// how many were not sent.
    pub async fn finish(mut self, grace: Duration) -> usize {
        self.close().await;
        let Some(mut r) = self.inner.take() else { return 0 };
        let deadline = Instant::now() + grace;
        let workers = std::mem::take(&mut r.workers);
        for w in &workers {
            let _ = tokio::time::timeout_at(deadline, async {
                while !w.is_finished() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
        }
        for w in &workers {
            w.abort();
        }
        for w in workers {
            let _ = w.await;
        }
        let left: Vec<(String, String, u32)> = match r.pending.lock() {
            Ok(mut p) => {
                let mut v: Vec<(u64, (String, String, u32))> = p.drain().collect();
                v.sort_by_key(|(id, _)| *id);
                v.into_iter().map(|(_, x)| x).collect()
            }
            Err(_) => Vec::new(),
        };
        let n = left.len();
        for (target, on, attempt) in left {
            let error = format!(
                "the run ended and the {}s given to pending notifications ran out",
                GRACE.as_secs()
            );
            let event = Event::NotifyFailed {
                target,
                on,
                status: None,
                attempt,
                error,
            };
            if let Ok(rec) = r.journal.append(event) {
                let _ = r.shown.send(rec).await;
            }
        }
        n
    }
}

/// A wait for an operator, and which targets were told of it.
struct Wait {
    phase: String,
    step: String,
    why: &'static str,
    since: Instant,
    /// Per target: the deadline, until it is sent.
    due: Vec<Option<Instant>>,
}

/// Events that end a wait for an operator.
fn ends_wait(e: &Event) -> bool {
    matches!(
        e,
        Event::StepStarted { .. }
            | Event::StepFinished(_)
            | Event::TriggerAcknowledged { .. }
            | Event::RollbackStarted { .. }
            | Event::RunFinished { .. }
    )
}

async fn dispatch(
    setup: Setup,
    mut offers: mpsc::Receiver<Offer>,
    dropped: Arc<AtomicU64>,
    pending: Pending,
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let Setup {
        runbook,
        mut run,
        secrets,
        redactor,
        journal,
        shown,
    } = setup;
    let client = deliver::client();
    let mut queues = Vec::new();
    let mut workers = Vec::new();
    for target in &runbook.notify {
        let (tx, rx) = mpsc::channel::<Job>(TARGET_QUEUE);
        queues.push(tx);
        let worker = deliver::Worker {
            target: target.clone(),
            rehearsal: run.rehearsal,
            client: client.clone(),
            secrets: secrets.clone(),
            redactor: redactor.clone(),
            journal: journal.clone(),
            shown: shown.clone(),
            pending: pending.clone(),
        };
        let handle = tokio::spawn(worker.run(rx));
        if let Ok(mut t) = tasks.lock() {
            t.push(handle.abort_handle());
        }
        workers.push(handle);
    }
    let targets: &[NotifyTarget] = &runbook.notify;
    let mut next_id = 0u64;
    let mut wait: Option<Wait> = None;
    let mut enqueue = |i: usize, on: &str, record: Value, context: Value| {
        next_id += 1;
        let job = Job {
            id: next_id,
            on: on.to_string(),
            record,
            context,
        };
        if let Ok(mut p) = pending.lock() {
            p.insert(next_id, (targets[i].id.clone(), on.to_string(), 0));
        }
        if let Err(e) = queues[i].try_send(job) {
            let job = match e {
                mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
            };
            if let Ok(mut p) = pending.lock() {
                p.remove(&job.id);
            }
            let event = Event::NotifyFailed {
                target: targets[i].id.clone(),
                on: on.to_string(),
                status: None,
                attempt: 0,
                error: format!("{TARGET_QUEUE} notifications already wait for this target"),
            };
            if let Ok(rec) = journal.append(event) {
                let _ = shown.try_send(rec);
            }
        }
    };
    loop {
        let next_due = wait.as_ref().and_then(|w| w.due.iter().flatten().min().copied());
        tokio::select! {
            offer = offers.recv() => {
                let Some(offer) = offer else { break };
                let lost = dropped.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    for t in targets {
                        let event = Event::NotifyFailed {
                            target: t.id.clone(),
                            on: "?".into(),
                            status: None,
                            attempt: 0,
                            error: format!("{lost} events found the notification queue full"),
                        };
                        if let Ok(rec) = journal.append(event) {
                            let _ = shown.try_send(rec);
                        }
                    }
                }
                match offer {
                    Offer::Event(record) => {
                        if ends_wait(&record.event) {
                            wait = None;
                        }
                        if let Event::RunFinished { outcome, .. } = &record.event {
                            run.outcome = Some(outcome.as_str().to_string());
                        }
                        let mut masked = *record;
                        masked.event.mask(&redactor);
                        let Ok(value) = serde_json::to_value(&masked) else { continue };
                        let name = value["event"].as_str().unwrap_or("").to_string();
                        let wanted: Vec<usize> = (0..targets.len())
                            .filter(|&i| targets[i].on.contains(&name))
                            .collect();
                        if wanted.is_empty() {
                            continue;
                        }
                        let context = format::context(&value, &run);
                        for i in wanted {
                            enqueue(i, &name, value.clone(), context.clone());
                        }
                    }
                    Offer::Waiting { phase, step, why } => {
                        let same = wait
                            .as_ref()
                            .is_some_and(|w| w.phase == phase && w.step == step && w.why == why);
                        if !same {
                            let since = Instant::now();
                            let due = targets
                                .iter()
                                .map(|t| t.on.iter().any(|e| e == WAITING).then(|| since + t.waiting_after))
                                .collect();
                            wait = Some(Wait { phase, step, why, since, due });
                        }
                    }
                }
            }
            _ = crate::duration::sleep_until_opt(next_due) => {
                let Some(w) = &mut wait else { continue };
                let now = Instant::now();
                let waited = now.duration_since(w.since);
                let record = serde_json::json!({
                    "ts": crate::journal::timestamp(std::time::SystemTime::now()),
                    "event": WAITING,
                    "phase": w.phase,
                    "step": w.step,
                    "why": w.why,
                    "waited": crate::duration::format_duration(Duration::from_secs(waited.as_secs())),
                    "waited_s": waited.as_secs(),
                });
                let context = format::context(&record, &run);
                let due: Vec<usize> = (0..targets.len())
                    .filter(|&i| w.due[i].is_some_and(|d| d <= now))
                    .collect();
                for i in due {
                    w.due[i] = None;
                    enqueue(i, WAITING, record.clone(), context.clone());
                }
            }
        }
    }
    workers
}
