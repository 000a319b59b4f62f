//! Team events in words (`approval`, `handover`), for the front ends' logs and the report.

use super::Event;

/// A team event in words, for the front ends' logs and the report's timeline.
pub fn describe(event: &crate::journal::Event) -> Option<String> {
    match event {
        Event::Approval {
            phase,
            step,
            rollback,
            operator,
            from,
            simulated,
            ..
        } => {
            let prefix = if *rollback { "rollback " } else { "" };
            Some(if *simulated {
                format!("{prefix}{phase}/{step} approved by {operator} (simulated: a rehearsal)")
            } else {
                format!(
                    "{prefix}{phase}/{step} approved by {operator} from {}",
                    from.describe()
                )
            })
        }
        Event::Handover {
            from,
            to,
            reason,
            consent,
            ..
        } => Some(if *consent {
            format!("{from} handed the run over to {to}: {reason}")
        } else {
            format!("{to} took the run over from {from} (its driver was gone): {reason}")
        }),
        _ => None,
    }
}
