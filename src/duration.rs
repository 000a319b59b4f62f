//! Durations as runbooks write them: `"250ms"`, `"90s"`, `"5m"`, `"1h30m"`, how they are shown,
//! and waiting for an optional deadline.

use std::time::Duration;

/// The longest duration accepted anywhere (timeouts, watches, `for`, intervals, `--since`): far
/// beyond any deploy, and far below what would overflow a clock when added to the time now.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses a duration string (at most `MAX_DURATION`); the error says what is wrong in the operator's words.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration; write e.g. \"90s\", \"5m\" or \"1h30m\"".into());
    }
    if t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!(
            "duration \"{t}\" needs a unit: \"{t}s\", \"{t}m\", \"{t}ms\"..."
        ));
    }
    let too_long = || format!("duration \"{t}\" is longer than 30 days, the longest a runbook may use");
    let d = humantime::parse_duration(t).map_err(|e| match e {
        // The unit list is worth showing; the other errors are byte offsets that help nobody.
        humantime::DurationError::UnknownUnit { .. } => format!("invalid duration \"{t}\": {e}"),
        humantime::DurationError::NumberOverflow => too_long(),
        _ => format!("invalid duration \"{t}\"; write e.g. \"250ms\", \"90s\", \"5m\" or \"1h30m\""),
    })?;
    if d > MAX_DURATION {
        return Err(too_long());
    }
    Ok(d)
}

/// A duration as an operator reads it: `850ms`, `42s`, `5m`, `1h30m`, `2m05s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s < 60 {
        if ms.is_multiple_of(1000) || s >= 10 {
            return format!("{s}s");
        }
        return format!("{:.1}s", d.as_secs_f64());
    }
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m, sec) {
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) => format!("{h}h{m:02}m"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// Sleeps until `at`, or forever when there is no deadline: a `select!` branch that is there only
/// sometimes.
pub async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_runbooks_use() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(parse_duration("90").unwrap_err().contains("needs a unit"));
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("invalid duration \"soon\"")
        );
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn refuses_durations_beyond_thirty_days() {
        assert_eq!(parse_duration("30d").unwrap(), MAX_DURATION);
        assert_eq!(parse_duration("720h").unwrap(), MAX_DURATION);
        for long in [
            "30d1s",
            "500000000000y",
            "18446744073709551615s",
            "99999999999999999999999s",
        ] {
            let e = parse_duration(long).unwrap_err();
            assert!(e.contains("longer than 30 days"), "{long}: {e}");
        }
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(42)), "42s");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }
}
