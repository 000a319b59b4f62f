//! Rollback triggers as a pure state machine: readings and times in, transitions out.
//!
//! No I/O and no clock of its own: every call is given `now`, so tests drive minutes of trigger
//! timing in microseconds. The engine journals the transitions and decides what they mean for the
//! run (hold, roll back).

use std::time::Duration;

use tokio::time::Instant;

use super::Reading;
use crate::runbook::{OnNoData, Threshold, Trigger, TriggerKind};

/// Where a trigger stands (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum State {
    /// Not watched yet: its `armed_from` phase has not started.
    Disarmed,
    Ok,
    /// Breached since `since`; fires when the breach has lasted `for`.
    Pending {
        since: Instant,
    },
    Firing {
        since: Instant,
    },
    Acknowledged,
    /// No data, or the source failed.
    Unknown,
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Disarmed => "disarmed",
            State::Ok => "ok",
            State::Pending { .. } => "pending",
            State::Firing { .. } => "firing",
            State::Acknowledged => "acknowledged",
            State::Unknown => "unknown",
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
        }
    }

    pub fn is_armed(&self) -> bool {
        self.state != State::Disarmed
    }

    /// Firing and not yet acknowledged: the run must not start a new step.
    pub fn is_firing(&self) -> bool {
        matches!(self.state, State::Firing { .. })
    }

    fn go(&mut self, state: State) {
        self.state = state;
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
                self.last_value = Some(*v);
                let breached = match threshold {
                    Threshold::Above(t) => *v > t,
                    Threshold::Below(t) => *v < t,
                };
                match (breached, self.state) {
                    (true, State::Ok | State::Unknown) if for_.is_zero() => {
                        self.go(State::Firing { since: now });
                        Some(Transition::Fired {
                            value: Some(*v),
                            reason: None,
                            roll_back_now: false,
                        })
                    }
                    (true, State::Ok | State::Unknown) => {
                        self.go(State::Pending { since: now });
                        Some(Transition::Pending { value: *v })
                    }
                    (true, State::Pending { since }) if now.duration_since(since) >= for_ => {
                        self.go(State::Firing { since: now });
                        Some(Transition::Fired {
                            value: Some(*v),
                            reason: None,
                            roll_back_now: false,
                        })
                    }
                    (true, _) => None,
                    (false, State::Ok) => None,
                    (false, _) => {
                        self.go(State::Ok);
                        Some(Transition::Cleared { value: Some(*v) })
                    }
                }
            }
            Reading::NoData | Reading::Error(_) => {
                let error = match reading {
                    Reading::Error(e) => e.clone(),
                    _ => "no data".to_string(),
                };
                match (on_no_data, self.state) {
                    // A firing trigger stays firing: losing the data is no reason to stand down.
                    (_, State::Firing { .. } | State::Acknowledged) => None,
                    (OnNoData::Warn, State::Unknown) => None,
                    (OnNoData::Warn, _) => {
                        self.go(State::Unknown);
                        Some(Transition::Unknown { error })
                    }
                    (OnNoData::Hold | OnNoData::Rollback, _) => {
                        self.go(State::Firing { since: now });
                        Some(Transition::Fired {
                            value: None,
                            reason: Some(format!("{error} (on_no_data = \"{}\")", on_no_data.as_str())),
                            roll_back_now: on_no_data == OnNoData::Rollback,
                        })
                    }
                }
            }
        }
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
        assert_eq!(t.state, State::Unknown);
        assert_eq!(t.observe(t0 + 2 * MIN, &Reading::NoData), None, "already unknown");
        assert!(!t.is_firing());
    }

    #[test]
    fn no_data_holds_or_rolls_back_when_asked_to() {
        let t0 = Instant::now();
        let mut hold = metric_trigger(Threshold::Above(1.0), MIN, OnNoData::Hold);
        let tr = hold.observe(t0, &Reading::NoData).unwrap();
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
        assert_eq!(t.observe(t0 + MIN, &Reading::NoData), None);
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
