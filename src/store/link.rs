//! What the engine sees of the store: whether the lease lets a step start (`Gate`), the events
//! to journal (`store_behind`, `store_caught_up`, the lease lost, regained or fenced), and how far
//! behind the store is (`Status`, for the header and the headless lines). The background tasks
//! (`replicate`, `lease`) send `Signal`s; the engine's wait loop receives them.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::control::ApprovalWaiting;
use crate::journal::Event;

/// The driver's lease, as this `runbook` knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// Not taken yet (the first moments of a run).
    Taking,
    Held {
        epoch: i64,
    },
    /// Renewals went unanswered for two thirds of the lease: it may still hold in the store
    /// until `expires`, but no new step starts here until it is renewed.
    Unconfirmed {
        epoch: i64,
        since: SystemTime,
        expires: SystemTime,
    },
    /// Not renewed before it expired (the store unreachable): no new step starts.
    Lost {
        epoch: i64,
        since: SystemTime,
    },
    /// A newer driver took the run over: this one starts nothing more.
    Fenced {
        by: String,
        epoch: i64,
    },
    /// Someone else holds it (checked at the start, so this is a race lost).
    Refused {
        holder: String,
    },
}

/// How far the store is behind the local files, while it cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behind {
    pub since: SystemTime,
    pub events: u64,
    pub bytes: u64,
    pub error: String,
}

/// What the store's side looks like now, for the screen.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// `None`: the store has everything written locally (or is about to).
    pub behind: Option<Behind>,
}

impl Status {
    /// One line: "store behind since 12:01:02: 42 events, 1.2 MB (connection refused)".
    pub fn line(&self) -> Option<String> {
        let b = self.behind.as_ref()?;
        Some(format!(
            "store behind since {}: {} event{}, {} ({})",
            crate::text::clock(b.since).get(..8).unwrap_or_default(),
            b.events,
            if b.events == 1 { "" } else { "s" },
            bytes(b.bytes),
            b.error
        ))
    }
}

pub use crate::journal::store_event::bytes;

/// From the background tasks to the engine.
#[derive(Debug)]
pub enum Signal {
    /// Journal this (the engine owns the journal).
    Journal(Event),
    Lease(LeaseState),
    Status(Status),
}

/// May a step start now?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Go,
    /// Not now, and why (the lease is being taken, or was lost).
    Wait(String),
    /// Never again in this process (fenced, or another driver holds the run).
    Stop(String),
}

/// The engine's end of the store.
pub struct Link {
    signals: mpsc::Receiver<Signal>,
    lease: LeaseState,
    /// Wakes the replicator: the journal grew.
    nudge: Arc<Notify>,
    /// Until when a step may start by this host's clock: two thirds of the lease after the last
    /// renewal was sent (renewals move it), so that a driver cut off from the store stops
    /// starting steps a third of the lease before anyone else may take the run. A time that
    /// has passed is not trusted, even before the lease task has said so: after a pause
    /// (SIGSTOP, a frozen VM) the engine may run before it.
    valid_until: watch::Receiver<Option<Instant>>,
    /// Who fenced this driver, for the command line once the run has stopped.
    fenced_by: Arc<std::sync::Mutex<Option<String>>>,
    /// What the run waits for from other operators, for the lease task to write on the lease row
    /// (`ls` on every host reads it there).
    waiting: Option<watch::Sender<Option<ApprovalWaiting>>>,
}

/// The engine's hook: what the run waits for from other operators now (a step waiting for
/// approvals, or nothing). The lease task writes it on the lease row at once, so that `runbook
/// ls` on any host says it without asking the driver. Nothing happens without a store.
pub fn share_waiting(link: &Option<Link>, waiting: Option<&ApprovalWaiting>) {
    if let Some(tx) = link.as_ref().and_then(|l| l.waiting.as_ref()) {
        tx.send_if_modified(|now| {
            let changed = now.as_ref() != waiting;
            if changed {
                *now = waiting.cloned();
            }
            changed
        });
    }
}

impl Link {
    pub fn new(
        signals: mpsc::Receiver<Signal>,
        nudge: Arc<Notify>,
        valid_until: watch::Receiver<Option<Instant>>,
        fenced_by: Arc<std::sync::Mutex<Option<String>>>,
    ) -> Link {
        Link {
            signals,
            lease: LeaseState::Taking,
            nudge,
            valid_until,
            fenced_by,
            waiting: None,
        }
    }

    /// The lease task's end of `share_waiting`.
    pub fn with_waiting(mut self, waiting: watch::Sender<Option<ApprovalWaiting>>) -> Link {
        self.waiting = Some(waiting);
        self
    }

    /// What wakes the replicator: notified once a journal line is on disk (never waited for).
    pub fn nudger(&self) -> Arc<Notify> {
        self.nudge.clone()
    }

    /// The next signal; pending forever once the tasks are gone.
    pub async fn recv(&mut self) -> Signal {
        match self.signals.recv().await {
            Some(s) => s,
            None => std::future::pending().await,
        }
    }

    pub fn fenced(&self) -> bool {
        matches!(self.lease, LeaseState::Fenced { .. })
    }

    /// Who holds the run now, when a newer driver fenced this one.
    pub fn fenced_by(&self) -> Option<&str> {
        match &self.lease {
            LeaseState::Fenced { by, .. } => Some(by),
            _ => None,
        }
    }

    pub fn set_lease(&mut self, lease: LeaseState) {
        if let LeaseState::Fenced { by, .. } = &lease
            && let Ok(mut f) = self.fenced_by.lock()
        {
            *f = Some(by.clone());
        }
        self.lease = lease;
    }

    pub fn gate(&self) -> Gate {
        match &self.lease {
            LeaseState::Held { .. } if self.valid_until.borrow().is_some_and(|v| Instant::now() < v) => {
                Gate::Go
            }
            LeaseState::Held { .. } => Gate::Wait(
                "this run's lease in the store is due for renewal: no new step starts until it is renewed"
                    .into(),
            ),
            LeaseState::Taking => Gate::Wait("taking the run's lease in the store".into()),
            LeaseState::Unconfirmed { since, expires, .. } => Gate::Wait(format!(
                "the store has not confirmed this run's lease since {}; it expires at {} unless renewed: \
                 no new step starts until it is renewed",
                crate::text::clock(*since).get(..8).unwrap_or_default(),
                crate::text::clock(*expires).get(..8).unwrap_or_default()
            )),
            LeaseState::Lost { since, .. } => Gate::Wait(format!(
                "the store could not be reached to renew this run's lease, which expired at {}: \
                 no new step starts until it is renewed",
                crate::text::clock(*since).get(..8).unwrap_or_default()
            )),
            LeaseState::Fenced { by, epoch } => Gate::Stop(format!(
                "{by} took over this run in the store (lease epoch {epoch}): this runbook starts nothing more"
            )),
            LeaseState::Refused { holder } => Gate::Stop(format!(
                "this run is driven by {holder} (its lease in the store is valid): this runbook starts nothing"
            )),
        }
    }
}

/// For line-oriented output: how far behind the store is, at most every 10 s while it lasts.
#[derive(Debug, Default)]
pub struct Throttle {
    last: Option<std::time::Instant>,
}

impl Throttle {
    pub fn line(&mut self, status: &Status) -> Option<String> {
        let Some(line) = status.line() else {
            self.last = None;
            return None;
        };
        // The first is said by the journal's `store_behind`; then every 10 s, with fresh figures.
        let Some(last) = self.last else {
            self.last = Some(std::time::Instant::now());
            return None;
        };
        if last.elapsed() < std::time::Duration::from_secs(10) {
            return None;
        }
        self.last = Some(std::time::Instant::now());
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_the_run_waits_for_reaches_the_lease_task_once_per_change() {
        let (_tx, rx) = mpsc::channel(1);
        let (_until_tx, until_rx) = watch::channel(None);
        let (waiting_tx, mut waiting) = watch::channel(None);
        let link =
            Some(Link::new(rx, Arc::new(Notify::new()), until_rx, Arc::default()).with_waiting(waiting_tx));
        let w = ApprovalWaiting {
            step: "deploy/migrate".into(),
            needed: 1,
            ..Default::default()
        };
        share_waiting(&link, Some(&w));
        assert!(waiting.has_changed().unwrap());
        assert_eq!(waiting.borrow_and_update().as_ref(), Some(&w));
        // The same again is no change: no renewal ahead of time for it.
        share_waiting(&link, Some(&w));
        assert!(!waiting.has_changed().unwrap());
        share_waiting(&link, None);
        assert!(waiting.has_changed().unwrap());
        assert_eq!(*waiting.borrow_and_update(), None);
        // Without a store nothing happens.
        share_waiting(&None, Some(&w));
    }

    fn link(until: Option<Instant>) -> (Link, watch::Sender<Option<Instant>>) {
        let (_tx, rx) = mpsc::channel(1);
        let (until_tx, until_rx) = watch::channel(until);
        let link = Link::new(rx, Arc::new(Notify::new()), until_rx, Arc::default());
        (link, until_tx)
    }

    #[tokio::test]
    async fn a_step_starts_only_within_the_leases_margin() {
        let soon = Instant::now() + std::time::Duration::from_secs(5);
        let (mut l, until) = link(Some(soon));
        assert!(matches!(l.gate(), Gate::Wait(_)), "not taken yet");
        l.set_lease(LeaseState::Held { epoch: 3 });
        assert_eq!(l.gate(), Gate::Go);
        // The margin ran out before the lease task said so (a paused process): no start.
        let _ = until.send(Some(Instant::now() - std::time::Duration::from_millis(1)));
        assert!(matches!(l.gate(), Gate::Wait(_)));
        let now = SystemTime::now();
        l.set_lease(LeaseState::Unconfirmed {
            epoch: 3,
            since: now,
            expires: now + std::time::Duration::from_secs(3),
        });
        let Gate::Wait(why) = l.gate() else {
            panic!("no start while unconfirmed")
        };
        assert!(why.contains("no new step starts"), "{why}");
        l.set_lease(LeaseState::Fenced {
            by: "bob@b (pid 7)".into(),
            epoch: 4,
        });
        assert!(matches!(l.gate(), Gate::Stop(_)));
        assert_eq!(l.fenced_by(), Some("bob@b (pid 7)"));
    }
}
