//! Tests of reading a run back: where it stands, who drives it, and finding it by name.

use super::*;
use crate::journal::StepStatus;

fn rec(ts: &str, event: Event) -> Record {
    Record { ts: ts.into(), event }
}

fn started(phase: &str, step: &str, attempt: u32) -> Event {
    Event::StepStarted {
        phase: phase.into(),
        step: step.into(),
        attempt,
        rollback: false,
    }
}

fn finished(phase: &str, step: &str, status: StepStatus) -> Event {
    Event::StepFinished(Box::new(crate::journal::StepFinished {
        phase: phase.into(),
        step: step.into(),
        attempt: 1,
        status,
        ..Default::default()
    }))
}

#[test]
fn lock_holders_are_read_back() {
    assert_eq!(
        parse_holder("alice@bastion-1 (pid 4242)\n"),
        Some(("alice".into(), "bastion-1".into(), 4242))
    );
    assert_eq!(parse_holder(""), None);
    assert_eq!(parse_holder("alice (pid x)"), None);
}

#[test]
fn standing_follows_the_journal() {
    let mut j = vec![rec("t0", started("deploy", "canary", 1))];
    let pos = standing(&j, None);
    assert!(
        matches!(&pos.standing, Standing::Running { step, attempt: 1, since } if step.step == "canary" && since == "t0")
    );
    assert_eq!(describe(&pos, Some("alice"), false), "running deploy/canary");
    j.push(rec("t1", finished("deploy", "canary", StepStatus::Failed)));
    let pos = standing(&j, None);
    assert_eq!(
        describe(&pos, Some("alice"), false),
        "deploy/canary failed; waiting for alice: retry, skip or roll back"
    );
    j.push(rec(
        "t2",
        Event::TriggerFired {
            trigger: "errors".into(),
            value: Some(0.5),
            reason: None,
            labels: None,
        },
    ));
    j.push(rec(
        "t3",
        Event::RollbackStarted {
            reason: "trigger:errors".into(),
            operator: None,
            note: None,
        },
    ));
    j.push(rec(
        "t4",
        Event::StepStarted {
            phase: "undo".into(),
            step: "revert".into(),
            attempt: 1,
            rollback: true,
        },
    ));
    let pos = standing(&j, None);
    assert_eq!(
        describe(&pos, Some("alice"), true),
        "driver gone (stale lock) — was rolling back (trigger:errors): running undo/revert"
    );
    j.push(rec(
        "t5",
        Event::RunFinished {
            outcome: Outcome::RolledBack,
            exit_code: 3,
            reason: None,
        },
    ));
    assert_eq!(describe(&standing(&j, None), None, false), "rolled back");
}

#[test]
fn a_firing_trigger_holds_until_acknowledged() {
    let mut j = vec![
        rec("t0", finished("deploy", "canary", StepStatus::Succeeded)),
        rec(
            "t1",
            Event::TriggerFired {
                trigger: "errors".into(),
                value: None,
                reason: None,
                labels: None,
            },
        ),
    ];
    assert_eq!(
        describe(&standing(&j, None), Some("bob"), false),
        "held: errors firing; waiting for bob: acknowledge or roll back"
    );
    j.push(rec(
        "t2",
        Event::TriggerAcknowledged {
            trigger: "errors".into(),
            value: None,
            operator: None,
        },
    ));
    assert_eq!(
        describe(&standing(&j, None), Some("bob"), false),
        "after deploy/canary"
    );
}
