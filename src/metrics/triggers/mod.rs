//! Rollback triggers as a pure state machine: readings and times in, transitions out.
//!
//! No I/O and no clock of its own: every call is given `now`, so tests drive minutes of trigger
//! timing in microseconds. The engine journals the transitions and decides what they mean for the
//! run (hold, roll back).
//!
//! Missing data comes in two kinds, and they are not the same fact (SPEC §7):
//! - no data (an empty answer): the breach is not observed, so a pending `for` window restarts, as
//!   a vanished series resolves a pending alert in Prometheus. `on_no_data` applies at once.
//! - a failed query (an error, a timeout, a bad status): nothing is known about the metric, so the
//!   trigger is shown `unknown` for that poll and a pending window is kept as it is, as Prometheus
//!   keeps a pending alert when a rule evaluation fails. One blip never holds or rolls back the run:
//!   once the source has answered, `hold` and `rollback` act on failed queries only when it has
//!   failed on two polls in a row and for at least the trigger's `for`. A source that has not
//!   answered yet in this session is not having a blip: they act at once, before any step runs.
//!
//! Once a trigger fires (or was acknowledged), losing its data does not clear it; the loss is
//! reported once (`DataLost`) until data comes back.

use std::time::Duration;

use tokio::time::Instant;

use super::Reading;
use crate::runbook::{OnNoData, Threshold, Trigger, TriggerKind};

/// Where a trigger stands (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum State {
    /// Not watched yet: its `armed_from` phase has not started.
    Disarmed,
    /// Watched, with no reading yet in this session. After a resume, what the last session showed
    /// no longer holds: the first reading is reported whatever it says, healthy included.
    Unsampled,
    Ok,
    /// Breached since `since`; fires when the breach has lasted `for`.
    Pending {
        since: Instant,
    },
    Firing {
        since: Instant,
    },
    Acknowledged,
    /// No data, or the source failed. `pending`: the start of a breach window that a failed query
    /// keeps; the window goes on when the breach is seen again.
    Unknown {
        pending: Option<Instant>,
    },
}

impl State {
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

/// A change worth recording.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Pending {
        value: f64,
    },
    Fired {
        value: Option<f64>,
        reason: Option<String>,
        roll_back_now: bool,
    },
    Cleared {
        value: Option<f64>,
    },
    Unknown {
        error: String,
    },
    /// A firing or acknowledged trigger lost its data: it stays as it is; reported once per loss.
    DataLost {
        error: String,
    },
}

/// Consecutive failed queries of a metric trigger's source.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Failing {
    since: Instant,
    polls: u32,
}

/// One trigger's configuration (durations already divided by a rehearsal's speed) and state.
#[derive(Debug, Clone)]
pub struct Watched {
    pub id: String,
    pub kind: TriggerKind,
    pub auto_rollback: Option<Duration>,
    pub armed_from: Option<String>,
    pub state: State,
    pub last_value: Option<f64>,
    /// Resumed: an armed trigger starts `Unsampled`, not `Ok`.
    resumed: bool,
    failing: Option<Failing>,
    /// The source has answered (a value or an empty answer) in this session.
    answered: bool,
    /// The loss of data while firing or acknowledged has been reported.
    data_lost: bool,
}

impl Watched {
    pub fn new(t: &Trigger, speed: f64) -> Watched {
        let scale = |d: Duration| Duration::from_secs_f64(d.as_secs_f64() / speed);
        let kind = match &t.kind {
            TriggerKind::Metric {
                metric,
                threshold,
                for_,
                on_no_data,
            } => TriggerKind::Metric {
                metric: metric.clone(),
                threshold: *threshold,
                for_: scale(*for_),
                on_no_data: *on_no_data,
            },
            other => other.clone(),
        };
        Watched {
            id: t.id.clone(),
            kind,
            auto_rollback: t.auto_rollback.map(scale),
            armed_from: t.armed_from.clone(),
            state: if t.armed_from.is_some() {
                State::Disarmed
            } else {
                State::Ok
            },
            last_value: None,
            resumed: false,
            failing: None,
            answered: false,
            data_lost: false,
        }
    }

    /// The same trigger in a resumed run: watched afresh, and its first reading is reported
    /// whatever it says, so that nothing shown from the last session outlives it.
    pub fn resumed(mut self) -> Watched {
        self.resumed = true;
        if self.is_armed() {
            self.state = State::Unsampled;
        }
        self
    }

    /// Its `armed_from` phase started: watched from now on.
    pub fn arm(&mut self) {
        if !self.is_armed() {
            self.state = if self.resumed { State::Unsampled } else { State::Ok };
        }
    }

    pub fn is_armed(&self) -> bool {
        self.state != State::Disarmed
    }

    /// Firing and not yet acknowledged: the run must not start a new step.
    pub fn is_firing(&self) -> bool {
        matches!(self.state, State::Firing { .. })
    }

    pub(crate) fn go(&mut self, state: State) {
        self.state = state;
    }

    /// The source answered (an alert trigger's API, see `alerts`): what a metric value resets.
    pub(crate) fn answered(&mut self) {
        self.answered = true;
        self.failing = None;
        self.data_lost = false;
    }

    /// A metric reading for a metric trigger.
    pub fn observe(&mut self, now: Instant, reading: &Reading) -> Option<Transition> {
        let TriggerKind::Metric {
            threshold,
            for_,
            on_no_data,
            ..
        } = &self.kind
        else {
            return None;
        };
        if !self.is_armed() {
            return None;
        }
        let (threshold, for_, on_no_data) = (*threshold, *for_, *on_no_data);
        match reading {
            Reading::Value(v) => {
                self.answered = true;
                self.failing = None;
                self.data_lost = false;
                self.last_value = Some(*v);
                let breached = match threshold {
                    Threshold::Above(t) => *v > t,
                    Threshold::Below(t) => *v < t,
                };
                let fire = |w: &mut Watched| {
                    w.go(State::Firing { since: now });
                    Some(Transition::Fired {
                        value: Some(*v),
                        reason: None,
                        roll_back_now: false,
                    })
                };
                match (breached, self.state) {
                    (true, State::Firing { .. } | State::Acknowledged) => None,
                    (true, State::Pending { since } | State::Unknown { pending: Some(since) })
                        if now.saturating_duration_since(since) >= for_ =>
                    {
                        fire(self)
                    }
                    (true, State::Pending { .. }) => None,
                    // The window a failed query kept goes on.
                    (true, State::Unknown { pending: Some(since) }) => {
                        self.go(State::Pending { since });
                        Some(Transition::Pending { value: *v })
                    }
                    (true, _) if for_.is_zero() => fire(self),
                    (true, _) => {
                        self.go(State::Pending { since: now });
                        Some(Transition::Pending { value: *v })
                    }
                    (false, State::Ok) => None,
                    (false, _) => {
                        self.go(State::Ok);
                        Some(Transition::Cleared { value: Some(*v) })
                    }
                }
            }
            Reading::NoData => {
                self.answered = true;
                self.failing = None;
                self.no_data(now, crate::metrics::NO_DATA.to_string(), on_no_data)
            }
            Reading::Error(error) => self.failed(now, error, for_, on_no_data),
        }
    }

    /// An empty answer: the breach is not seen, so a pending window restarts.
    fn no_data(&mut self, now: Instant, error: String, on_no_data: OnNoData) -> Option<Transition> {
        match (on_no_data, self.state) {
            // A firing trigger stays firing: losing the data is no reason to stand down.
            (_, State::Firing { .. } | State::Acknowledged) => self.lose_data(error),
            (OnNoData::Warn, State::Unknown { pending: None }) => None,
            (OnNoData::Warn, _) => {
                self.go(State::Unknown { pending: None });
                Some(Transition::Unknown { error })
            }
            (OnNoData::Hold | OnNoData::Rollback, _) => {
                self.go(State::Firing { since: now });
                // Fired for the loss itself: nothing more to report until data comes back.
                self.data_lost = true;
                Some(Transition::Fired {
                    value: None,
                    reason: Some(format!("{error} (on_no_data = \"{}\")", on_no_data.as_str())),
                    roll_back_now: on_no_data == OnNoData::Rollback,
                })
            }
        }
    }

    /// A failed query: unknown for this poll, a pending window kept as it is.
    pub(crate) fn failed(
        &mut self,
        now: Instant,
        error: &str,
        for_: Duration,
        on_no_data: OnNoData,
    ) -> Option<Transition> {
        let failing = self.failing.get_or_insert(Failing { since: now, polls: 0 });
        failing.polls += 1;
        let failing = *failing;
        let lasted = now.saturating_duration_since(failing.since);
        match self.state {
            State::Firing { .. } | State::Acknowledged => self.lose_data(error.to_string()),
            // A source that has never answered is not having a blip: the run is blind from its
            // start, before any step changed anything.
            _ if on_no_data != OnNoData::Warn && !self.answered => {
                self.no_data(now, error.to_string(), on_no_data)
            }
            // A source that stays down is as blind as an empty answer.
            _ if on_no_data != OnNoData::Warn && failing.polls >= 2 && lasted >= for_ => {
                let error = format!(
                    "the metric's source failed on {} polls in a row over {}: {error}",
                    failing.polls,
                    crate::duration::format_duration(lasted)
                );
                self.no_data(now, error, on_no_data)
            }
            State::Unknown { .. } => None,
            State::Pending { since } => {
                self.go(State::Unknown { pending: Some(since) });
                Some(Transition::Unknown {
                    error: error.to_string(),
                })
            }
            _ => {
                self.go(State::Unknown { pending: None });
                Some(Transition::Unknown {
                    error: error.to_string(),
                })
            }
        }
    }

    fn lose_data(&mut self, error: String) -> Option<Transition> {
        if self.data_lost {
            return None;
        }
        self.data_lost = true;
        Some(Transition::DataLost { error })
    }

    /// A check trigger's result: `Ok(())` passed, `Err(why)` breached.
    pub fn check(&mut self, now: Instant, result: Result<(), String>) -> Option<Transition> {
        if !self.is_armed() {
            return None;
        }
        match (result, self.state) {
            (Ok(()), State::Ok) => None,
            (Ok(()), _) => {
                self.go(State::Ok);
                Some(Transition::Cleared { value: None })
            }
            (Err(_), State::Firing { .. } | State::Acknowledged) => None,
            (Err(why), _) => {
                self.go(State::Firing { since: now });
                Some(Transition::Fired {
                    value: None,
                    reason: Some(why),
                    roll_back_now: false,
                })
            }
        }
    }

    /// Raised by the operator (any trigger may be; manual ones only this way).
    pub fn raise(&mut self, now: Instant, reason: String) -> Option<Transition> {
        if self.is_firing() {
            return None;
        }
        self.go(State::Firing { since: now });
        Some(Transition::Fired {
            value: self.last_value,
            reason: Some(reason),
            roll_back_now: false,
        })
    }

    /// The operator saw it and goes on: no longer holds the run.
    pub fn acknowledge(&mut self) -> bool {
        if self.is_firing() {
            self.go(State::Acknowledged);
            true
        } else {
            false
        }
    }

    /// When this trigger rolls back by itself if nobody acknowledges it.
    pub fn auto_rollback_at(&self) -> Option<Instant> {
        match (self.state, self.auto_rollback) {
            (State::Firing { since }, Some(after)) => Some(since + after),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
