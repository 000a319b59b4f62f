//! A backtest's report as the operator reads it (text, with sparklines against the threshold) and as
//! a program reads it (JSON). Rendering only: what to show comes from `replay`.

use std::time::Duration;

use super::replay::Outcome;
use super::{DAY_MS, Skipped, rfc3339, when};
use crate::duration::format_duration;
use crate::runbook::{Threshold, Unit};

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
