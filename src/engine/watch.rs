//! Every wait of the run, in one place: commands from the front end, metric samples, check
//! results, trigger deadlines (`auto_rollback`), a rehearsal's scheduled fault, and whatever the
//! caller waits for (a command's exit, a request, a timeout). Trigger transitions are journaled
//! here and turned into what they mean for the run: nothing, a hold, or the rollback.

use std::future::Future;
use std::pin::Pin;

use super::*;
use crate::duration::format_duration;
use crate::engine::store;
use crate::metrics::triggers::Transition;
use crate::metrics::{self, PollContext, Reading};
use crate::runbook::TriggerKind;

/// What woke the engine up.
pub(super) enum Input<T> {
    /// The caller's work finished.
    Work(T),
    /// The caller's deadline passed.
    Deadline,
    Command(Command),
    /// The run must stop now (a trigger that rolls back, or one nobody acknowledged in time).
    Stop(Stop),
    /// A trigger fired and holds the run until the operator acknowledges it or rolls back.
    Fired,
    /// Triggers changed otherwise (cleared, acknowledged).
    Changed,
}

impl Input<()> {
    /// The same input for a caller that waits for work of another type (it carries none).
    fn with_work<T>(self) -> Input<T> {
        match self {
            Input::Deadline | Input::Work(()) => Input::Deadline,
            Input::Command(c) => Input::Command(c),
            Input::Stop(s) => Input::Stop(s),
            Input::Fired => Input::Fired,
            Input::Changed => Input::Changed,
        }
    }
}

/// Work the caller waits for besides everything else.
pub(super) type Work<'a, T> = Option<Pin<&'a mut (dyn Future<Output = T> + Send)>>;

async fn work_opt<T>(w: &mut Work<'_, T>) -> T {
    match w {
        Some(f) => f.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

impl Engine {
    /// Waits for the next thing that matters to the caller, handling the rest on the way (notes,
    /// samples, checks, acknowledgements, a raised trigger, a fault).
    pub(super) async fn next<T>(
        &mut self,
        mut work: Work<'_, T>,
        deadline: Option<Instant>,
    ) -> Result<Input<T>, Stop> {
        enum Ev<T> {
            Work(T),
            Deadline,
            Cmd(Option<Command>),
            Sample(Option<Sample>),
            Check(Option<(usize, Result<(), String>)>),
            Alert(Option<(usize, metrics::alerts::AlertReading)>),
            Auto,
            Fault,
            Store(crate::store::Signal),
        }
        loop {
            // A hand-over agreed to while a step ran: carried out once nothing runs here.
            if self.unfinished.is_none() {
                self.deferred_handover().await?;
            }
            self.stop_if_fenced()?;
            let auto = if self.rolling_back {
                None
            } else {
                self.triggers.iter().filter_map(|t| t.auto_rollback_at()).min()
            };
            let ev = tokio::select! {
                c = self.commands.recv() => Ev::Cmd(c),
                s = recv_opt(&mut self.samples) => Ev::Sample(s),
                c = self.checks.1.recv() => Ev::Check(c),
                a = self.alerts.1.recv() => Ev::Alert(a),
                w = work_opt(&mut work) => Ev::Work(w),
                _ = crate::engine::sleep_until_opt(deadline) => Ev::Deadline,
                _ = crate::engine::sleep_until_opt(auto) => Ev::Auto,
                _ = crate::engine::sleep_until_opt(self.fault_due) => Ev::Fault,
                s = store::signal(&mut self.store) => Ev::Store(s),
            };
            match ev {
                Ev::Work(v) => return Ok(Input::Work(v)),
                Ev::Deadline => return Ok(Input::Deadline),
                Ev::Cmd(None) => {
                    return Ok(Input::Command(Command::Abort {
                        reason: Some("the front end went away".into()),
                    }));
                }
                Ev::Cmd(Some(Command::Note { text })) => self.note(text).await?,
                Ev::Cmd(Some(Command::Acknowledge)) => {
                    if self.acknowledge().await? {
                        return Ok(Input::Changed);
                    }
                }
                Ev::Cmd(Some(Command::RaiseTrigger { trigger, reason })) => {
                    if let Some(input) = self.raise(&trigger, reason).await? {
                        return Ok(input);
                    }
                }
                Ev::Cmd(Some(Command::InjectFault)) => self.inject_fault("operator").await?,
                Ev::Cmd(Some(Command::Team(asked))) => {
                    if let Some(input) = self.on_team(asked).await? {
                        return Ok(input.with_work());
                    }
                }
                Ev::Cmd(Some(Command::Handover { accept })) => {
                    if let Some(input) = self.handover_answer(accept).await? {
                        return Ok(input.with_work());
                    }
                }
                // Who called for a rollback (and why) is kept for `rollback_started`; the call
                // itself goes on as a plain `Rollback`.
                Ev::Cmd(Some(Command::RollbackWithNote { note })) => {
                    let note = Some(note.trim().to_string()).filter(|n| !n.is_empty());
                    self.rollback_call = Some(note);
                    return Ok(Input::Command(Command::Rollback));
                }
                Ev::Cmd(Some(Command::Rollback)) => {
                    self.rollback_call.get_or_insert(None);
                    return Ok(Input::Command(Command::Rollback));
                }
                Ev::Cmd(Some(c)) => return Ok(Input::Command(c)),
                Ev::Sample(None) => self.samples = None,
                Ev::Sample(Some(s)) => {
                    if let Some(input) = self.on_sample(s).await? {
                        return Ok(input);
                    }
                }
                Ev::Check(None) => {}
                Ev::Check(Some((i, result))) => {
                    if self.rolling_back {
                        continue;
                    }
                    let tr = self.triggers[i].check(Instant::now(), result);
                    if let Some(input) = self.record(i, tr).await? {
                        return Ok(input);
                    }
                }
                Ev::Alert(None) => {}
                Ev::Alert(Some((i, reading))) => {
                    if let Some(input) = self.on_alert(i, reading).await? {
                        return Ok(input);
                    }
                }
                Ev::Auto => {
                    let now = Instant::now();
                    let due = self
                        .triggers
                        .iter()
                        .find(|t| t.auto_rollback_at().is_some_and(|at| at <= now));
                    if let Some(t) = due {
                        let after = t.auto_rollback.map(format_duration).unwrap_or_default();
                        let id = t.id.clone();
                        self.rec
                            .tell(Update::Message(format!(
                                "trigger {id} was not acknowledged within {after}: rolling back (auto_rollback)"
                            )))
                            .await;
                        return Ok(Input::Stop(Stop::Rollback(RollbackReason::Trigger(id))));
                    }
                }
                Ev::Fault => {
                    self.fault_due = None;
                    self.inject_fault("schedule").await?;
                }
                Ev::Store(s) => {
                    if self.on_store(s).await? {
                        return Ok(Input::Changed);
                    }
                }
            }
        }
    }

    /// Starts the poller and the triggers that are armed from the start, and takes the first
    /// sample before any step runs, so that a broken query is seen before anything changes.
    pub(super) async fn start_watching(&mut self) -> Result<(), Stop> {
        self.fault_due = self
            .opts
            .rehearsal
            .and_then(|r| r.inject_fault_at)
            .map(|d| Instant::now() + d);
        let ctx = PollContext {
            env: self.env.clone(),
            secrets: self.secrets.clone(),
            fault: self.fault.clone(),
        };
        self.samples = metrics::start(&self.rb, &self.opts.sources, ctx);
        for i in 0..self.triggers.len() {
            if self.triggers[i].is_armed() {
                self.start_check(i);
            }
        }
        let Some(rx) = self.samples.as_mut() else {
            return Ok(());
        };
        let wait = self.rb.metrics.interval + Duration::from_secs(5);
        if let Ok(Some(first)) = tokio::time::timeout(wait, rx.recv()).await {
            let problems: Vec<String> = self
                .rb
                .metric
                .iter()
                .zip(&first.readings)
                .filter_map(|(m, r)| match r {
                    Reading::Error(e) => Some(format!("metric {}: {e}", m.id)),
                    Reading::NoData => Some(format!("metric {}: {}", m.id, metrics::NO_DATA)),
                    Reading::Value(_) => None,
                })
                .collect();
            let input = self.on_sample::<()>(first).await?;
            for p in problems {
                self.rec
                    .tell(Update::Message(format!(
                        "{p} — shown as unknown, never as healthy"
                    )))
                    .await;
            }
            if let Some(Input::Stop(stop)) = input {
                return Err(stop);
            }
        }
        Ok(())
    }

    pub(super) fn stop_watching(&mut self) {
        self.stop_checks();
        self.samples = None;
    }

    pub(super) fn stop_checks(&mut self) {
        for t in self.check_tasks.drain(..) {
            t.abort();
        }
    }

    /// A phase starts: triggers armed from it begin to be watched.
    pub(super) async fn arm_phase(&mut self, phase: &str) -> Result<(), Stop> {
        for i in 0..self.triggers.len() {
            let t = &mut self.triggers[i];
            if !t.is_armed() && t.armed_from.as_deref() == Some(phase) {
                t.arm();
                let id = t.id.clone();
                self.start_check(i);
                self.rec
                    .tell(Update::Message(format!(
                        "trigger {id} is now watched (armed from {phase})"
                    )))
                    .await;
            }
        }
        Ok(())
    }

    /// Runs a check trigger's command on its interval. In a rehearsal nothing is run: the check
    /// passes until a fault is injected.
    fn start_check(&mut self, i: usize) {
        let TriggerKind::Check {
            command,
            interval,
            timeout,
        } = self.triggers[i].kind.clone()
        else {
            self.start_alert(i);
            return;
        };
        let rehearsal = self.opts.rehearsal.is_some();
        let fault = self.fault.clone();
        let check = Arc::new(super::poll::CheckCommand {
            shell: self.rb.settings.shell.clone(),
            command,
            workdir: self.rb.settings.workdir.clone(),
            env: self.env.clone(),
            timeout,
            redactor: self.redactor.clone(),
        });
        let read = move || {
            let (check, fault) = (check.clone(), fault.clone());
            async move {
                match (rehearsal, fault.injected_at()) {
                    (false, _) => check.run().await,
                    (true, Some(_)) => Err("the simulated fault makes the check fail".to_string()),
                    (true, None) => Ok(()),
                }
            }
        };
        let poll = super::poll::every(interval, i, self.checks.0.clone(), read);
        self.check_tasks.push(poll);
    }

    /// A poll round: journaled, remembered for confirmations, and fed to the metric triggers.
    async fn on_sample<T>(&mut self, sample: Sample) -> Result<Option<Input<T>>, Stop> {
        let rb = self.rb.clone();
        let mut values = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for (m, r) in rb.metric.iter().zip(&sample.readings) {
            values.insert(m.id.clone(), r.value());
            match r {
                Reading::Error(e) => {
                    errors.insert(m.id.clone(), self.redactor.redact_str(e));
                }
                Reading::NoData => {
                    errors.insert(m.id.clone(), metrics::NO_DATA.to_string());
                }
                Reading::Value(_) => {}
            }
        }
        self.latest = values.clone();
        self.rec.emit(Event::MetricsSampled { values, errors }).await?;
        if self.rolling_back {
            return Ok(None);
        }
        let mut result: Option<Input<T>> = None;
        for i in 0..self.triggers.len() {
            let TriggerKind::Metric { metric, .. } = &self.triggers[i].kind else {
                continue;
            };
            let Some(mi) = rb.metric.iter().position(|m| &m.id == metric) else {
                continue;
            };
            let tr = self.triggers[i].observe(sample.at, &sample.readings[mi]);
            let input = self.record(i, tr).await?;
            result = match (result, input) {
                (Some(Input::Stop(s)), _) | (_, Some(Input::Stop(s))) => Some(Input::Stop(s)),
                (Some(Input::Fired), _) | (_, Some(Input::Fired)) => Some(Input::Fired),
                (a, b) => a.or(b),
            };
        }
        Ok(result)
    }

    /// Journals a trigger's transition and says what it means for the run.
    async fn record<T>(&mut self, i: usize, tr: Option<Transition>) -> Result<Option<Input<T>>, Stop> {
        self.record_with(i, tr, None).await
    }

    /// `record`, with the labels of the alert that fired an alert trigger.
    pub(super) async fn record_with<T>(
        &mut self,
        i: usize,
        tr: Option<Transition>,
        labels: Option<BTreeMap<String, String>>,
    ) -> Result<Option<Input<T>>, Stop> {
        let Some(tr) = tr else { return Ok(None) };
        let trigger = self.triggers[i].id.clone();
        match tr {
            Transition::Pending { value } => {
                self.rec
                    .emit(Event::TriggerPending {
                        trigger,
                        // An alert pending without a value (see `metrics::alerts`).
                        value: Some(value).filter(|v| !v.is_nan()),
                    })
                    .await?;
                Ok(None)
            }
            // Both journaled as `trigger_unknown`: a front end tells them apart by the state it
            // shows (a firing trigger stays firing).
            Transition::Unknown { error } | Transition::DataLost { error } => {
                let error = self.redactor.redact_str(&error);
                self.rec.emit(Event::TriggerUnknown { trigger, error }).await?;
                Ok(None)
            }
            Transition::Cleared { value } => {
                self.rec.emit(Event::TriggerCleared { trigger, value }).await?;
                Ok(Some(Input::Changed))
            }
            Transition::Fired {
                value,
                reason,
                roll_back_now,
            } => {
                let reason = reason.map(|r| self.redactor.redact_str(&r));
                self.rec
                    .emit(Event::TriggerFired {
                        trigger: trigger.clone(),
                        value,
                        reason,
                        labels,
                    })
                    .await?;
                self.first_fired.get_or_insert_with(Instant::now);
                if roll_back_now || self.opts.on_fire == OnFire::RollBack {
                    Ok(Some(Input::Stop(Stop::Rollback(RollbackReason::Trigger(
                        trigger,
                    )))))
                } else {
                    Ok(Some(Input::Fired))
                }
            }
        }
    }

    async fn raise<T>(&mut self, trigger: &str, reason: String) -> Result<Option<Input<T>>, Stop> {
        let Some(i) = self.triggers.iter().position(|t| t.id == trigger) else {
            self.rec
                .tell(Update::Message(format!("there is no trigger `{trigger}`")))
                .await;
            return Ok(None);
        };
        if self.rolling_back {
            self.rec
                .tell(Update::Message("the rollback is already running".into()))
                .await;
            return Ok(None);
        }
        let reason = format!("raised by {}: {reason}", self.opts.operator);
        let tr = self.triggers[i].raise(Instant::now(), reason);
        self.record(i, tr).await
    }

    /// Acknowledges every firing trigger. Returns whether there was any.
    async fn acknowledge(&mut self) -> Result<bool, Stop> {
        let mut any = false;
        for i in 0..self.triggers.len() {
            if self.triggers[i].acknowledge() {
                any = true;
                let t = &self.triggers[i];
                let event = Event::TriggerAcknowledged {
                    trigger: t.id.clone(),
                    value: t.last_value,
                    operator: Some(self.opts.operator.clone()),
                };
                self.rec.emit(event).await?;
            }
        }
        Ok(any)
    }

    /// Ids of the triggers firing and not acknowledged.
    pub(super) fn firing(&self) -> Vec<String> {
        self.triggers
            .iter()
            .filter(|t| t.is_firing())
            .map(|t| t.id.clone())
            .collect()
    }

    /// The reason a rollback called for now is recorded with.
    pub(super) fn rollback_reason(&self) -> RollbackReason {
        match self.firing().first() {
            Some(id) => RollbackReason::Trigger(id.to_string()),
            None => RollbackReason::Operator,
        }
    }

    /// Before a step starts: while a trigger fires, wait for the operator to acknowledge it or roll
    /// back (or for it to clear).
    pub(super) async fn hold(&mut self, at: StepRef) -> Result<(), Stop> {
        self.lease_gate(at).await?;
        loop {
            let firing = self.firing();
            if firing.is_empty() || self.rolling_back {
                return Ok(());
            }
            self.rec
                .tell(Update::Waiting {
                    step: at,
                    why: Wait::Trigger { triggers: firing },
                })
                .await;
            match self.next::<()>(None, None).await? {
                Input::Stop(s) => return Err(s),
                Input::Command(Command::Rollback) => return Err(Stop::Rollback(self.rollback_reason())),
                Input::Command(Command::Abort { reason }) => return Err(Stop::Aborted(reason)),
                Input::Command(Command::Interrupt) => {
                    return Err(Stop::Interrupted("interrupted by a signal".into()));
                }
                Input::Command(Command::Detach) => {
                    return Err(Stop::Interrupted(
                        "the terminal hung up (SIGHUP) while a trigger held the run".into(),
                    ));
                }
                Input::Command(_) => {
                    self.rec
                        .tell(Update::Message(
                            "a trigger is firing: acknowledge it (a) or roll back (R) first".into(),
                        ))
                        .await;
                }
                Input::Fired | Input::Changed | Input::Deadline | Input::Work(()) => {}
            }
        }
    }

    /// Injects the fault into the simulated metrics (and, in rehearsals, the checks).
    async fn inject_fault(&mut self, by: &str) -> Result<(), Stop> {
        let kinds = metrics::source_kinds(&self.rb, &self.opts.sources);
        let simulated = kinds.contains(&metrics::SourceKind::Simulated) || self.opts.rehearsal.is_some();
        if !simulated {
            self.rec
                .tell(Update::Message(
                    "no metric is simulated here: a fault can only be injected into simulated metrics".into(),
                ))
                .await;
            return Ok(());
        }
        if self.fault.inject() {
            self.rec.emit(Event::FaultInjected { by: by.to_string() }).await?;
        }
        Ok(())
    }
}
