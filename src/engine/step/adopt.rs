//! Resuming a step whose command was in flight when the last `runbook` stopped: its monitor's
//! record of the end, or the command followed to its end.

use super::*;

impl Engine {
    /// Resuming: the attempt that was in flight when the last `runbook` stopped ran under a
    /// monitor. If the monitor recorded its end, that is journaled; if it still runs, it is
    /// followed to its end (its log shown as it grows). Returns the attempt's status, or `None`
    /// when there is no monitor to ask (the operator decides, as before).
    pub(super) async fn adopt(
        &mut self,
        at: StepRef,
        phase: &Phase,
        step: &Step,
        attempt: u32,
    ) -> Result<Option<StepStatus>, Stop> {
        if !matches!(step.kind, StepKind::Run(_)) || self.opts.rehearsal.is_some() {
            return Ok(None);
        }
        let log_rel = log_name(at, phase, step, attempt);
        let log_abs = self.rec.journal.run_dir().join(&log_rel);
        let status_file = status_path(&log_abs);
        let Some(record) = monitor::read_status(&status_file) else {
            return Ok(None);
        };
        // Ended because the last `runbook` asked (an interruption): that is the operator's call.
        if record.ended.as_ref().is_some_and(|e| e.terminated) {
            return Ok(None);
        }
        let mut fin = StepFinished {
            phase: phase.id.clone(),
            step: step.id.clone(),
            attempt,
            rollback: at.rollback,
            log: Some(log_rel),
            ..Default::default()
        };
        let name = format!("{}/{}", phase.id, step.id);
        let stop = if let Some(ended) = record.ended {
            self.rec
                .tell(Update::Message(format!(
                    "{name} ended while no runbook was running (exit {}); recording its result, not running it again",
                    ended.exit_code
                )))
                .await;
            fin.reason = Some("ended while runbook was not running; result read from its monitor".into());
            self.judge(Ok(ended), None, step, &mut fin).await
        } else {
            let Some(running) = process::adopt(&status_file, &log_abs, self.sink(at)) else {
                return Ok(None);
            };
            self.rec
                .tell(Update::Message(format!(
                    "{name} is still running (its monitor, pid {}, kept it going): following it to its end, not starting it again",
                    record.monitor_pid
                )))
                .await;
            let began = std::time::Instant::now();
            self.unfinished = Some((at, attempt, began));
            let stop = self.follow(at, running, step, &mut fin).await;
            fin.reason = Some("followed to its end after runbook was restarted".into());
            stop
        };
        if let Some(s @ Stop::HandedOver(_)) = stop {
            return Err(s);
        }
        let status = fin.status;
        self.unfinished = None;
        self.rec.emit(Event::StepFinished(Box::new(fin))).await?;
        match stop {
            Some(s) => Err(s),
            None => Ok(Some(status)),
        }
    }

    /// Follows a step's command under its monitor to its end, and fills in how it ended. A stop
    /// (rollback, abort, signal) asks the monitor to end it; a journal that cannot be written
    /// never does: the step runs to its own end, and the stop comes after it. Returns the stop.
    pub(super) async fn follow(
        &mut self,
        at: StepRef,
        mut running: process::RunningCommand,
        step: &Step,
        fin: &mut StepFinished,
    ) -> Option<Stop> {
        let mut stop = None;
        let mut cancelled = None;
        let ended = loop {
            let input = {
                let wait = pin!(running.wait());
                self.next(Some(wait), None).await
            };
            match input {
                Ok(Input::Work(r)) => break r,
                // Handed over: the command runs on under its monitor; the new driver follows it.
                Ok(Input::Stop(s @ Stop::HandedOver(_))) => {
                    running.release();
                    return Some(s);
                }
                Ok(Input::Stop(s)) => {
                    stop.get_or_insert(s);
                    cancelled.get_or_insert(StepStatus::Cancelled);
                    running.terminate();
                }
                Ok(Input::Command(c)) => {
                    if let Some((status, s)) = self.cancel_for(c, at) {
                        stop.get_or_insert(s);
                        cancelled.get_or_insert(status);
                        running.terminate();
                    }
                }
                // The step in flight runs to its end; the hold comes before the next one.
                Ok(Input::Fired | Input::Changed | Input::Deadline) => {}
                // The journal cannot be written: said once; the step goes on to its end (the
                // operator can still stop it), and the stop comes after it.
                Err(journal) => {
                    if !matches!(stop, Some(Stop::Journal(_))) {
                        if let Stop::Journal(why) = &journal {
                            self.rec
                                .tell(Update::Message(format!(
                                    "{why}; the step in flight goes on to its end, nothing further will start"
                                )))
                                .await;
                        }
                        stop = Some(journal);
                    }
                }
            }
        };
        if let Some(s) = self.judge(ended, cancelled, step, fin).await {
            stop.get_or_insert(s);
        }
        stop
    }
}
