//! One attempt of an automated step (a command, a request, a watch, or in a rehearsal what would
//! have been done), and how its end becomes a `step_finished`.

use super::*;

impl Engine {
    /// How a step's command ended, into its `step_finished`. A log that could not be written is
    /// journaled (where the journal still can be), and returns the stop that follows: no new
    /// step starts.
    pub(super) async fn judge(
        &mut self,
        ended: Result<Ended, String>,
        cancelled: Option<StepStatus>,
        step: &Step,
        fin: &mut StepFinished,
    ) -> Option<Stop> {
        let (phase, step_id) = (fin.phase.clone(), fin.step.clone());
        let e = match ended {
            Err(why) => {
                fin.status = cancelled.unwrap_or(StepStatus::Failed);
                fin.error = Some(why);
                return None;
            }
            Ok(Ended {
                start_error: Some(why),
                ..
            }) => {
                fin.status = StepStatus::Failed;
                fin.error = Some(why);
                return None;
            }
            Ok(e) => e,
        };
        fin.exit_code = Some(e.exit_code);
        // As the monitor measured it: for a step adopted on resume, from its real start.
        fin.duration_ms = e.duration_ms;
        fin.status = if e.terminated {
            cancelled.unwrap_or(StepStatus::Cancelled)
        } else if e.timed_out {
            let t = step.timeout.unwrap_or_default();
            fin.error = Some(format!("timed out after {}", format_duration(t)));
            StepStatus::TimedOut
        } else if e.exit_code == 0 {
            StepStatus::Succeeded
        } else {
            fin.error = Some(match e.signal {
                Some(sig) => format!("killed by signal {sig}"),
                None => format!("exit status {}", e.exit_code),
            });
            StepStatus::Failed
        };
        if e.leftovers {
            self.rec
                .tell(Update::Message(format!(
                    "{phase}/{step_id}: ended processes the step left running in the background"
                )))
                .await;
        }
        let why = e.log_error?;
        let file = fin.log.clone().unwrap_or_default();
        let _ = self
            .rec
            .emit(Event::WriteFailed {
                file,
                error: why.clone(),
            })
            .await;
        Some(Stop::Failed(Some(format!(
            "the log of {phase}/{step_id} could not be written ({why}); nothing further was started"
        ))))
    }

    /// One attempt of an automated step: `step_started`, the work, `step_finished`.
    pub(super) async fn attempt(
        &mut self,
        at: StepRef,
        phase: &Phase,
        step: &Step,
        attempt: u32,
        by: Option<String>,
    ) -> Result<StepStatus, Stop> {
        self.started(at, attempt).await?;
        let began = std::time::Instant::now();
        let log_rel = log_name(at, phase, step, attempt);
        let log_abs = self.rec.journal.run_dir().join(&log_rel);
        let mut fin = StepFinished {
            phase: phase.id.clone(),
            step: step.id.clone(),
            attempt,
            rollback: at.rollback,
            by,
            ..Default::default()
        };
        let mut stop = None;
        let grace = self.rb.settings.kill_grace;
        let speed = self.opts.rehearsal.map(|r| r.speed);
        match (&step.kind, speed) {
            (StepKind::Run(_) | StepKind::Http(_), Some(speed)) => {
                // A rehearsal shows what would be done and does none of it.
                fin.log = Some(log_rel);
                let what = match &step.kind {
                    StepKind::Run(cmd) => format!("[rehearsal] not run: $ {cmd}\n"),
                    StepKind::Http(h) => format!("[rehearsal] not sent: {} {}\n", h.method, h.url),
                    _ => String::new(),
                };
                self.show(at, &log_abs, &what).await;
                let until = Instant::now() + Duration::from_secs_f64(0.5 / speed);
                fin.status = StepStatus::Succeeded;
                loop {
                    match self.next::<()>(None, Some(until)).await? {
                        Input::Deadline => break,
                        Input::Stop(s) => {
                            (fin.status, stop) = (StepStatus::Cancelled, Some(s));
                            break;
                        }
                        Input::Command(c) => {
                            if let Some((status, s)) = self.cancel_for(c, at) {
                                (fin.status, stop) = (status, Some(s));
                                break;
                            }
                        }
                        Input::Fired | Input::Changed | Input::Work(()) => {}
                    }
                }
            }
            (StepKind::Run(command), None) => {
                fin.log = Some(log_rel);
                let mut env = self.env.clone();
                env.extend(step.env.iter().cloned());
                env.push(("RUNBOOK_PHASE".into(), phase.id.clone()));
                env.push(("RUNBOOK_STEP".into(), step.id.clone()));
                env.push(("RUNBOOK_ATTEMPT".into(), attempt.to_string()));
                let workdir = step
                    .workdir
                    .clone()
                    .unwrap_or_else(|| self.rb.settings.workdir.clone());
                let spec = process::CommandSpec {
                    shell: &self.rb.settings.shell,
                    command,
                    workdir: &workdir,
                    env,
                    log: log_abs.clone(),
                    status: status_path(&log_abs),
                    timeout: step.timeout,
                    grace,
                    label: format!("{}/{}", phase.id, step.id),
                };
                match process::spawn(spec, &self.redactor, self.sink(at)).await {
                    Err(e) => {
                        let msg = self.redactor.redact_str(&e.to_string());
                        let _ = crate::journal::create_private_file(&log_abs).and_then(|mut f| {
                            std::io::Write::write_all(&mut f, format!("runbook: {msg}\n").as_bytes())
                        });
                        fin.status = StepStatus::Failed;
                        fin.error = Some(msg);
                    }
                    Ok(running) => stop = self.follow(at, running, step, &mut fin).await,
                }
            }
            (StepKind::Http(spec), None) => {
                fin.log = Some(log_rel);
                let timeout = step.timeout.unwrap_or(http::DEFAULT_TIMEOUT);
                let client = self.http.get_or_init(http::client).clone();
                let (spec, secrets) = (spec.clone(), self.secrets.clone());
                let mut request =
                    Box::pin(async move { http::execute(&client, &spec, &secrets, timeout).await });
                let outcome = loop {
                    match self.next(Some(request.as_mut()), None).await? {
                        Input::Work(r) => break Some(r),
                        Input::Stop(s) => {
                            (fin.status, stop) = (StepStatus::Cancelled, Some(s));
                            break None;
                        }
                        Input::Command(c) => {
                            if let Some((status, s)) = self.cancel_for(c, at) {
                                (fin.status, stop) = (status, Some(s));
                                break None;
                            }
                        }
                        Input::Fired | Input::Changed | Input::Deadline => {}
                    }
                };
                let transcript = match outcome {
                    Some(o) => {
                        fin.http_status = o.status;
                        fin.status = match (&o.error, o.timed_out) {
                            (None, _) => StepStatus::Succeeded,
                            (Some(_), true) => StepStatus::TimedOut,
                            (Some(_), false) => StepStatus::Failed,
                        };
                        fin.error = o.error.as_deref().map(|e| self.redactor.redact_str(e));
                        o.transcript
                    }
                    None => "request cancelled\n".to_string(),
                };
                self.show(at, &log_abs, &transcript).await;
            }
            (StepKind::Watch(d), _) => {
                let d = Duration::from_secs_f64(d.as_secs_f64() / speed.unwrap_or(1.0));
                let until = Instant::now() + d;
                fin.status = StepStatus::Succeeded;
                loop {
                    match self.next::<()>(None, Some(until)).await? {
                        Input::Deadline => break,
                        Input::Command(Command::Confirm { step: Some(s), .. }) if s != at => {
                            self.refuse_stale(s, at).await;
                        }
                        Input::Command(Command::Confirm { by, .. }) => {
                            let who = by.unwrap_or_else(|| self.opts.operator.clone());
                            fin.reason = Some(format!(
                                "ended early after {} by {who}",
                                format_duration(began.elapsed())
                            ));
                            fin.by = Some(who);
                            break;
                        }
                        Input::Command(c) => {
                            if let Some((status, s)) = self.cancel_for(c, at) {
                                (fin.status, stop) = (status, Some(s));
                                break;
                            }
                        }
                        Input::Stop(s) => {
                            fin.status = StepStatus::Failed;
                            fin.error = Some(format!("{} fired during the watch", trigger_of(&s)));
                            stop = Some(s);
                            break;
                        }
                        Input::Fired => {
                            fin.status = StepStatus::Failed;
                            let firing = self.firing().join(", ");
                            fin.error = Some(format!("trigger {firing} fired during the watch"));
                            break;
                        }
                        Input::Changed | Input::Work(()) => {}
                    }
                }
            }
            (StepKind::Manual(_), _) => unreachable!("manual steps finish in run_step"),
        }
        // Handed over mid-step: it stays unfinished in the journal, for the new driver to follow.
        if let Some(s @ Stop::HandedOver(_)) = stop {
            return Err(s);
        }
        fin.duration_ms = began.elapsed().as_millis() as u64;
        let status = fin.status;
        self.unfinished = None;
        self.rec.emit(Event::StepFinished(Box::new(fin))).await?;
        match stop {
            Some(s) => Err(s),
            None => Ok(status),
        }
    }
}
