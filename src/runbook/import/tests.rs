//! The import's pure helpers: headings, hints, thresholds, escaping.

use super::*;

#[test]
fn numbering_is_stripped_from_headings() {
    assert_eq!(
        strip_numbering("1. Infrastructure Validation"),
        "Infrastructure Validation"
    );
    assert_eq!(strip_numbering("2.3 Canary"), "Canary");
    assert_eq!(strip_numbering("2) Canary"), "Canary");
    assert_eq!(strip_numbering("10% of instances"), "10% of instances");
    assert_eq!(strip_numbering("2024 review"), "2024 review");
    assert_eq!(strip_numbering("1."), "1.");
    assert_eq!(strip_numbering("1.2. Deep"), "Deep");
    assert_eq!(strip_numbering("Phase 1. Build"), "Phase 1. Build");
}

#[test]
fn rollback_headings_are_recognised() {
    assert_eq!(classify("Rollback Triggers", Kind::Normal), Kind::Triggers);
    assert_eq!(classify("When to roll back", Kind::Normal), Kind::Triggers);
    assert_eq!(classify("Rollback Process", Kind::Normal), Kind::Rollback);
    assert_eq!(classify("Roll back procedure", Kind::Normal), Kind::Rollback);
    assert_eq!(classify("Rollback", Kind::Normal), Kind::Rollback);
    assert_eq!(classify("Rollback readiness", Kind::Normal), Kind::Normal);
    assert_eq!(classify("Success Criteria", Kind::Normal), Kind::Normal);
    assert_eq!(classify("Triggers", Kind::Rollback), Kind::Triggers);
    assert_eq!(classify("Database", Kind::Rollback), Kind::Rollback);
}

#[test]
fn strings_are_escaped_for_toml_and_variables() {
    assert_eq!(toml_str(r#"say "hi" \ ${x}"#), r#""say \"hi\" \\ $${x}""#);
    assert_eq!(toml_str("a\tb\u{1}"), "\"a\\tb\\u0001\"");
}

#[test]
fn lead_ins_say_whether_they_call_for_a_rollback() {
    assert_eq!(calls_for_rollback("Roll back immediately if:"), Some(true));
    assert_eq!(calls_for_rollback("Execute rollback immediately if:"), Some(true));
    assert_eq!(calls_for_rollback("Do NOT roll back if:"), Some(false));
    assert_eq!(calls_for_rollback("DO NOT rollback if"), Some(false));
    assert_eq!(calls_for_rollback("Don't roll back when"), Some(false));
    assert_eq!(calls_for_rollback("Consider escalation first if:"), Some(false));
    assert_eq!(calls_for_rollback("Escalation Before Rollback"), Some(false));
    assert_eq!(calls_for_rollback("Examples:"), None);
}

#[test]
fn commands_are_suggested_only_when_the_text_is_one() {
    assert_eq!(
        one_command_in("kubectl get pods\n").as_deref(),
        Some("kubectl get pods")
    );
    assert_eq!(
        one_command_in("# comment\n$ make release\n").as_deref(),
        Some("make release")
    );
    assert_eq!(
        one_command_in("docker run \\\n  --rm x\n").as_deref(),
        Some("docker run \\\n  --rm x")
    );
    assert_eq!(one_command_in("a\nb\n"), None);
    assert_eq!(
        command_span("`git push --tags`").as_deref(),
        Some("git push --tags")
    );
    assert_eq!(command_span("`./release.sh`:").as_deref(), Some("./release.sh"));
    assert_eq!(command_span("`CHANGELOG.md`"), None);
    assert_eq!(command_span("Run `make test`"), None);
    // no keyword guesses
    let mut none = None;
    assert_eq!(step_hint("Kill the inactive pod", &mut none), None);
    assert_eq!(step_hint("Screenshot testgrid boards", &mut none), None);
    assert_eq!(trigger_hint("Performance slightly degraded (< 5%)"), None);
    assert!(trigger_hint("Error rate > 5% for 2 minutes").is_some_and(|h| h.contains("above = 0.05")));
}

#[test]
fn placeholders_and_long_titles() {
    assert!(is_placeholder("<add more items here>"));
    assert!(is_placeholder(""));
    assert!(!is_placeholder("Tag v<version>"));
    assert!(!is_placeholder("<b>Bold</b> words"));
    let long = "Cut the release branch from main. ".repeat(10);
    let (title, cut) = shorten(long.trim());
    assert!(cut);
    assert_eq!(title, "Cut the release branch from main.");
    assert_eq!(shorten("Short"), ("Short".to_string(), false));
}

#[test]
fn durations_and_thresholds_are_read() {
    assert_eq!(
        duration_in("Monitor error rates for 15 minutes").as_deref(),
        Some("15m")
    );
    assert_eq!(duration_in("Monitoring (24 hours)").as_deref(), Some("24h"));
    assert_eq!(duration_in("Watch for 90s").as_deref(), Some("90s"));
    assert_eq!(duration_in("Watch error rates"), None);
    assert_eq!(
        threshold_in("Error rate exceeds 1% for 5 minutes").as_deref(),
        Some("0.01")
    );
    assert_eq!(
        threshold_in("P95 latency exceeds 1 second").as_deref(),
        Some("1.0")
    );
}
