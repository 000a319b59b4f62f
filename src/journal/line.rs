//! One journal line into a `Record`, quickly. The writer starts every line with
//! `{"ts":"<RFC 3339>","event":…`: the time is taken from there as it is, and the event read from
//! the whole line (its own fields; `ts` is not one of them, so it is passed over). Read through
//! `Record`'s derived `Deserialize` instead, the line is buffered twice (the flattened event, then
//! its tag) — most of what reading a long journal costs; `metrics_sampled`, most of the lines, is
//! read straight into its fields. Anything else (another order, an escape in the time, an event
//! that cannot be read) goes the derived way, which says what is wrong.

use std::collections::BTreeMap;

use super::{Event, Record};

/// `metrics_sampled`'s fields, as `Event::MetricsSampled` has them: most lines of a long journal
/// are one (every metric, every poll), and read as this struct they are not buffered at all.
#[derive(serde::Deserialize)]
struct Sampled {
    values: BTreeMap<String, Option<f64>>,
    #[serde(default)]
    errors: BTreeMap<String, String>,
}

/// The record on `line` (one JSON object, without its newline).
pub fn record(line: &str) -> serde_json::Result<Record> {
    if let Some(rest) = line.strip_prefix("{\"ts\":\"")
        && let Some(end) = rest.find(['"', '\\'])
        && rest[end..].starts_with("\",")
    {
        let ts = &rest[..end];
        let event = if rest[end..].starts_with("\",\"event\":\"metrics_sampled\",") {
            serde_json::from_str::<Sampled>(line)
                .ok()
                .map(|s| Event::MetricsSampled {
                    values: s.values,
                    errors: s.errors,
                })
        } else {
            serde_json::from_str::<Event>(line).ok()
        };
        if let Some(event) = event {
            return Ok(Record {
                ts: ts.to_string(),
                event,
            });
        }
    }
    serde_json::from_str::<Record>(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_way_reads_what_the_derived_way_reads() {
        let lines = [
            r#"{"ts":"2026-11-26T21:00:00.000Z","event":"note","text":"hi \"there\"","operator":"alice"}"#,
            r#"{"ts":"2026-11-26T21:00:01.000Z","event":"metrics_sampled","values":{"a":1.5,"b":null}}"#,
            r#"{"ts":"2026-11-26T21:00:01.500Z","event":"metrics_sampled","values":{"a":0.1234567890123,"b":null},"errors":{"b":"no data"}}"#,
            r#"{"ts":"2026-11-26T21:00:01.700Z","event":"metrics_sampled","values":{}}"#,
            r#"{"event":"note","ts":"2026-11-26T21:00:02.000Z","text":"order","operator":"bob"}"#,
            r#"{"ts":"2026-11-26T21:00:03\u002e000Z","event":"note","text":"escaped","operator":"bob"}"#,
            r#"{"ts":"2026-11-26T21:00:04.000Z","event":"rollback_started","reason":"operator"}"#,
        ];
        for line in lines {
            let quick = record(line).expect(line);
            let derived: Record = serde_json::from_str(line).expect(line);
            assert_eq!(quick, derived, "{line}");
        }
        assert_eq!(
            record(r#"{"ts":"2026-11-26T21:00:03\u002e000Z","event":"note","text":"x","operator":"b"}"#)
                .expect("escaped time")
                .ts,
            "2026-11-26T21:00:03.000Z"
        );
        // What cannot be read is refused as the derived way refuses it.
        for bad in [
            r#"{"ts":"2026-11-26T21:00:00.000Z","event":"no_such_event"}"#,
            r#"{"ts":"2026-11-26T21:00:00.000Z","event":"note"}"#,
            r#"{"ts":"2026-11-26T21:00:00.000Z"}"#,
            r#"{"ts":"2026-11-26T21:00:00.000Z","event":"metrics_sampled","errors":{}}"#,
            r#"{"ts":"2026-11-26T21:00:00.000Z","event":"metrics_sampled","values":{"a":"high"}}"#,
        ] {
            let quick = record(bad).expect_err(bad).to_string();
            let derived = serde_json::from_str::<Record>(bad).expect_err(bad).to_string();
            assert_eq!(quick, derived, "{bad}");
        }
    }
}
