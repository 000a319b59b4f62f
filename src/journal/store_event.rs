//! The shared store's events (SPEC §9) in words, for the screen, the headless lines and the
//! report: the store behind or caught up, the lease unconfirmed, lost, renewed or taken by a newer
//! driver.

use super::Event;

/// `512 B`, `12.3 KB`, `4.5 MB`.
pub fn bytes(n: u64) -> String {
    match n {
        n if n < 1000 => format!("{n} B"),
        n if n < 1_000_000 => format!("{:.1} KB", n as f64 / 1e3),
        n => format!("{:.1} MB", n as f64 / 1e6),
    }
}

/// `13:18:59 UTC` of an RFC 3339 time (the journal keeps the whole of it).
fn time_of(ts: &str) -> String {
    match ts.get(11..19) {
        Some(t) if ts.ends_with('Z') => format!("{t} UTC"),
        _ => ts.to_string(),
    }
}

/// A store event in words, for the screen, the headless lines and the report.
pub fn describe(e: &Event) -> Option<String> {
    Some(match e {
        Event::StoreBehind {
            since,
            events,
            bytes: b,
            error,
        } => format!(
            "the shared store cannot be written since {} ({error}); the run goes on, \
             {events} event{} and {} wait in the local files",
            time_of(since),
            if *events == 1 { "" } else { "s" },
            bytes(*b)
        ),
        Event::StoreCaughtUp { behind_ms } => format!(
            "the shared store has caught up (it was behind for {})",
            crate::duration::format_duration(std::time::Duration::from_millis(*behind_ms))
        ),
        Event::StoreLeaseUnconfirmed { since, expires } => format!(
            "the shared store has not confirmed this run's lease since {}; it expires at {} unless renewed: \
             no new step starts until it is renewed (a step in flight goes on)",
            time_of(since),
            time_of(expires)
        ),
        Event::StoreLeaseLost { expired } => format!(
            "this run's lease in the shared store expired at {} without renewal: no new step starts until it is renewed",
            time_of(expired)
        ),
        Event::StoreLeaseRenewed { epoch } => {
            format!("this run's lease in the shared store is renewed (epoch {epoch}): steps may start again")
        }
        Event::StoreFenced { by, epoch } => {
            format!(
                "{by} took over this run in the shared store (epoch {epoch}): this runbook starts nothing more"
            )
        }
        _ => return None,
    })
}
