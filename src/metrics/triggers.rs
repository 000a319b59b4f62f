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
#[derive(Debug, Clone, Copy, PartialEq)]
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
        match self {
            State::Disarmed => "disarmed",
            State::Unsampled => "unsampled",
            State::Ok => "ok",
            State::Pending { .. } => "pending",
            State::Firing { .. } => "firing",
            State::Acknowledged => "acknowledged",
            State::Unknown { .. } => "unknown",
        }
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
mod tests {
    use super::*;

    fn metric_trigger(threshold: Threshold, for_: Duration, on_no_data: OnNoData) -> Watched {
        Watched::new(
            &Trigger {
                id: "t".into(),
                title: "T".into(),
                kind: TriggerKind::Metric {
                    metric: "m".into(),
                    threshold,
                    for_,
                    on_no_data,
                },
                armed_from: None,
                auto_rollback: Some(Duration::from_secs(120)),
            },
            1.0,
        )
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn fires_only_after_breaching_for_the_whole_window() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Above(0.01), 5 * MIN, OnNoData::Warn);
        assert_eq!(t.observe(t0, &Reading::Value(0.005)), None);
        assert_eq!(
            t.observe(t0 + MIN, &Reading::Value(0.02)),
            Some(Transition::Pending { value: 0.02 })
        );
        assert_eq!(t.observe(t0 + 3 * MIN, &Reading::Value(0.03)), None);
        assert!(matches!(t.state, State::Pending { .. }));
        // 4m59s after the breach began: still pending.
        assert_eq!(
            t.observe(t0 + 6 * MIN - Duration::from_secs(1), &Reading::Value(0.03)),
            None
        );
        let fired = t.observe(t0 + 6 * MIN, &Reading::Value(0.04));
        assert_eq!(
            fired,
            Some(Transition::Fired {
                value: Some(0.04),
                reason: None,
                roll_back_now: false
            })
        );
        assert!(t.is_firing());
        assert_eq!(t.auto_rollback_at(), Some(t0 + 6 * MIN + 2 * MIN));
    }

    #[test]
    fn a_dip_below_the_threshold_restarts_the_window() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Above(1.0), 5 * MIN, OnNoData::Warn);
        t.observe(t0, &Reading::Value(2.0));
        assert_eq!(
            t.observe(t0 + 4 * MIN, &Reading::Value(0.5)),
            Some(Transition::Cleared { value: Some(0.5) })
        );
        t.observe(t0 + 5 * MIN, &Reading::Value(2.0));
        assert_eq!(
            t.observe(t0 + 9 * MIN, &Reading::Value(2.0)),
            None,
            "only 4 minutes into the new window"
        );
        assert!(matches!(
            t.observe(t0 + 10 * MIN, &Reading::Value(2.0)),
            Some(Transition::Fired { .. })
        ));
    }

    #[test]
    fn below_thresholds_and_zero_windows_fire_at_once() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Below(10.0), Duration::ZERO, OnNoData::Warn);
        assert!(matches!(
            t.observe(t0, &Reading::Value(3.0)),
            Some(Transition::Fired { .. })
        ));
    }

    #[test]
    fn no_data_is_unknown_never_ok() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Above(1.0), MIN, OnNoData::Warn);
        t.observe(t0, &Reading::Value(2.0));
        let tr = t.observe(t0 + MIN, &Reading::Error("connection refused".into()));
        assert_eq!(
            tr,
            Some(Transition::Unknown {
                error: "connection refused".into()
            })
        );
        assert_eq!(
            t.state,
            State::Unknown { pending: Some(t0) },
            "the window is kept"
        );
        assert_eq!(
            t.observe(t0 + 2 * MIN, &Reading::NoData),
            Some(Transition::Unknown {
                error: "no data".into()
            }),
            "no data ends the window"
        );
        assert_eq!(t.state, State::Unknown { pending: None });
        assert_eq!(t.observe(t0 + 3 * MIN, &Reading::NoData), None, "already unknown");
        assert!(!t.is_firing());
    }

    fn fired(t: &Transition) -> bool {
        matches!(t, Transition::Fired { .. })
    }

    fn failed() -> Reading {
        Reading::Error("Prometheus answered HTTP 503".into())
    }

    #[test]
    fn a_failed_query_while_pending_keeps_the_window() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Above(1.0), 5 * MIN, OnNoData::Warn);
        t.observe(t0, &Reading::Value(2.0));
        // One blip near the end of the window: shown unknown for that poll...
        assert_eq!(
            t.observe(t0 + 4 * MIN, &failed()),
            Some(Transition::Unknown {
                error: "Prometheus answered HTTP 503".into()
            })
        );
        assert_eq!(t.state, State::Unknown { pending: Some(t0) });
        assert_eq!(
            t.observe(t0 + 4 * MIN + MIN / 2, &failed()),
            None,
            "reported once"
        );
        // ...and the window goes on: the breach seen again is pending since t0, not since now.
        assert_eq!(
            t.observe(t0 + 4 * MIN + 50 * MIN / 60, &Reading::Value(2.0)),
            Some(Transition::Pending { value: 2.0 })
        );
        assert_eq!(t.state, State::Pending { since: t0 });
        assert!(
            t.observe(t0 + 5 * MIN, &Reading::Value(2.0))
                .is_some_and(|tr| fired(&tr))
        );
    }

    #[test]
    fn a_window_that_ends_while_queries_fail_fires_at_the_first_answer() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Above(1.0), 5 * MIN, OnNoData::Warn);
        t.observe(t0, &Reading::Value(2.0));
        t.observe(t0 + 4 * MIN, &failed());
        assert_eq!(t.observe(t0 + 6 * MIN, &failed()), None);
        assert!(
            !t.is_firing(),
            "a failed query never fires a warn trigger by itself"
        );
        assert!(
            t.observe(t0 + 7 * MIN, &Reading::Value(3.0))
                .is_some_and(|tr| fired(&tr))
        );
    }

    #[test]
    fn a_failed_query_then_a_healthy_answer_clears() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Above(1.0), 5 * MIN, OnNoData::Warn);
        t.observe(t0, &Reading::Value(2.0));
        t.observe(t0 + MIN, &failed());
        assert_eq!(
            t.observe(t0 + 2 * MIN, &Reading::Value(0.5)),
            Some(Transition::Cleared { value: Some(0.5) })
        );
        // A new breach starts a new window.
        t.observe(t0 + 3 * MIN, &Reading::Value(2.0));
        assert_eq!(t.state, State::Pending { since: t0 + 3 * MIN });
    }

    #[test]
    fn an_empty_answer_while_pending_restarts_the_window() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Above(1.0), 5 * MIN, OnNoData::Warn);
        t.observe(t0, &Reading::Value(2.0));
        assert_eq!(
            t.observe(t0 + 4 * MIN, &Reading::NoData),
            Some(Transition::Unknown {
                error: "no data".into()
            })
        );
        assert_eq!(
            t.observe(t0 + 5 * MIN, &Reading::Value(2.0)),
            Some(Transition::Pending { value: 2.0 }),
            "a new window, not the old one's end"
        );
        assert_eq!(t.observe(t0 + 9 * MIN, &Reading::Value(2.0)), None);
        assert!(
            t.observe(t0 + 10 * MIN, &Reading::Value(2.0))
                .is_some_and(|tr| fired(&tr))
        );
    }

    #[test]
    fn an_empty_answer_after_a_failed_query_restarts_the_kept_window() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Above(1.0), 5 * MIN, OnNoData::Warn);
        t.observe(t0, &Reading::Value(2.0));
        t.observe(t0 + MIN, &failed());
        assert_eq!(
            t.observe(t0 + 2 * MIN, &Reading::NoData),
            Some(Transition::Unknown {
                error: "no data".into()
            }),
            "a different fact: the window is gone"
        );
        assert_eq!(t.state, State::Unknown { pending: None });
        t.observe(t0 + 3 * MIN, &Reading::Value(2.0));
        assert_eq!(t.state, State::Pending { since: t0 + 3 * MIN });
    }

    #[test]
    fn hold_and_rollback_act_on_failed_queries_only_when_the_source_stays_down() {
        let t0 = Instant::now();
        for on_no_data in [OnNoData::Hold, OnNoData::Rollback] {
            let mut t = metric_trigger(Threshold::Above(1.0), MIN, on_no_data);
            t.observe(t0, &Reading::Value(0.5));
            assert!(
                matches!(t.observe(t0 + MIN, &failed()), Some(Transition::Unknown { .. })),
                "one blip is shown, not acted on"
            );
            assert_eq!(
                t.observe(t0 + MIN + MIN / 2, &failed()),
                None,
                "not yet for `for`"
            );
            let Some(Transition::Fired {
                value: None,
                reason: Some(reason),
                roll_back_now,
            }) = t.observe(t0 + 2 * MIN, &failed())
            else {
                panic!("{on_no_data:?}: the source has failed for `for` on 3 polls")
            };
            assert_eq!(roll_back_now, on_no_data == OnNoData::Rollback);
            assert!(
                reason.contains("3 polls")
                    && reason.contains("HTTP 503")
                    && reason.contains(on_no_data.as_str()),
                "{reason}"
            );
            // An answer in between starts the count again.
            let mut t = metric_trigger(Threshold::Above(1.0), Duration::ZERO, on_no_data);
            t.observe(t0, &Reading::Value(0.5));
            t.observe(t0 + MIN / 2, &failed());
            t.observe(t0 + MIN, &Reading::Value(0.5));
            assert!(!t.observe(t0 + 2 * MIN, &failed()).is_some_and(|tr| fired(&tr)));
            assert!(t.observe(t0 + 3 * MIN, &failed()).is_some_and(|tr| fired(&tr)));
        }
    }

    #[test]
    fn a_source_that_never_answered_holds_or_rolls_back_at_once() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Above(1.0), 5 * MIN, OnNoData::Rollback);
        assert!(matches!(
            t.observe(t0, &failed()),
            Some(Transition::Fired {
                roll_back_now: true,
                ..
            })
        ));
        let mut t = metric_trigger(Threshold::Above(1.0), 5 * MIN, OnNoData::Warn);
        assert!(matches!(
            t.observe(t0, &failed()),
            Some(Transition::Unknown { .. })
        ));
    }

    #[test]
    fn losing_data_while_firing_is_reported_once_and_clears_nothing() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Above(1.0), Duration::ZERO, OnNoData::Warn);
        t.observe(t0, &Reading::Value(5.0));
        assert_eq!(
            t.observe(t0 + MIN, &failed()),
            Some(Transition::DataLost {
                error: "Prometheus answered HTTP 503".into()
            })
        );
        assert_eq!(
            t.observe(t0 + 2 * MIN, &Reading::NoData),
            None,
            "reported once per loss"
        );
        assert!(t.is_firing());
        assert_eq!(t.observe(t0 + 3 * MIN, &Reading::Value(5.0)), None);
        assert!(t.acknowledge());
        assert_eq!(
            t.observe(t0 + 4 * MIN, &Reading::NoData),
            Some(Transition::DataLost {
                error: "no data".into()
            }),
            "lost again after it came back"
        );
        assert_eq!(t.state, State::Acknowledged);
        assert_eq!(
            t.observe(t0 + 5 * MIN, &Reading::Value(0.5)),
            Some(Transition::Cleared { value: Some(0.5) })
        );
    }

    #[test]
    fn a_resumed_trigger_reports_its_first_reading_whatever_it_says() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Above(1.0), 5 * MIN, OnNoData::Warn).resumed();
        assert_eq!(t.state, State::Unsampled);
        assert_eq!(
            t.observe(t0, &Reading::Value(0.5)),
            Some(Transition::Cleared { value: Some(0.5) }),
            "healthy now: whatever the last session showed is over"
        );
        assert_eq!(t.observe(t0 + MIN, &Reading::Value(0.5)), None);
        let mut t = metric_trigger(Threshold::Above(1.0), 5 * MIN, OnNoData::Warn).resumed();
        assert_eq!(
            t.observe(t0, &Reading::Value(2.0)),
            Some(Transition::Pending { value: 2.0 }),
            "a breach starts a fresh window"
        );
        assert_eq!(t.state, State::Pending { since: t0 });
        // Triggers armed from a phase start unsampled too when the phase starts.
        let mut t = metric_trigger(Threshold::Above(1.0), MIN, OnNoData::Warn);
        t.state = State::Disarmed;
        let mut t = t.resumed();
        assert_eq!(t.state, State::Disarmed);
        t.arm();
        assert_eq!(t.state, State::Unsampled);
        let mut fresh = metric_trigger(Threshold::Above(1.0), MIN, OnNoData::Warn);
        fresh.state = State::Disarmed;
        fresh.arm();
        assert_eq!(fresh.state, State::Ok, "a new run starts ok, as before");
    }

    #[test]
    fn no_data_holds_or_rolls_back_when_asked_to() {
        let t0 = Instant::now();
        let mut hold = metric_trigger(Threshold::Above(1.0), MIN, OnNoData::Hold);
        let tr = hold.observe(t0, &Reading::NoData).unwrap();
        assert_eq!(
            hold.observe(t0 + MIN, &Reading::NoData),
            None,
            "fired for that loss"
        );
        assert!(matches!(
            tr,
            Transition::Fired {
                roll_back_now: false,
                ..
            }
        ));
        assert!(hold.is_firing());
        let mut rb = metric_trigger(Threshold::Above(1.0), MIN, OnNoData::Rollback);
        assert!(matches!(
            rb.observe(t0, &Reading::NoData),
            Some(Transition::Fired {
                roll_back_now: true,
                ..
            })
        ));
    }

    #[test]
    fn a_firing_trigger_keeps_firing_when_data_is_lost_and_can_be_acknowledged() {
        let t0 = Instant::now();
        let mut t = metric_trigger(Threshold::Above(1.0), Duration::ZERO, OnNoData::Warn);
        t.observe(t0, &Reading::Value(5.0));
        assert_eq!(
            t.observe(t0 + MIN, &Reading::NoData),
            Some(Transition::DataLost {
                error: "no data".into()
            })
        );
        assert!(t.is_firing());
        assert!(t.acknowledge());
        assert!(!t.is_firing());
        assert_eq!(t.auto_rollback_at(), None, "acknowledged: no automatic rollback");
        assert_eq!(
            t.observe(t0 + 2 * MIN, &Reading::Value(5.0)),
            None,
            "still breached, still acknowledged"
        );
        assert!(matches!(
            t.observe(t0 + 3 * MIN, &Reading::Value(0.1)),
            Some(Transition::Cleared { .. })
        ));
    }

    #[test]
    fn disarmed_triggers_ignore_everything_until_armed() {
        let mut t = metric_trigger(Threshold::Above(1.0), Duration::ZERO, OnNoData::Warn);
        t.state = State::Disarmed;
        assert_eq!(t.observe(Instant::now(), &Reading::Value(5.0)), None);
    }

    #[test]
    fn rehearsal_speed_divides_windows() {
        let t = Watched::new(
            &Trigger {
                id: "t".into(),
                title: "T".into(),
                kind: TriggerKind::Metric {
                    metric: "m".into(),
                    threshold: Threshold::Above(1.0),
                    for_: 5 * MIN,
                    on_no_data: OnNoData::Warn,
                },
                armed_from: Some("deploy".into()),
                auto_rollback: Some(2 * MIN),
            },
            30.0,
        );
        assert!(matches!(t.kind, TriggerKind::Metric { for_, .. } if for_ == Duration::from_secs(10)));
        assert_eq!(t.auto_rollback, Some(Duration::from_secs(4)));
        assert_eq!(t.state, State::Disarmed);
    }

    #[test]
    fn checks_fire_on_failure_and_clear_on_success() {
        let t0 = Instant::now();
        let mut t = Watched::new(
            &Trigger {
                id: "c".into(),
                title: "C".into(),
                kind: TriggerKind::Check {
                    command: "x".into(),
                    interval: MIN,
                    timeout: MIN,
                },
                armed_from: None,
                auto_rollback: None,
            },
            1.0,
        );
        assert_eq!(t.check(t0, Ok(())), None);
        assert!(matches!(
            t.check(t0, Err("exit 1".into())),
            Some(Transition::Fired { .. })
        ));
        assert_eq!(t.check(t0, Err("exit 1".into())), None);
        assert_eq!(t.check(t0, Ok(())), Some(Transition::Cleared { value: None }));
    }
}
