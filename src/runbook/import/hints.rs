//! The `# automate:` suggestions: what a step's or a trigger's own words say a machine could do (a
//! duration to watch, a comparison and a threshold). Nothing is guessed from a keyword alone.

use std::fmt::Write as _;

use super::*;

pub(super) const SEE_FORMAT: &str = "see the runbook format in README.md";

/// Lowercase words of `text`.
pub(super) fn words_of(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

pub(super) fn has_prefix(words: &[String], prefixes: &[&str]) -> bool {
    words.iter().any(|w| prefixes.iter().any(|p| w.starts_with(p)))
}

/// "for 15 minutes" → "15m"; "(24 hours)" → "24h".
pub(super) fn duration_in(text: &str) -> Option<String> {
    durations_in(text).into_iter().next().map(|(_, d)| d)
}

/// The window of a trigger: the duration after "for" ("exceeds 1% for 5 minutes" → "5m").
pub(super) fn window_in(text: &str) -> Option<String> {
    let words = words_of(text);
    durations_in(text)
        .into_iter()
        .find(|(i, _)| *i > 0 && matches!(words[*i - 1].as_str(), "for" | "during" | "lasting"))
        .map(|(_, d)| d)
}

/// Every duration written in `text`, with the index (in `words_of`) of its number.
pub(super) fn durations_in(text: &str) -> Vec<(usize, String)> {
    let words = words_of(text);
    let unit_of = |u: &str| match u {
        "s" | "sec" | "secs" | "second" | "seconds" => Some("s"),
        "m" | "min" | "mins" | "minute" | "minutes" => Some("m"),
        "h" | "hr" | "hrs" | "hour" | "hours" => Some("h"),
        "d" | "day" | "days" => Some("d"),
        _ => None,
    };
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let digits = w.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            continue;
        }
        let (n, rest) = w.split_at(digits);
        let Ok(n) = n.parse::<u64>() else { continue };
        // "15 minutes", or "15m" written together
        let unit = if rest.is_empty() {
            words.get(i + 1).and_then(|u| unit_of(u))
        } else {
            unit_of(rest)
        };
        match unit {
            Some(_) if n == 0 => {}
            Some("d") => out.push((i, format!("{}h", n * 24))),
            Some(u) => out.push((i, format!("{n}{u}"))),
            None => {}
        }
    }
    out
}

/// The `# automate:` comment for a step, where its own words say what a machine could do: a
/// duration to watch ("Monitor error rates for 15 minutes"), a migration that may not be undone.
/// Nothing is guessed from a keyword alone: a step whose words name no duration or command gets
/// no suggestion. `phase_watch` is the phase title's duration ("Monitoring (24 hours)"), offered
/// once per phase.
pub(super) fn step_hint(title: &str, phase_watch: &mut Option<String>) -> Option<String> {
    let w = words_of(title);
    let is_watch = has_prefix(&w, &["monitor", "watch", "observe", "wait"]);
    if is_watch && let Some(d) = duration_in(title) {
        return Some(format!(
            "automate: a watch step (watch = \"{d}\": waits with the triggers watched, passes if none \
             fires); {SEE_FORMAT}"
        ));
    }
    if is_watch
        && matches!(w.first().map(String::as_str), Some(v) if ["monitor", "watch", "observe"].contains(&v))
        && let Some(d) = phase_watch.take()
    {
        return Some(format!(
            "automate: one watch step for the whole phase (watch = \"{d}\": waits with the triggers \
             watched, passes if none fires); {SEE_FORMAT}"
        ));
    }
    let first = w.first().map_or("", String::as_str);
    if ["apply", "run", "execute", "perform"].contains(&first) && has_prefix(&w, &["migrat"]) {
        return Some(format!(
            "automate: a migration: if it cannot be undone, mark its step irreversible = true; \
             {SEE_FORMAT}"
        ));
    }
    None
}

pub(super) const ABOVE: &[&str] = &["exceeds", "exceed", "above", "over", "greater", "higher", "more"];
pub(super) const BELOW: &[&str] = &["below", "under", "less", "lower", "drops", "falls"];

/// What a trigger measures: its words before the comparison ("Error rate exceeds 1%" → "Error
/// rate", "Latency > 2s" → "Latency"), or all of them.
pub(super) fn measured(title: &str) -> String {
    let mut end = title.find(['>', '<']).unwrap_or(title.len());
    let mut word_start = None;
    for (i, c) in title.char_indices() {
        if c.is_alphanumeric() {
            word_start.get_or_insert(i);
            continue;
        }
        if let Some(st) = word_start.take() {
            let w = title[st..i].to_lowercase();
            if ABOVE.contains(&w.as_str()) || BELOW.contains(&w.as_str()) {
                end = end.min(st);
                break;
            }
        }
    }
    let before = title[..end].trim();
    if derive_id(before).is_empty() {
        title.to_string()
    } else {
        before.to_string()
    }
}

/// The `# automate:` comment for an operator-raised trigger whose words give a comparison and a
/// threshold ("Error rate exceeds 1% for 5 minutes"). A comparison in parentheses qualifies
/// something else ("Performance slightly degraded (< 5%)") and suggests nothing.
pub(super) fn trigger_hint(title: &str) -> Option<String> {
    let outside = outside_parentheses(title);
    let w = words_of(&outside);
    let comparison = w
        .iter()
        .position(|x| ABOVE.contains(&x.as_str()) || BELOW.contains(&x.as_str()));
    let symbolic = outside.find(['>', '<']);
    if comparison.is_none() && symbolic.is_none() {
        return None;
    }
    let below = match (comparison, symbolic) {
        (_, Some(at)) => outside[at..].starts_with('<'),
        (Some(i), None) => BELOW.contains(&w[i].as_str()),
        (None, None) => false,
    };
    let threshold = threshold_in(&outside)?;
    let metric = derive_id(&measured(&outside)).replace('-', "_");
    let metric = if metric.is_empty() || metric.len() > 32 {
        "my_metric".to_string()
    } else {
        metric
    };
    let dir = if below { "below" } else { "above" };
    let mut s = format!("automate: a metric trigger (e.g. metric = \"{metric}\", {dir} = {threshold}");
    if let Some(d) = window_in(&outside) {
        let _ = write!(s, ", for = \"{d}\"");
    }
    let _ = write!(s, ", with a [[metric]] of that id); {SEE_FORMAT}");
    Some(s)
}

/// `text` without what stands in parentheses.
pub(super) fn outside_parentheses(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// "1%" → 0.01; "1 second" → 1; "500ms" → 0.5.
pub(super) fn threshold_in(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // skip numbers that are part of a word such as "P95"
        if chars[i].is_ascii_digit() && (i == 0 || !chars[i - 1].is_alphanumeric()) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let num: String = chars[start..i].iter().collect();
            let num = num.trim_end_matches('.');
            let Ok(n) = num.parse::<f64>() else { continue };
            let rest: String = chars[i..].iter().collect::<String>().trim_start().to_lowercase();
            // A "for 5 minutes" duration is not the threshold.
            let window = text[..chars[..start].iter().map(|c| c.len_utf8()).sum::<usize>()]
                .to_lowercase()
                .trim_end()
                .ends_with("for");
            if window {
                continue;
            }
            let value = if rest.starts_with('%') {
                n / 100.0
            } else if rest.starts_with("ms") {
                n / 1000.0
            } else {
                n
            };
            return Some(toml_float(value));
        }
        i += 1;
    }
    None
}

/// A threshold as a TOML float: six decimals at most, and always a decimal point (`1.0`), so that
/// it reads as a float.
pub(super) fn toml_float(v: f64) -> String {
    let s = crate::text::decimal(v, 6);
    if s.contains('.') || !v.is_finite() {
        s
    } else {
        format!("{s}.0")
    }
}
