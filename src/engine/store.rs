//! The engine's side of the shared store (SPEC §9): what the store's background tasks ask it to
//! journal, how far behind the store is (passed on to the front end), and the lease, without which
//! no step starts. The store itself is `crate::store`; without one, none of this does anything.

use super::watch::Input;
use super::*;
use crate::store::link::LeaseState;
use crate::store::{Gate, Link, Signal};

/// The next signal of the store, or never (no store).
pub(super) async fn signal(link: &mut Option<Link>) -> Signal {
    match link {
        Some(l) => l.recv().await,
        None => std::future::pending().await,
    }
}

impl Engine {
    /// Gives the engine a store: its lease then decides whether a step may start.
    pub fn attach_store(&mut self, link: Link) {
        self.rec.store_nudge = Some(link.nudger());
        self.store = Some(link);
    }

    /// Handles a store signal; `true` when the lease changed (a wait should look again).
    pub(super) async fn on_store(&mut self, s: Signal) -> Result<bool, Stop> {
        match s {
            Signal::Journal(event) => self.rec.emit(event).await?,
            Signal::Status(status) => self.rec.tell(Update::Store(status)).await,
            Signal::Lease(lease) => {
                let Some(link) = &mut self.store else {
                    return Ok(false);
                };
                // Fenced is heard from the lease and the copy alike: journaled once.
                let first_fence = !link.fenced() && matches!(lease, LeaseState::Fenced { .. });
                link.set_lease(lease.clone());
                if let (true, LeaseState::Fenced { by, epoch }) = (first_fence, lease) {
                    self.rec.emit(Event::StoreFenced { by, epoch }).await?;
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Fenced by a newer driver while nothing executes here (a watch, a manual step, a wait for
    /// approvals or a decision): the run is the newer driver's, so this one stops now rather than
    /// when the wait would have ended. A command or request in flight here ends first; the next
    /// step's `lease_gate` then stops.
    pub(super) fn stop_if_fenced(&self) -> Result<(), Stop> {
        match self.store.as_ref().and_then(Link::fenced_by) {
            Some(by) if self.executing().is_none() => Err(Stop::HandedOver(by.to_string())),
            _ => Ok(()),
        }
    }

    /// Before a step starts: this driver must hold the run's lease. Lost (the store unreachable
    /// past its expiry): wait for it, saying why; fenced by a newer driver: stop for good.
    pub(super) async fn lease_gate(&mut self, at: StepRef) -> Result<(), Stop> {
        self.deferred_handover().await?;
        let mut said = None;
        // Taking the lease is usually a matter of milliseconds: a wait is said after a second.
        let quiet_until = Instant::now() + Duration::from_secs(1);
        loop {
            let gate = self.store.as_ref().map_or(Gate::Go, Link::gate);
            match gate {
                Gate::Go => return Ok(()),
                Gate::Stop(why) => {
                    // Fenced (already said by `store_fenced`): the run is the newer driver's now,
                    // as after a hand-over (SPEC §8: the old driver becomes a watcher). Nothing
                    // more is journaled here.
                    if let Some(by) = self.store.as_ref().and_then(Link::fenced_by) {
                        return Err(Stop::HandedOver(by.to_string()));
                    }
                    self.rec.tell(Update::Message(why.clone())).await;
                    return Err(Stop::Interrupted(why));
                }
                Gate::Wait(why) => {
                    if said.as_ref() != Some(&why) && Instant::now() >= quiet_until {
                        self.rec.tell(Update::Message(why.clone())).await;
                        said = Some(why);
                    }
                }
            }
            // A lease past its time (not yet renewed or given up by the lease task) is looked
            // at again shortly; otherwise the lease task's signal wakes us.
            let deadline = if said.is_none() {
                Some(quiet_until)
            } else {
                Some(Instant::now() + Duration::from_millis(200))
            };
            match self.next::<()>(None, deadline).await? {
                Input::Stop(s) => return Err(s),
                Input::Command(Command::Rollback) if !at.rollback => {
                    return Err(Stop::Rollback(self.rollback_reason()));
                }
                Input::Command(Command::Abort { reason }) => return Err(Stop::Aborted(reason)),
                Input::Command(Command::Interrupt) => {
                    return Err(Stop::Interrupted("interrupted by a signal".into()));
                }
                Input::Command(Command::Detach) => {
                    return Err(Stop::Interrupted(
                        "the terminal hung up (SIGHUP) while the run waited for the store's lease".into(),
                    ));
                }
                Input::Command(_) => {
                    self.rec
                        .tell(Update::Message(
                            "no step starts until this run's lease in the shared store is renewed".into(),
                        ))
                        .await;
                }
                Input::Fired | Input::Changed | Input::Deadline | Input::Work(()) => {}
            }
        }
    }
}
