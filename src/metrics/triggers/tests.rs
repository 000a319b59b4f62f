//! The trigger state machine driven through its timing: windows, failed queries, no data,
//! acknowledgement, rehearsal speed, checks.

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
            reason.contains("3 polls") && reason.contains("HTTP 503") && reason.contains(on_no_data.as_str()),
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
