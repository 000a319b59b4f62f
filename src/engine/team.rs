//! The engine's side of operators as a team (SPEC §8): answering the control socket's requests
//! (`hello`, a watcher's note, an approval, a takeover), waiting for a step's approvals, and
//! handing the run over. The socket itself is `team::server`; the dialogs are the front ends'.
//!
//! The engine alone writes the journal, so every request is settled here, in the run's own order:
//! an approval counts only for the step that waits for it at that moment.

use super::watch::Input;
use super::*;
use crate::control::{ApprovalWaiting, Asked, DriverInfo, Origin, Peer, Reply, Request, Response};
use crate::runbook::Step;

/// What the front end hears about the team.
#[derive(Debug, Clone, PartialEq)]
pub enum TeamUpdate {
    /// Another operator asks to take the run over: the front end asks its operator (`y`/`n`) and
    /// answers with `Command::Handover`.
    TakeoverAsked {
        by: String,
        from: String,
        reason: String,
        /// Through the shared store, from another host: a step in flight cannot be followed
        /// there, so the run is handed over once it has ended.
        across_hosts: bool,
    },
    /// The one who asked gave up (or the question was settled otherwise): the dialog goes.
    TakeoverWithdrawn { by: String, why: String },
    /// The run was handed over: this front end no longer drives it.
    HandedOver { to: String },
}

/// A hand-over being asked about.
pub(super) struct AskedTakeover {
    peer: Peer,
    reason: String,
    reply: Reply,
}

/// The engine's team state.
#[derive(Default)]
pub(super) struct Team {
    /// The Unix user driving (from the operating system, as the approvers' are).
    pub driver_uid: u32,
    pub driver_user: String,
    /// The step waiting for approvals now, and where it stands.
    pub awaiting: Option<(StepRef, ApprovalWaiting)>,
    /// Approvals already journaled (earlier sessions of this run), by (rollback, phase, step).
    pub given: HashMap<crate::journal::resume::StepKey, Vec<String>>,
    pub takeover: Option<AskedTakeover>,
    /// A hand-over agreed to while a step ran that another host cannot follow: carried out
    /// before the next step starts (`deferred_handover`).
    pub agreed: Option<AskedTakeover>,
    /// The new driver's answer, sent once this one has stopped.
    pub handed_to: Option<Reply>,
}

use std::collections::HashMap;

impl Team {
    pub fn new(given: HashMap<crate::journal::resume::StepKey, Vec<String>>) -> Team {
        let uid = nix::unistd::getuid();
        let driver_user = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map_or_else(|| format!("uid{uid}"), |u| u.name);
        Team {
            driver_uid: uid.as_raw(),
            driver_user,
            given,
            ..Default::default()
        }
    }
}

impl Engine {
    /// A request from the control socket. Returns what it means for the caller's wait: an
    /// approval that completes a step's count (`Changed`), or a hand-over (`Stop`).
    pub(super) async fn on_team(&mut self, asked: Asked) -> Result<Option<Input<()>>, Stop> {
        let Asked { peer, request, reply } = asked;
        match request {
            Request::Hello => {
                reply.send(Response {
                    ok: true,
                    message: Some(format!(
                        "{}@{} drives this run (pid {})",
                        self.opts.operator,
                        self.opts.host,
                        std::process::id()
                    )),
                    driver: Some(self.driver_info()),
                    ..Default::default()
                });
                Ok(None)
            }
            Request::Note { text } => {
                // Shown on the driver's screen: another user's escape sequences never reach it.
                let text = crate::text::clean(text.trim().as_bytes()).into_owned();
                if text.is_empty() {
                    reply.send(Response::refused("an empty note is not added"));
                    return Ok(None);
                }
                self.rec
                    .emit(Event::Note {
                        text,
                        operator: peer.user.clone(),
                    })
                    .await?;
                reply.send(Response::ok("note added to the run's journal"));
                Ok(None)
            }
            Request::Approve { step } => self.approve(peer, &step, reply).await,
            Request::Takeover { reason } => {
                let reason = crate::text::clean(reason.trim().replace('\n', " ").as_bytes()).into_owned();
                if reason.is_empty() {
                    reply.send(Response::refused("a takeover needs a reason"));
                    return Ok(None);
                }
                self.takeover_asked(peer, reason, reply).await;
                Ok(None)
            }
        }
    }

    fn driver_info(&self) -> DriverInfo {
        DriverInfo {
            operator: self.opts.operator.clone(),
            host: self.opts.host.clone(),
            pid: std::process::id(),
            runbook: self.rb.id.clone(),
            title: self.rb.title.clone(),
            mode: self.opts.mode.as_str().into(),
            waiting: self.team.awaiting.iter().map(|(_, w)| w.clone()).collect(),
            takeover_asked_by: self.team.takeover.as_ref().map(|t| t.peer.user.clone()),
        }
    }

    async fn approve(&mut self, peer: Peer, step: &str, reply: Reply) -> Result<Option<Input<()>>, Stop> {
        let Some((at, waiting)) = self.team.awaiting.clone() else {
            reply.send(Response::refused(format!(
                "{step} does not wait for an approval: no step of this run waits for one now"
            )));
            return Ok(None);
        };
        let id = waiting.step.rsplit('/').next().unwrap_or_default();
        if step != waiting.step && step != id {
            reply.send(Response::refused(format!(
                "{step} does not wait for an approval; {} does ({})",
                waiting.step,
                waiting.describe()
            )));
            return Ok(None);
        }
        let name = waiting.step.clone();
        // Through the store (another host) the uid means nothing here: the user's name counts.
        let driver = match peer.origin.store_role {
            None => peer.uid == self.team.driver_uid,
            Some(_) => peer.user == self.team.driver_user,
        };
        if driver {
            reply.send(Response::refused(format!(
                "{} drives this run: an approval must come from another operator (four eyes); {name} is still {}",
                peer.user,
                waiting.describe()
            )));
            return Ok(None);
        }
        if waiting.given.contains(&peer.user) {
            reply.send(Response::refused(format!(
                "{} already approved {name}; it is still {}",
                peer.user,
                waiting.describe()
            )));
            return Ok(None);
        }
        let listed = self.approvers_of(at);
        if !listed.is_empty() && !listed.contains(&peer.user) {
            reply.send(Response::refused(format!(
                "{} may not approve {name}: its approvers are {}",
                peer.user,
                listed.join(", ")
            )));
            return Ok(None);
        }
        let (phase, step_id) = self.names(at);
        self.rec
            .emit(Event::Approval {
                phase,
                step: step_id,
                rollback: at.rollback,
                operator: peer.user.clone(),
                from: peer.origin.clone(),
                metrics: self.latest.clone(),
                simulated: false,
            })
            .await?;
        let mut now = waiting;
        now.given.push(peer.user.clone());
        now.may_approve = self.may_approve(at, &now.given);
        let message = if now.missing() == 0 {
            format!("{} approved {name}: it goes ahead", peer.user)
        } else {
            format!("{} approved {name}; it is still {}", peer.user, now.describe())
        };
        self.team.awaiting = Some((at, now));
        self.rec.tell(Update::Message(message.clone())).await;
        reply.send(Response::ok(message));
        Ok(Some(Input::Changed))
    }

    fn approvers_of(&self, at: StepRef) -> Vec<String> {
        let p = &self.rb.phases_of(at.rollback)[at.phase];
        p.steps[at.step]
            .approval
            .as_ref()
            .map(|a| a.approvers.clone())
            .unwrap_or_default()
    }

    /// Who may still approve: the listed approvers but the driver and those who did; `None` for
    /// anyone but the driver.
    fn may_approve(&self, at: StepRef, given: &[String]) -> Option<Vec<String>> {
        let listed = self.approvers_of(at);
        if listed.is_empty() {
            return None;
        }
        Some(
            listed
                .into_iter()
                .filter(|u| *u != self.team.driver_user && !given.contains(u))
                .collect(),
        )
    }

    /// After its go-ahead, a step with `approval` waits until enough other operators approve it.
    /// Approvals journaled by an earlier session of the run count. A rehearsal plays them.
    /// Returns a skip reason when the operator skipped the step instead.
    pub(super) async fn await_approvals(
        &mut self,
        at: StepRef,
        phase: &Phase,
        step: &Step,
    ) -> Result<Option<String>, Stop> {
        let Some(approval) = &step.approval else {
            return Ok(None);
        };
        let key = (at.rollback, phase.id.clone(), step.id.clone());
        let given = self.team.given.get(&key).cloned().unwrap_or_default();
        let name = format!("{}/{}", phase.id, step.id);
        let mut waiting = ApprovalWaiting {
            step: name.clone(),
            title: step.title.clone(),
            rollback: at.rollback,
            needed: approval.count,
            may_approve: self.may_approve(at, &given),
            given,
        };
        if waiting.missing() == 0 {
            return Ok(None);
        }
        if let Some(r) = self.opts.rehearsal {
            return self.rehearse_approvals(at, waiting, r.speed).await.map(|()| None);
        }
        self.team.awaiting = Some((at, waiting.clone()));
        crate::store::link::share_waiting(&self.store, Some(&waiting));
        let tell = |w: &ApprovalWaiting| Update::Waiting {
            step: at,
            why: Wait::Approval(w.clone()),
        };
        self.rec.tell(tell(&waiting)).await;
        let result = loop {
            let input = match self.next::<()>(None, None).await {
                Ok(i) => i,
                Err(stop) => break Err(stop),
            };
            match input {
                Input::Changed => {
                    let now = self.team.awaiting.as_ref().map(|(_, w)| w.clone());
                    if let Some(w) = now
                        && w != waiting
                    {
                        waiting = w;
                        if waiting.missing() == 0 {
                            break Ok(None);
                        }
                        // One more approval: the screens say how many are still missing.
                        crate::store::link::share_waiting(&self.store, Some(&waiting));
                        self.rec.tell(tell(&waiting)).await;
                    }
                }
                Input::Command(Command::Skip { reason }) => break Ok(Some(reason)),
                Input::Command(Command::Confirm { .. }) => {
                    self.rec
                        .tell(Update::Message(format!(
                            "{name} is {}: a go-ahead is not an approval (four eyes: another operator approves with runbook approve RUN {name})",
                            waiting.describe()
                        )))
                        .await;
                }
                Input::Command(Command::Retry) => {}
                Input::Command(Command::Rollback) if at.rollback => {}
                Input::Command(other) => break Err(self.stop_for(other, at)),
                Input::Stop(s) => break Err(s),
                Input::Fired | Input::Deadline | Input::Work(()) => {}
            }
        };
        self.team.awaiting = None;
        crate::store::link::share_waiting(&self.store, None);
        let skip = result?;
        self.team.given.remove(&key);
        Ok(skip)
    }

    /// A rehearsal plays the approvals: each one after a moment, journaled as simulated.
    async fn rehearse_approvals(
        &mut self,
        at: StepRef,
        waiting: ApprovalWaiting,
        speed: f64,
    ) -> Result<(), Stop> {
        let listed = waiting.may_approve.clone().unwrap_or_default();
        let (phase, step) = self.names(at);
        for i in 0..waiting.missing() as usize {
            let until = Instant::now() + Duration::from_secs_f64(1.0 / speed);
            loop {
                match self.next::<()>(None, Some(until)).await? {
                    Input::Deadline => break,
                    Input::Command(Command::Rollback) if at.rollback => {}
                    Input::Command(Command::Confirm { .. } | Command::Retry | Command::Skip { .. }) => {}
                    Input::Command(other) => return Err(self.stop_for(other, at)),
                    Input::Stop(s) => return Err(s),
                    Input::Fired | Input::Changed | Input::Work(()) => {}
                }
            }
            let operator = listed
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("approver-{}", i + 1));
            self.rec
                .emit(Event::Approval {
                    phase: phase.clone(),
                    step: step.clone(),
                    rollback: at.rollback,
                    operator,
                    from: Origin {
                        host: "rehearsal".into(),
                        ..Default::default()
                    },
                    metrics: self.latest.clone(),
                    simulated: true,
                })
                .await?;
        }
        Ok(())
    }

    async fn takeover_asked(&mut self, peer: Peer, reason: String, reply: Reply) {
        if let Some(t) = &self.team.takeover
            && !t.reply.is_closed()
        {
            reply.send(Response::refused(format!(
                "{} is already asked to hand this run over to {}; try again once that is answered",
                self.opts.operator, t.peer.user
            )));
            return;
        }
        if !self.opts.ask_irreversible {
            reply.send(Response::refused(format!(
                "the driver (pid {}) runs headless with no terminal: nobody there can agree to hand over; \
                 stop it first (it can be resumed), then runbook takeover takes the run over at once",
                std::process::id()
            )));
            return;
        }
        // The driver's own user may ask too: from another terminal, after losing this one.
        let from = peer.origin.describe();
        self.rec
            .tell(Update::Team(TeamUpdate::TakeoverAsked {
                by: peer.user.clone(),
                from,
                reason: reason.clone(),
                across_hosts: peer.origin.store_role.is_some(),
            }))
            .await;
        self.team.takeover = Some(AskedTakeover { peer, reason, reply });
    }

    /// The driver's operator answered a hand-over request. On yes, `handover` is journaled and
    /// the run stops here, the step in flight left to run (the new driver follows it).
    pub(super) async fn handover_answer(&mut self, accept: bool) -> Result<Option<Input<()>>, Stop> {
        let Some(asked) = self.team.takeover.take() else {
            return Ok(None);
        };
        if asked.reply.is_closed() {
            self.rec
                .tell(Update::Team(TeamUpdate::TakeoverWithdrawn {
                    by: asked.peer.user.clone(),
                    why: format!(
                        "{} no longer waits for an answer; you go on driving",
                        asked.peer.user
                    ),
                }))
                .await;
            return Ok(None);
        }
        if !accept {
            asked.reply.send(Response::refused(format!(
                "{} did not agree to hand the run over; they go on driving it",
                self.opts.operator
            )));
            self.rec
                .tell(Update::Message(format!(
                    "you go on driving; {} was told you did not hand over",
                    asked.peer.user
                )))
                .await;
            return Ok(None);
        }
        // From another host, a command or request in flight here cannot be followed: it ends
        // here first, and the run is handed over before the next step starts.
        if asked.peer.origin.store_role.is_some()
            && let Some(at) = self.executing()
        {
            let (phase, step) = self.names(at);
            self.rec
                .tell(Update::Message(format!(
                    "handing over to {} once {phase}/{step} ends (it runs here)",
                    asked.peer.user
                )))
                .await;
            self.team.agreed = Some(asked);
            return Ok(None);
        }
        self.hand_over(asked).await.map(Some)
    }

    /// Journals the agreed hand-over and stops the run here.
    async fn hand_over(&mut self, asked: AskedTakeover) -> Result<Input<()>, Stop> {
        self.rec
            .emit(Event::Handover {
                from: self.opts.operator.clone(),
                to: asked.peer.user.clone(),
                reason: asked.reason.clone(),
                at: asked.peer.origin.clone(),
                consent: true,
            })
            .await?;
        self.team.handed_to = Some(asked.reply);
        Ok(Input::Stop(Stop::HandedOver(asked.peer.user)))
    }

    /// Before a step starts: a hand-over agreed to while the last one ran is carried out now
    /// (unless its asker gave up meanwhile).
    pub(super) async fn deferred_handover(&mut self) -> Result<(), Stop> {
        let Some(asked) = self.team.agreed.take() else {
            return Ok(());
        };
        if asked.reply.is_closed() {
            let by = asked.peer.user.clone();
            self.rec
                .tell(Update::Team(TeamUpdate::TakeoverWithdrawn {
                    why: format!("{by} no longer waits for the hand-over; you go on driving"),
                    by,
                }))
                .await;
            return Ok(());
        }
        match self.hand_over(asked).await? {
            Input::Stop(s) => Err(s),
            _ => Ok(()),
        }
    }

    /// The run reached its end: a takeover still asked about, or agreed to for after the step
    /// that was the last, is answered so (rather than "the driver stopped").
    pub(super) fn takeovers_ended(&mut self, outcome: Outcome) {
        let words = outcome.as_str().replace('_', " ");
        for asked in [self.team.takeover.take(), self.team.agreed.take()]
            .into_iter()
            .flatten()
        {
            asked.reply.send(Response::refused(format!(
                "the run ended ({words}) before it could be handed over: there is nothing to take over"
            )));
        }
    }

    /// The step in flight, when it executes something here (a command, an HTTP request).
    pub(super) fn executing(&self) -> Option<StepRef> {
        let (at, _, _) = self.unfinished?;
        let step = &self.rb.phases_of(at.rollback)[at.phase].steps[at.step];
        matches!(
            step.kind,
            crate::runbook::StepKind::Run(_) | crate::runbook::StepKind::Http(_)
        )
        .then_some(at)
    }

    /// The run was handed over: no more events (the step in flight stays unfinished in the
    /// journal: the new driver follows it); the new driver and the front end are told.
    pub(super) async fn handed_over(&mut self, to: &str) {
        self.stop_watching();
        if let Some(reply) = self.team.handed_to.take() {
            reply.send(Response::ok(format!(
                "{} handed the run over to {to}; it is yours once their runbook has let go of it",
                self.opts.operator
            )));
        }
        self.rec
            .tell(Update::Team(TeamUpdate::HandedOver { to: to.to_string() }))
            .await;
    }
}
