//! `runbook backtest FILE --since 7d` (SPEC §7): every metric trigger of a runbook replayed over
//! Prometheus history, through the very trigger state machine a run uses (`metrics::triggers`),
//! fed one reading per `[metrics] interval` from range queries (`metrics::history`).
//!
//! It answers "would this trigger have rolled back last week's healthy deploys?": per trigger,
//! every episode in which it would have gone pending or fired (start, end, peak, fired or not),
//! how often it would have fired per day, and the metric's sparkline against its threshold.
//!
//! The history streams through one chunk at a time; what is kept is the episodes, one count per
//! day and a fixed number of sparkline buckets, so memory does not grow with the window.
//! `Replay` is the pure part (readings in, episodes out); `run` reads the history and returns the
//! report, or why it cannot backtest (an invalid runbook, no Prometheus, a failed query), for
//! `cli` to print.

mod render;
mod replay;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::metrics::history::History;
use crate::runbook::{MetricSource, Trigger, TriggerKind};
pub use render::{Window, json, sparkline, text};
pub use replay::{Episode, Outcome, Replay, SPARK_WIDTH};

const DAY_MS: i64 = 24 * 3600 * 1000;

fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// `YYYY-MM-DD` (UTC) of a time in ms.
fn day(ms: i64) -> String {
    humantime::format_rfc3339_seconds(system_time(ms)).to_string()[..10].to_string()
}

/// `YYYY-MM-DD HH:MM:SS` (UTC).
fn when(ms: i64) -> String {
    humantime::format_rfc3339_seconds(system_time(ms))
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// RFC 3339 (UTC, seconds) for JSON.
fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_seconds(system_time(ms)).to_string()
}

/// A point in time given on the command line: RFC 3339 (`2026-11-22T10:00:00Z`, or a date), Unix
/// seconds, `now`, or a duration meaning that long before `now`.
pub fn parse_time(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let t = text.trim();
    if t == "now" {
        return Ok(now);
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs(secs));
    }
    if let Ok(at) = humantime::parse_rfc3339_weak(t) {
        return Ok(at);
    }
    if t.len() == 10
        && let Ok(at) = humantime::parse_rfc3339_weak(&format!("{t} 00:00:00"))
    {
        return Ok(at);
    }
    match crate::duration::parse_duration(t) {
        Ok(d) => Ok(now.checked_sub(d).unwrap_or(UNIX_EPOCH)),
        Err(_) => Err(format!(
            "`{t}` is not a time: give RFC 3339 (2026-11-22T10:00:00Z), a date (2026-11-22), Unix seconds, or a duration ago (2h)"
        )),
    }
}

/// What was asked on the command line.
pub struct Request<'a> {
    pub file: &'a Path,
    pub vars: &'a [(String, String)],
    /// `--since`: a duration before `until`, or a time.
    pub since: &'a str,
    pub until: Option<&'a str>,
    pub prometheus: Option<String>,
    pub json: bool,
}

/// A trigger that is not replayed, and why.
pub struct Skipped {
    pub trigger: String,
    pub why: String,
}

/// `runbook backtest`: the report to print, or why it could not run (the text for stderr; the
/// command exits 2).
pub fn run(req: Request) -> Result<String, String> {
    let rb = match crate::runbook::load(req.file, req.vars) {
        Ok(rb) => rb,
        Err(e @ crate::runbook::LoadError::Invalid { .. }) => {
            return Err(e.render());
        }
        Err(e) => {
            return Err(format!("runbook: {}", e.render()));
        }
    };
    let file = req.file.display();
    let now = SystemTime::now();
    let until = match req.until.map(|u| parse_time(u, now)).transpose() {
        Ok(u) => u.unwrap_or(now),
        Err(e) => {
            return Err(format!("runbook: --until: {e}") + "\n");
        }
    };
    let since = match crate::duration::parse_duration(req.since) {
        Ok(d) => until.checked_sub(d).unwrap_or(UNIX_EPOCH),
        // A duration, only too long: say so, not that it is no time.
        Err(e) if humantime::parse_duration(req.since.trim()).is_ok() => {
            return Err(format!("runbook: --since: {e}\n"));
        }
        Err(_) => match parse_time(req.since, now) {
            Ok(at) => at,
            Err(e) => {
                return Err(format!("runbook: --since: {e}") + "\n");
            }
        },
    };
    let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let step_ms = (rb.metrics.interval.as_millis() as i64).max(1);
    // Evaluations on multiples of the step, so that the same window always gives the same answer.
    let start_ms = ms(since).div_euclid(step_ms) * step_ms;
    let end_ms = ms(until);
    if end_ms <= start_ms {
        return Err(format!(
            "runbook: the window is empty: --since {} is not before --until {}",
            rfc3339(start_ms),
            rfc3339(end_ms)
        ) + "\n");
    }
    let Some(base) = req.prometheus.clone().or_else(|| rb.metrics.url.clone()) else {
        return Err(format!(
            "runbook: {file}: its metrics have no Prometheus ([metrics] url), and backtest replays Prometheus history: give --prometheus URL"
        ) + "\n");
    };
    let secrets = match crate::secrets::Secrets::resolve(&rb) {
        Ok(s) => s,
        Err(errors) if rb.metrics.headers.iter().any(|(_, v)| v.contains("${")) => {
            return Err(errors
                .iter()
                .map(|e| format!("runbook: {file}: {}\n", e.message))
                .collect());
        }
        Err(_) => crate::secrets::Secrets { values: Vec::new() },
    };
    let headers: Vec<(String, String)> = rb
        .metrics
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), secrets.expand(v)))
        .collect();

    // Which triggers can be replayed, grouped by metric so that each is read once.
    let mut skipped = Vec::new();
    let mut by_metric: Vec<(usize, Vec<&Trigger>)> = Vec::new();
    for t in &rb.triggers {
        let why = match &t.kind {
            TriggerKind::Metric { metric, .. } => {
                let Some(mi) = rb.metric.iter().position(|m| &m.id == metric) else {
                    continue;
                };
                match &rb.metric[mi].source {
                    MetricSource::Query(_) => {
                        match by_metric.iter_mut().find(|(i, _)| *i == mi) {
                            Some((_, ts)) => ts.push(t),
                            None => by_metric.push((mi, vec![t])),
                        }
                        continue;
                    }
                    MetricSource::Command(_) => {
                        format!("metric `{metric}` comes from a command, which keeps no history")
                    }
                }
            }
            TriggerKind::Check { .. } => "a check trigger runs a command, which keeps no history".into(),
            TriggerKind::Manual => "raised by the operator".into(),
            TriggerKind::Alert(a) => format!(
                "follows alert {}, whose rule decides: Prometheus' ALERTS series has its history",
                a.alert
            ),
        };
        skipped.push(Skipped {
            trigger: t.id.clone(),
            why,
        });
    }
    if by_metric.is_empty() {
        let mut msg =
            format!("runbook: {file}: no metric trigger watches a Prometheus query: nothing to backtest\n");
        for s in &skipped {
            msg.push_str(&format!("  {}: {}\n", s.trigger, s.why));
        }
        return Err(msg);
    }

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            return Err(format!("runbook: cannot start: {e}") + "\n");
        }
    };
    let client = crate::metrics::prometheus::client(Duration::from_secs(60));
    let result: Result<Vec<Outcome>, String> = runtime.block_on(async {
        let mut outcomes = Vec::new();
        for (mi, triggers) in &by_metric {
            let m = &rb.metric[*mi];
            let MetricSource::Query(query) = &m.source else {
                continue;
            };
            let history = History {
                client: client.clone(),
                base: base.clone(),
                query: query.clone(),
                headers: headers.clone(),
                start_ms,
                end_ms,
                step_ms,
            };
            let mut replays: Vec<Replay> = triggers
                .iter()
                .filter_map(|t| Replay::new(t, start_ms, end_ms))
                .collect();
            for (from, to) in history.chunks() {
                let chunk = history
                    .read(from, to)
                    .await
                    .map_err(|e| format!("metric `{}`, {} to {}: {e}", m.id, rfc3339(from), rfc3339(to)))?;
                for (t, reading) in &chunk {
                    for r in &mut replays {
                        r.feed(*t, reading);
                    }
                }
            }
            for (r, t) in replays.into_iter().zip(triggers) {
                outcomes.push(r.finish(t, m.unit));
            }
        }
        Ok(outcomes)
    });
    let outcomes = match result {
        Ok(o) => o,
        Err(e) => {
            return Err(format!("runbook: backtest stopped: {}", secrets.redactor().redact_str(&e)) + "\n");
        }
    };
    let window = Window {
        start_ms,
        end_ms,
        step: rb.metrics.interval,
        prometheus: secrets.redactor().redact_str(&base),
    };
    Ok(if req.json {
        json(&file.to_string(), &window, &outcomes, &skipped) + "\n"
    } else {
        text(&file.to_string(), &window, &outcomes, &skipped)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Reading;
    use crate::runbook::{OnNoData, Threshold, Unit};

    fn trigger(for_: Duration) -> Trigger {
        Trigger {
            id: "t".into(),
            title: "T".into(),
            kind: TriggerKind::Metric {
                metric: "m".into(),
                threshold: Threshold::Above(5.0),
                for_,
                on_no_data: OnNoData::Warn,
            },
            armed_from: Some("later".into()),
            auto_rollback: None,
        }
    }

    #[test]
    fn episodes_follow_the_run_s_trigger_logic() {
        const S: i64 = 15_000;
        let t = trigger(Duration::from_secs(60));
        let mut r = Replay::new(&t, 0, 100 * S).unwrap();
        // 0..3 ok; 4..7 breached (45 s: pending, not fired); 8 ok; 9..15 breached (fires at 13);
        // 16 a failed query (kept); 17..18 breached; 19 no data (fired: stays); 20 ok;
        // 21..22 breached, 23 no data (ends the window), 24.. breached to the end.
        let mut readings = Vec::new();
        for i in 0..=100 {
            let r = match i {
                4..=7 | 9..=15 | 17..=18 | 21..=22 | 24.. => Reading::Value(6.0 + (i % 3) as f64),
                16 => Reading::Error("HTTP 503".into()),
                19 | 23 => Reading::NoData,
                _ => Reading::Value(1.0),
            };
            readings.push(r);
        }
        for (i, reading) in readings.iter().enumerate() {
            r.feed(i as i64 * S, reading);
        }
        let o = r.finish(&t, Unit::Number);
        let ep = |s: i64, e: Option<i64>, peak: f64, fired: Option<i64>| Episode {
            start_ms: s * S,
            end_ms: e.map(|e| e * S),
            peak: Some(peak),
            fired_ms: fired.map(|f| f * S),
        };
        assert_eq!(
            o.episodes,
            vec![
                ep(4, Some(8), 8.0, None),
                ep(9, Some(20), 8.0, Some(13)),
                ep(21, Some(23), 7.0, None),
                ep(24, None, 8.0, Some(28)),
            ]
        );
        assert_eq!((o.samples, o.no_data, o.errors), (101, 2, 1));
        assert_eq!(o.fires_per_day, vec![("1970-01-01".to_string(), 2)]);
    }

    #[test]
    fn times_on_the_command_line() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("2h", now), Ok(now - Duration::from_secs(7200)));
        assert_eq!(
            parse_time("2026-11-22T10:00:00Z", now),
            Ok(UNIX_EPOCH + Duration::from_secs(1_795_341_600))
        );
        assert_eq!(
            parse_time("2026-11-22", now),
            Ok(UNIX_EPOCH + Duration::from_secs(1_795_305_600))
        );
        assert!(parse_time("last tuesday", now).unwrap_err().contains("RFC 3339"));
    }
}
