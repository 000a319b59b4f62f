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

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::duration::format_duration;
use crate::metrics::Reading;
use crate::metrics::history::History;
use crate::metrics::triggers::{State, Transition, Watched};
use crate::runbook::{MetricSource, Threshold, Trigger, TriggerKind, Unit};

/// Sparkline buckets: fits 80 columns with its indent.
pub const SPARK_WIDTH: usize = 72;

/// One stretch of time in which the trigger was pending or firing.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// The first evaluation that saw it pending (or firing), ms since the epoch.
    pub start_ms: i64,
    /// The evaluation at which it went back to ok, or lost its pending window to a gap in the
    /// data; `None` when it was still pending or firing at the end of the window.
    pub end_ms: Option<i64>,
    /// The worst value seen while it lasted (highest for `above`, lowest for `below`).
    pub peak: Option<f64>,
    /// When it would have fired.
    pub fired_ms: Option<i64>,
}

/// What a trigger would have done over the window.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub trigger: String,
    pub title: String,
    pub metric: String,
    pub unit: Unit,
    pub threshold: Threshold,
    pub for_: Duration,
    pub episodes: Vec<Episode>,
    /// Fires per UTC day (`YYYY-MM-DD`), every day of the window listed.
    pub fires_per_day: Vec<(String, u32)>,
    pub samples: u64,
    pub no_data: u64,
    pub errors: u64,
    /// The worst value in each of `SPARK_WIDTH` equal slices of the window.
    pub spark: Vec<Option<f64>>,
}

/// A trigger replayed over history: readings in, in time order; episodes out.
pub struct Replay {
    watched: Watched,
    threshold: Threshold,
    /// The run's clock: `origin` is the window's first evaluation.
    origin: Instant,
    start_ms: i64,
    end_ms: i64,
    open: Option<Episode>,
    episodes: Vec<Episode>,
    fires: BTreeMap<String, u32>,
    samples: u64,
    no_data: u64,
    errors: u64,
    spark: Vec<Option<f64>>,
}

impl Replay {
    /// `None` for a trigger that is not a metric trigger.
    pub fn new(t: &Trigger, start_ms: i64, end_ms: i64) -> Option<Replay> {
        let TriggerKind::Metric { threshold, .. } = &t.kind else {
            return None;
        };
        let mut watched = Watched::new(t, 1.0);
        // History has no phases: a trigger armed from one is watched all along.
        watched.arm();
        Some(Replay {
            watched,
            threshold: *threshold,
            origin: Instant::now(),
            start_ms,
            end_ms,
            open: None,
            episodes: Vec::new(),
            fires: BTreeMap::new(),
            samples: 0,
            no_data: 0,
            errors: 0,
            spark: vec![None; SPARK_WIDTH],
        })
    }

    fn breached(&self, v: f64) -> bool {
        match self.threshold {
            Threshold::Above(t) => v > t,
            Threshold::Below(t) => v < t,
        }
    }

    fn worse(&self, a: Option<f64>, b: f64) -> f64 {
        match (a, self.threshold) {
            (None, _) => b,
            (Some(a), Threshold::Above(_)) => a.max(b),
            (Some(a), Threshold::Below(_)) => a.min(b),
        }
    }

    /// The evaluation at `t_ms` read `reading`.
    pub fn feed(&mut self, t_ms: i64, reading: &Reading) {
        self.samples += 1;
        match reading {
            Reading::Value(v) => {
                let span = (self.end_ms - self.start_ms + 1).max(1) as i128;
                let i = ((t_ms - self.start_ms).max(0) as i128 * SPARK_WIDTH as i128 / span) as usize;
                let i = i.min(SPARK_WIDTH - 1);
                self.spark[i] = Some(self.worse(self.spark[i], *v));
            }
            Reading::NoData => self.no_data += 1,
            Reading::Error(_) => self.errors += 1,
        }
        let now = self.origin + Duration::from_millis((t_ms - self.start_ms).max(0) as u64);
        match self.watched.observe(now, reading) {
            Some(Transition::Pending { value }) => {
                if self.open.is_none() {
                    self.open = Some(Episode {
                        start_ms: t_ms,
                        end_ms: None,
                        peak: Some(value),
                        fired_ms: None,
                    });
                }
            }
            Some(Transition::Fired { value, .. }) => {
                let e = self.open.get_or_insert(Episode {
                    start_ms: t_ms,
                    end_ms: None,
                    peak: value,
                    fired_ms: None,
                });
                e.fired_ms.get_or_insert(t_ms);
                *self.fires.entry(day(t_ms)).or_default() += 1;
            }
            Some(Transition::Cleared { .. }) => self.close(t_ms),
            // An empty answer ends a pending window (a failed query keeps it).
            Some(Transition::Unknown { .. }) if self.watched.state == (State::Unknown { pending: None }) => {
                if self.open.as_ref().is_some_and(|e| e.fired_ms.is_none()) {
                    self.close(t_ms);
                }
            }
            Some(Transition::Unknown { .. } | Transition::DataLost { .. }) | None => {}
        }
        if let (Reading::Value(v), true) = (reading, self.open.is_some())
            && self.breached(*v)
        {
            let peak = self.open.as_ref().and_then(|e| e.peak);
            let worse = self.worse(peak, *v);
            if let Some(e) = self.open.as_mut() {
                e.peak = Some(worse);
            }
        }
    }

    fn close(&mut self, t_ms: i64) {
        if let Some(mut e) = self.open.take() {
            e.end_ms = Some(t_ms);
            self.episodes.push(e);
        }
    }

    /// The result, with every day of the window in `fires_per_day`.
    pub fn finish(mut self, t: &Trigger, unit: Unit) -> Outcome {
        if let Some(e) = self.open.take() {
            self.episodes.push(e);
        }
        let mut fires_per_day = Vec::new();
        let mut d = self.start_ms.div_euclid(DAY_MS) * DAY_MS;
        while d <= self.end_ms {
            let name = day(d);
            let n = self.fires.get(&name).copied().unwrap_or(0);
            fires_per_day.push((name, n));
            d += DAY_MS;
        }
        let (metric, for_) = match &t.kind {
            TriggerKind::Metric { metric, for_, .. } => (metric.clone(), *for_),
            _ => (String::new(), Duration::ZERO),
        };
        Outcome {
            trigger: t.id.clone(),
            title: t.title.clone(),
            metric,
            unit,
            threshold: self.threshold,
            for_,
            episodes: self.episodes,
            fires_per_day,
            samples: self.samples,
            no_data: self.no_data,
            errors: self.errors,
            spark: self.spark,
        }
    }
}

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

/// The window replayed.
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
    pub step: Duration,
    pub prometheus: String,
}

fn threshold_text(t: Threshold, unit: Unit) -> String {
    match t {
        Threshold::Above(v) => format!("above {}", unit.format(v)),
        Threshold::Below(v) => format!("below {}", unit.format(v)),
    }
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The sparkline, the row marking slices that breached the threshold, and the scale.
pub fn sparkline(o: &Outcome) -> (String, String, String) {
    let t = match o.threshold {
        Threshold::Above(v) | Threshold::Below(v) => v,
    };
    let values = o.spark.iter().flatten().copied();
    let lo = values.clone().fold(t, f64::min);
    let hi = values.fold(t, f64::max);
    let level = |v: f64| -> usize {
        if hi > lo {
            (((v - lo) / (hi - lo)) * 7.0).round().clamp(0.0, 7.0) as usize
        } else {
            0
        }
    };
    let line: String = o
        .spark
        .iter()
        .map(|v| v.map_or(' ', |v| BARS[level(v)]))
        .collect();
    let marks: String = o
        .spark
        .iter()
        .map(|v| match (v, o.threshold) {
            (Some(v), Threshold::Above(t)) if *v > t => '^',
            (Some(v), Threshold::Below(t)) if *v < t => '^',
            _ => ' ',
        })
        .collect();
    let scale = format!(
        "scale {} to {}; the threshold {} is {}; ^ breached; blank: no data",
        o.unit.format(lo),
        o.unit.format(hi),
        o.unit.format(t),
        BARS[level(t)]
    );
    (line, marks.trim_end().to_string(), scale)
}

/// The report as people read it, 80 columns wide.
pub fn text(file: &str, w: &Window, outcomes: &[Outcome], skipped: &[Skipped]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "Backtest of {file}");
    let _ = writeln!(
        s,
        "  {} to {} UTC, every {}",
        when(w.start_ms),
        when(w.end_ms),
        format_duration(w.step)
    );
    let _ = writeln!(s, "  from Prometheus {}", w.prometheus);
    for o in outcomes {
        let fired = o.episodes.iter().filter(|e| e.fired_ms.is_some()).count();
        let _ = writeln!(s, "\n{}: {}", o.trigger, o.title);
        let for_ = if o.for_.is_zero() {
            String::new()
        } else {
            format!(" for {}", format_duration(o.for_))
        };
        let _ = writeln!(
            s,
            "  {} {}{for_} — {} evaluations, {} without data, {} failed",
            o.metric,
            threshold_text(o.threshold, o.unit),
            o.samples,
            o.no_data,
            o.errors
        );
        let _ = writeln!(
            s,
            "  {} episode{}, {fired} would have fired",
            o.episodes.len(),
            if o.episodes.len() == 1 { "" } else { "s" }
        );
        if !o.episodes.is_empty() {
            let _ = writeln!(
                s,
                "  {:<19}  {:<19}  {:>7}  {:>8}  fired",
                "start (UTC)", "end", "lasted", "peak"
            );
        }
        for e in &o.episodes {
            let (end, lasted) = match e.end_ms {
                Some(end) => (
                    when(end),
                    format_duration(Duration::from_millis((end - e.start_ms).max(0) as u64)),
                ),
                None => ("(still at the end)".to_string(), "-".to_string()),
            };
            let peak = e.peak.map_or("-".to_string(), |p| o.unit.format(p));
            let fired = match e.fired_ms {
                Some(f) => format!("at {}", &when(f)[11..]),
                None => "no".to_string(),
            };
            let _ = writeln!(
                s,
                "  {:<19}  {:<19}  {lasted:>7}  {peak:>8}  {fired}",
                when(e.start_ms),
                end
            );
        }
        let days: Vec<String> = o
            .fires_per_day
            .iter()
            .map(|(d, n)| format!("{} {n}", &d[5..]))
            .collect();
        let total: u32 = o.fires_per_day.iter().map(|(_, n)| n).sum();
        let span_days = ((w.end_ms - w.start_ms) as f64 / DAY_MS as f64).max(1e-9);
        let _ = writeln!(
            s,
            "  fires per day ({:.1} a day on average):",
            f64::from(total) / span_days
        );
        for row in days.chunks(6) {
            let _ = writeln!(s, "    {}", row.join(" · "));
        }
        let (line, marks, scale) = sparkline(o);
        let _ = writeln!(s, "  {line}");
        if !marks.is_empty() {
            let _ = writeln!(s, "  {marks}");
        }
        let _ = writeln!(s, "  {scale}");
    }
    if !skipped.is_empty() {
        let _ = writeln!(s, "\nNot backtested:");
        for k in skipped {
            let _ = writeln!(s, "  {}: {}", k.trigger, k.why);
        }
    }
    s
}

/// The report as JSON: one object, times in RFC 3339 (UTC).
pub fn json(file: &str, w: &Window, outcomes: &[Outcome], skipped: &[Skipped]) -> String {
    use serde_json::json;
    let triggers: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| {
            let threshold = match o.threshold {
                Threshold::Above(v) => json!({ "above": v }),
                Threshold::Below(v) => json!({ "below": v }),
            };
            let episodes: Vec<serde_json::Value> = o
                .episodes
                .iter()
                .map(|e| {
                    json!({
                        "start": rfc3339(e.start_ms),
                        "end": e.end_ms.map(rfc3339),
                        "peak": e.peak,
                        "fired": e.fired_ms.is_some(),
                        "fired_at": e.fired_ms.map(rfc3339),
                    })
                })
                .collect();
            let days: Vec<serde_json::Value> = o
                .fires_per_day
                .iter()
                .map(|(d, n)| json!({ "day": d, "fires": n }))
                .collect();
            json!({
                "trigger": o.trigger,
                "title": o.title,
                "metric": o.metric,
                "unit": o.unit.as_str(),
                "threshold": threshold,
                "for_seconds": o.for_.as_secs_f64(),
                "evaluations": o.samples,
                "no_data": o.no_data,
                "failed": o.errors,
                "episodes": episodes,
                "fires": o.episodes.iter().filter(|e| e.fired_ms.is_some()).count(),
                "fires_per_day": days,
                "sparkline": o.spark,
            })
        })
        .collect();
    let skipped: Vec<serde_json::Value> = skipped
        .iter()
        .map(|k| json!({ "trigger": k.trigger, "why": k.why }))
        .collect();
    json!({
        "file": file,
        "prometheus": w.prometheus,
        "start": rfc3339(w.start_ms),
        "end": rfc3339(w.end_ms),
        "step_seconds": w.step.as_secs_f64(),
        "triggers": triggers,
        "not_backtested": skipped,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::OnNoData;

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
