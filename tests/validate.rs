//! `runbook validate` (and `plan`) seen from the outside: one fixture per kind of mistake in
//! `tests/fixtures/invalid/`, each a minimal valid runbook plus exactly one mistake, asserting the
//! exact `FILE:LINE:COLUMN: message`, the excerpt with its caret, and exit status 2.
//!
//! Fixtures are passed as relative paths from the crate root so the printed FILE is stable.

mod common;

use common::{runbook, runbook_bin, text};
use std::path::Path;
use std::process::{Command, Output};

const INVALID: &str = "tests/fixtures/invalid";
const VALID: &str = "tests/fixtures/valid";

/// Nothing the user sees may look like a crash.
fn assert_no_panic(out: &Output) {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !all.contains("panicked") && !all.contains("internal error"),
        "the binary panicked:\n{all}"
    );
}

fn source_line(path: &str, line: usize) -> String {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    src.split('\n')
        .nth(line - 1)
        .unwrap_or("")
        .trim_end_matches('\r')
        .replace('\t', " ")
}

/// One reported problem: where, what, and the index of its header line in stderr.
#[derive(Debug, Clone, PartialEq)]
struct Problem {
    line: usize,
    col: usize,
    message: String,
    at: usize,
}

/// The `FILE:LINE:COL: message` lines of `stderr` that are about `path`.
fn problems(stderr: &str, path: &str) -> Vec<Problem> {
    let prefix = format!("{path}:");
    let mut out = Vec::new();
    for (at, l) in stderr.lines().enumerate() {
        let Some(rest) = l.strip_prefix(&prefix) else {
            continue;
        };
        let mut parts = rest.splitn(3, ':');
        let (Some(line), Some(col), Some(message)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(line), Ok(col)) = (line.parse(), col.parse()) else {
            continue;
        };
        out.push(Problem {
            line,
            col,
            message: message.strip_prefix(' ').unwrap_or(message).to_string(),
            at,
        });
    }
    out
}

/// The two lines after a problem's header: `LINE | source`, then a caret under column `col`.
fn assert_excerpt(stderr: &str, path: &str, p: &Problem) {
    let lines: Vec<&str> = stderr.lines().collect();
    let gutter = p.line.to_string().len();
    let src = source_line(path, p.line);
    let shown = lines.get(p.at + 1).copied().unwrap_or("");
    assert_eq!(
        shown,
        format!("{} | {}", p.line, src).trim_end(),
        "excerpt of {path}:{}:{} should show the offending line\n{stderr}",
        p.line,
        p.col
    );
    let caret = lines.get(p.at + 2).copied().unwrap_or("");
    let expected_prefix = format!("{} | {}^", " ".repeat(gutter), " ".repeat(p.col - 1));
    assert!(
        caret.starts_with(&expected_prefix) && caret.trim_end().ends_with('^'),
        "caret line of {path}:{}:{} should put ^ under column {}, got {caret:?}\n{stderr}",
        p.line,
        p.col,
        p.col
    );
    let carets = &caret[expected_prefix.len() - 1..];
    assert!(
        carets.chars().all(|c| c == '^'),
        "caret line has stray text: {caret:?}"
    );
}

/// Validates one invalid fixture and checks the whole shape of the report: exit 2, nothing on
/// stdout, every problem with its excerpt and caret, the count line last. Returns the problems.
fn validate_invalid(name: &str) -> (String, Vec<Problem>) {
    let path = format!("{INVALID}/{name}.toml");
    let out = runbook(&["validate", &path]);
    assert_no_panic(&out);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "validate {path} should exit 2\nstdout:\n{}\nstderr:\n{stderr}",
        text(&out.stdout)
    );
    assert_eq!(text(&out.stdout), "", "nothing on stdout for an invalid file");
    let found = problems(&stderr, &path);
    assert!(!found.is_empty(), "no FILE:LINE:COL line for {path}:\n{stderr}");
    for p in &found {
        assert_excerpt(&stderr, &path, p);
    }
    let n = found.len();
    let last = stderr.lines().last().unwrap_or("");
    assert_eq!(
        last,
        format!(
            "{path}: {n} problem{} found; nothing was run",
            if n == 1 { "" } else { "s" }
        ),
        "the count line comes last\n{stderr}"
    );
    (stderr, found)
}

/// The fixture has exactly one problem, at `line:col`, saying `message`.
fn assert_one(name: &str, line: usize, col: usize, message: &str) {
    let (stderr, found) = validate_invalid(name);
    let path = format!("{INVALID}/{name}.toml");
    let first = stderr.lines().next().unwrap_or("");
    assert_eq!(first, format!("{path}:{line}:{col}: {message}"), "\n{stderr}");
    assert_eq!(found.len(), 1, "exactly one problem expected:\n{stderr}");
}

macro_rules! mistake {
    ($test:ident, $file:literal, $line:literal : $col:literal, $message:expr) => {
        #[test]
        fn $test() {
            assert_one($file, $line, $col, $message);
        }
    };
}

// ── Unknown keys ────────────────────────────────────────────────────────────────────────────────

mistake!(
    unknown_top_level_key,
    "unknown-top-level-key",
    4:2,
    "unknown key `setings` in the top level; did you mean `settings`?"
);

// A single typo is a single problem: `titel` is reported with its "did you mean", and not also as a
// missing `title` (which, sorted first at 1:1, buries the helpful line under an unhelpful one).
mistake!(
    unknown_runbook_key_suggests_title,
    "unknown-runbook-key",
    2:1,
    "unknown key `titel` in [runbook]; did you mean `title`?"
);

// Same for `[[phases]]`: one problem, not also "needs at least one [[phase]]" at 1:1.
mistake!(
    misspelt_phase_table_suggests_phase,
    "misspelt-phase-table",
    4:3,
    "unknown key `phases` in the top level; did you mean `phase`?"
);

mistake!(
    unknown_step_key_suggests_retries,
    "unknown-step-key",
    10:1,
    "unknown key `retires` in [[phase.step]]; did you mean `retries`?"
);

// ── Missing pieces ──────────────────────────────────────────────────────────────────────────────

mistake!(
    missing_runbook_table,
    "missing-runbook",
    1:1,
    "missing [runbook] table with a `title`"
);

mistake!(
    missing_runbook_title,
    "missing-runbook-title",
    1:1,
    "[runbook] needs a `title`"
);

mistake!(
    no_phase,
    "no-phase",
    1:1,
    "a runbook needs at least one [[phase]] with steps"
);

// Currently accepted ("ok (1 phases, 0 steps, ...)") although the message above says a phase needs
// steps: a runbook that would run nothing is surely a mistake.
mistake!(
    phase_without_steps,
    "phase-without-steps",
    4:1,
    "[[phase]] `deploy` has no steps; add at least one [[phase.step]]"
);

// An empty file has no line to show: just the problem and the count.
#[test]
fn empty_file() {
    let out = runbook(&["validate", "tests/fixtures/invalid/empty.toml"]);
    assert_no_panic(&out);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        stderr,
        "tests/fixtures/invalid/empty.toml:1:1: the file is empty; a runbook needs a [runbook] table \
         with a title and at least one [[phase]]\n\
         tests/fixtures/invalid/empty.toml: 1 problem found; nothing was run\n"
    );
}

// ── Step kinds ──────────────────────────────────────────────────────────────────────────────────

mistake!(
    step_without_kind,
    "step-without-kind",
    7:1,
    "[[phase.step]] needs one of `run`, `manual`, `watch` or `http`"
);

mistake!(
    step_with_two_kinds,
    "step-with-two-kinds",
    10:10,
    "a step has exactly one of `run`, `manual`, `watch`, `http`; this one has `run` and `manual`"
);

// ── Durations ───────────────────────────────────────────────────────────────────────────────────

mistake!(
    duration_without_unit_in_timeout,
    "duration-without-unit",
    10:11,
    "`timeout` in [[phase.step]]: duration \"90\" needs a unit: \"90s\", \"90m\", \"90ms\"..."
);

// Without humantime's "(expected number at 0)": a byte offset into the value means nothing to the
// reader, and the example that follows already says what to write.
mistake!(
    duration_not_a_duration_in_watch,
    "duration-not-a-duration",
    9:9,
    "`watch` in [[phase.step]]: invalid duration \"soon\"; write e.g. \"250ms\", \"90s\", \"5m\" or \"1h30m\""
);

// Durations are bounded: beyond 30 days, adding one to the time now is what made `run` panic
// ("overflow when adding duration to instant") after `validate` had accepted the file.
mistake!(
    duration_too_long_for_the_clock,
    "duration-too-long",
    10:11,
    "`timeout` in [[phase.step]]: duration \"18446744073709551615s\" is longer than 30 days, the longest a runbook may use"
);

mistake!(
    watch_of_half_a_trillion_years,
    "watch-too-long",
    9:9,
    "`watch` in [[phase.step]]: duration \"500000000000y\" is longer than 30 days, the longest a runbook may use"
);

mistake!(
    duration_over_thirty_days_from_a_var,
    "duration-over-thirty-days",
    12:9,
    "`watch` in [[phase.step]]: duration \"31d\" is longer than 30 days, the longest a runbook may use (from `${canary_watch}`)"
);

// A timeout of zero fails every step before it starts; it is surely a mistake.
mistake!(
    step_timeout_of_zero,
    "timeout-zero",
    10:11,
    "`timeout` in [[phase.step]] must be more than 0s"
);

mistake!(
    check_timeout_of_zero,
    "check-timeout-zero",
    8:11,
    "`timeout` in [[trigger]] must be more than 0s"
);

// An undefined `${var}` in a duration is one problem, the undefined name; not also an "invalid
// duration \"${canary_wacth}\"" reported first, which sends the reader after the wrong mistake.
mistake!(
    undefined_var_in_duration,
    "undefined-var-in-duration",
    12:10,
    "`${canary_wacth}` is not defined in [vars] or [secrets]; did you mean `canary_watch`?"
);

// ── Variables and secrets ───────────────────────────────────────────────────────────────────────

mistake!(
    undefined_var_in_title,
    "undefined-var",
    11:17,
    "`${relase}` is not defined in [vars] or [secrets]; did you mean `release`?"
);

mistake!(
    secret_in_title,
    "secret-in-title",
    11:17,
    "secret `SLACK_WEBHOOK` cannot be used here: it would be shown on screen and in the journal"
);

mistake!(
    unclosed_var,
    "unclosed-var",
    11:17,
    "`${` without a closing `}` (write `$${` for a literal `${`)"
);

mistake!(
    var_not_a_string,
    "var-not-a-string",
    5:12,
    "variable `replicas` must be a string, found integer (quote it)"
);

mistake!(
    secret_without_source,
    "secret-without-source",
    5:17,
    "secret `SLACK_WEBHOOK` needs exactly one of `env` or `file`, e.g. { env = \"SLACK_WEBHOOK\" }"
);

// Points at the bad name (line 14), not at the `[phase.step.env]` header three lines above it.
mistake!(
    env_bad_name_points_at_the_name,
    "env-bad-name",
    14:1,
    "environment name `LOG-LEVEL` must be letters, digits and _"
);

// ── Metrics and triggers ────────────────────────────────────────────────────────────────────────

mistake!(
    trigger_undefined_metric,
    "trigger-undefined-metric",
    10:10,
    "trigger `error-rate-above-1` refers to metric `eror_rate`, which is not defined; did you mean `error_rate`?"
);

mistake!(
    trigger_metric_and_check,
    "trigger-metric-and-check",
    8:1,
    "trigger `error-rate-above-1` has both `metric` and `check`; a trigger watches one thing"
);

mistake!(
    trigger_above_and_below,
    "trigger-above-and-below",
    8:1,
    "metric trigger `error-rate-out-of-range` needs exactly one of `above` or `below`"
);

mistake!(
    trigger_without_threshold,
    "trigger-without-threshold",
    8:1,
    "metric trigger `error-rate-too-high` needs exactly one of `above` or `below`"
);

mistake!(
    check_trigger_with_for,
    "check-trigger-with-for",
    7:7,
    "`for` belongs to metric triggers, and trigger `smoke-test-failing` is a check"
);

mistake!(
    armed_from_unknown_phase,
    "armed-from-unknown-phase",
    7:14,
    "`armed_from` names no phase: `app-deplyo`; did you mean `app-deploy`?"
);

mistake!(
    bad_metric_unit,
    "bad-metric-unit",
    7:8,
    "unit `ms` is not one of \"percent\", \"seconds\", \"number\""
);

mistake!(
    metric_query_and_command,
    "metric-query-and-command",
    4:1,
    "metric `error_rate` has both `query` and `command`; keep one"
);

// ── on_failure ──────────────────────────────────────────────────────────────────────────────────

mistake!(
    on_failure_rollback_without_rollback,
    "on-failure-rollback-without-rollback",
    10:14,
    "`on_failure = \"rollback\"` needs a [rollback] procedure, and this runbook has none"
);

mistake!(
    bad_on_failure,
    "bad-on-failure",
    10:14,
    "on_failure `retry` is not one of \"ask\", \"continue\", \"rollback\""
);

// ── Ids ─────────────────────────────────────────────────────────────────────────────────────────

mistake!(
    duplicate_phase_id,
    "duplicate-phase-id",
    11:1,
    "duplicate phase id `deploy`"
);

mistake!(
    duplicate_step_id,
    "duplicate-step-id",
    11:1,
    "duplicate step id `deploy-the-app` in phase `deploy` (give one of them an `id`)"
);

mistake!(
    duplicate_trigger_id,
    "duplicate-trigger-id",
    9:1,
    "duplicate trigger id `smoke`"
);

mistake!(
    bad_explicit_id,
    "bad-explicit-id",
    5:6,
    "id `Bad Id` must start with a-z or 0-9 and contain only a-z, 0-9, - and _"
);

mistake!(
    underivable_id,
    "underivable-id",
    8:9,
    "cannot derive an id from this title; give the [[phase.step]] an `id`"
);

// ── Types and values ────────────────────────────────────────────────────────────────────────────

mistake!(
    wrong_type_retries,
    "wrong-type-retries",
    10:11,
    "`retries` in [[phase.step]] must be a whole number, found string"
);

mistake!(
    wrong_type_confirm,
    "wrong-type-confirm",
    10:11,
    "`confirm` in [[phase.step]] must be true or false, found string"
);

// One mistake, one problem: not also "`expect_status` is empty", which it is not.
mistake!(
    expect_status_out_of_range,
    "expect-status-out-of-range",
    9:64,
    "`expect_status` must be an HTTP status (100-599) or a list of them"
);

mistake!(
    expect_status_quoted,
    "expect-status-quoted",
    9:64,
    "`expect_status` must be an HTTP status (100-599) or a list of them"
);

mistake!(
    bad_http_method,
    "bad-http-method",
    9:57,
    "method `GTE` is not an HTTP method; did you mean `GET`?"
);

// ── TOML syntax ─────────────────────────────────────────────────────────────────────────────────

mistake!(
    toml_unclosed_string,
    "toml-unclosed-string",
    5:16,
    "TOML syntax: invalid basic string, expected `\"`"
);

// `run =` with nothing after it: the value is missing. The toml crate's "string values must be
// quoted, expected literal string" sends the reader looking for a string that is not there.
mistake!(
    toml_missing_value,
    "toml-missing-value",
    9:6,
    "TOML syntax: missing value after `=`"
);

// ── Columns count characters ────────────────────────────────────────────────────────────────────

// `é` and `é` are two bytes each before `"GTE"` on the same line: the column counts characters.
mistake!(
    column_counts_characters_in_inline_table,
    "non-ascii-column",
    12:55,
    "method `GTE` is not an HTTP method; did you mean `GET`?"
);

// `é`, `«` and a space before `${relase}`, located inside the string literal.
mistake!(
    column_counts_characters_inside_a_string,
    "non-ascii-var-column",
    11:21,
    "`${relase}` is not defined in [vars] or [secrets]; did you mean `release`?"
);

#[test]
fn caret_lines_up_under_non_ascii_text() {
    let (stderr, _) = validate_invalid("non-ascii-var-column");
    let lines: Vec<&str> = stderr.lines().collect();
    let shown = lines[1].split_once(" | ").unwrap().1;
    let caret = lines[2].split_once(" | ").unwrap().1;
    let under: String = shown
        .chars()
        .skip(caret.chars().take_while(|&c| c == ' ').count())
        .take(caret.trim().chars().count())
        .collect();
    assert_eq!(under, "${relase}", "\n{stderr}");
}

// The excerpt is cut at 200 characters; a problem further right must still have its caret under
// the text it names (show the part of the line around the column), not in empty space past the
// end of what is shown.
#[test]
fn caret_on_a_long_line_points_at_shown_text() {
    let path = format!("{INVALID}/long-line.toml");
    let out = runbook(&["validate", &path]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "{path}:9:225: `${{deploymnet}}` is not defined in [vars] or [secrets]; did you mean `deployment`?"
        )
    );
    let shown = lines[1].split_once(" | ").expect("excerpt line").1;
    let caret = lines[2].split_once(" | ").expect("caret line").1;
    let pad = caret.chars().take_while(|&c| c == ' ').count();
    let under: String = shown
        .chars()
        .skip(pad)
        .take(caret.trim().chars().count())
        .collect();
    assert_eq!(
        under, "${deploymnet}",
        "the caret should sit under `${{deploymnet}}` in the shown text\n{stderr}"
    );
}

// ── Several mistakes in one file ────────────────────────────────────────────────────────────────

#[test]
fn every_mistake_in_a_file_is_reported_in_order() {
    let (stderr, found) = validate_invalid("several-mistakes");
    let got: Vec<(usize, usize, &str)> = found
        .iter()
        .map(|p| (p.line, p.col, p.message.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, 1, "unknown key `owner` in [runbook]"),
            (
                11,
                8,
                "unit `percentage` is not one of \"percent\", \"seconds\", \"number\"; did you mean `percent`?"
            ),
            (
                17,
                7,
                "`for` in [[trigger]]: duration \"5\" needs a unit: \"5s\", \"5m\", \"5ms\"..."
            ),
            (
                23,
                17,
                "`${relase}` is not defined in [vars] or [secrets]; did you mean `release`?"
            ),
            (
                25,
                1,
                "unknown key `retires` in [[phase.step]]; did you mean `retries`?"
            ),
            (
                30,
                14,
                "`on_failure = \"rollback\"` needs a [rollback] procedure, and this runbook has none"
            ),
        ],
        "\n{stderr}"
    );
    assert!(
        stderr.ends_with("tests/fixtures/invalid/several-mistakes.toml: 6 problems found; nothing was run\n")
    );
}

// ── Files that are not runbooks ─────────────────────────────────────────────────────────────────

/// Exit 2, one line on stderr that starts with the file name, nothing on stdout, no panic.
fn assert_unreadable(path: &str, expect: &str) {
    let out = runbook(&["validate", path]);
    assert_no_panic(&out);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(text(&out.stdout), "");
    assert_eq!(stderr.lines().count(), 1, "one line expected:\n{stderr}");
    assert!(
        stderr.starts_with(&format!("{path}: ")),
        "the message names the file:\n{stderr}"
    );
    assert!(stderr.contains(expect), "expected {expect:?} in:\n{stderr}");
}

#[test]
fn missing_file() {
    assert_unreadable("tests/fixtures/invalid/no-such-runbook.toml", "no such file");
}

#[test]
fn a_folder() {
    assert_unreadable("tests/fixtures/invalid", "is a folder, not a runbook file");
}

#[test]
fn binary_file_with_invalid_utf8() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("random.toml");
    // Deterministic "random" bytes; an 0xFF early on is never valid UTF-8.
    let mut x: u32 = 0x1234_5678;
    let mut bytes = vec![0xFF, 0x00];
    for _ in 0..4096 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        bytes.push((x >> 24) as u8);
    }
    std::fs::write(&path, &bytes).unwrap();
    let p = path.display().to_string();
    assert_unreadable(&p, "is not a text file");
}

// Valid UTF-8 full of control characters (NUL, ESC sequences): whatever is reported, the excerpt
// must not send the file's raw control characters to the terminal (`ESC[2J` clears the screen).
#[test]
fn binary_file_with_control_characters_is_not_echoed_raw() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("control.toml");
    std::fs::write(&path, b"\x00\x00\x01\x1b[2J\x1b[31mred\x07\n").unwrap();
    let p = path.display().to_string();
    let out = runbook(&["validate", &p]);
    assert_no_panic(&out);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with(&format!("{p}:")), "{stderr}");
    let raw: Vec<char> = stderr.chars().filter(|&c| c.is_control() && c != '\n').collect();
    assert!(
        raw.is_empty(),
        "control characters echoed to the terminal: {raw:?}\n{stderr:?}"
    );
}

#[test]
fn ten_megabyte_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("huge.toml");
    let line = "# a comment line that pads the file out to ten megabytes of text\n";
    let mut s = String::with_capacity(10 * 1024 * 1024 + line.len());
    while s.len() < 10 * 1024 * 1024 {
        s.push_str(line);
    }
    std::fs::write(&path, s).unwrap();
    let p = path.display().to_string();
    assert_unreadable(&p, "a runbook file may be at most");
}

/// `validate PATH`, killed if it has not ended within `limit` (before the fix, `/dev/zero` was
/// read forever and a FIFO without a writer blocked the open).
fn validate_within(path: &str, limit: std::time::Duration) -> Output {
    let mut child = Command::new(runbook_bin())
        .args(["validate", path])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("validate {path} did not end within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn assert_refused_quickly(path: &str, expect: &str) {
    let out = validate_within(path, std::time::Duration::from_secs(5));
    assert_no_panic(&out);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr, format!("{path}: {expect}\n"));
}

#[test]
fn a_device_that_never_ends_is_refused_at_once() {
    assert_refused_quickly("/dev/zero", "is a character device, not a regular file");
}

#[test]
fn a_fifo_without_a_writer_is_refused_without_blocking() {
    let dir = tempfile::TempDir::new().unwrap();
    let fifo = dir.path().join("runbook.toml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    assert_refused_quickly(
        &fifo.display().to_string(),
        "is a named pipe (FIFO), not a regular file",
    );
}

// ── Several files, shipped runbooks ─────────────────────────────────────────────────────────────

#[test]
fn several_files_one_invalid_reports_both() {
    let valid = format!("{VALID}/minimal.toml");
    let invalid = format!("{INVALID}/unknown-step-key.toml");
    // The invalid one first: a problem does not stop the files after it from being checked.
    let out = runbook(&["validate", &invalid, &valid]);
    assert_no_panic(&out);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.starts_with(&format!("{valid}: ok (")), "{stdout}");
    assert!(
        stderr.starts_with(&format!(
            "{invalid}:10:1: unknown key `retires` in [[phase.step]]; did you mean `retries`?\n"
        )),
        "{stderr}"
    );
    assert!(stderr.ends_with(&format!("{invalid}: 1 problem found; nothing was run\n")));
}

#[test]
fn several_files_missing_and_valid() {
    let valid = format!("{VALID}/minimal.toml");
    let missing = format!("{INVALID}/no-such-runbook.toml");
    let out = runbook(&["validate", &valid, &missing]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).starts_with(&format!("{valid}: ok (")));
    assert_eq!(text(&out.stderr), format!("{missing}: no such file\n"));
}

#[test]
fn valid_fixtures_are_ok() {
    for name in ["minimal", "every-feature"] {
        let path = format!("{VALID}/{name}.toml");
        let out = runbook(&["validate", &path]);
        assert_no_panic(&out);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{path} should be valid:\n{}",
            text(&out.stderr)
        );
        assert!(stdout.starts_with(&format!("{path}: ok (")), "{stdout}");
        assert_eq!(text(&out.stderr), "");
    }
}

// "1 phases, 1 steps" reads wrong; counts of one are singular.
#[test]
fn ok_line_uses_singular_for_one() {
    let path = format!("{VALID}/minimal.toml");
    let out = runbook(&["validate", &path]);
    assert_eq!(
        text(&out.stdout),
        format!("{path}: ok (1 phase, 1 step, 0 triggers, 0 rollback phases)\n")
    );
}

#[test]
fn shipped_runbooks_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .map(|n| format!("runbooks/{n}"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "shipped runbooks: {files:?}");
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = runbook(&args);
    assert_no_panic(&out);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for f in &files {
        assert!(stdout.contains(&format!("{f}: ok (")), "{f} not ok:\n{stdout}");
    }
}

// ── plan ────────────────────────────────────────────────────────────────────────────────────────

/// Titles of every `[[phase]]` and `[[rollback.phase]]` in a runbook file.
fn phase_titles(path: &str) -> Vec<String> {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let mut titles = Vec::new();
    let mut in_phase = false;
    for l in src.lines().map(str::trim) {
        if l.starts_with('[') {
            in_phase = l == "[[phase]]" || l == "[[rollback.phase]]";
            continue;
        }
        if in_phase && let Some(rest) = l.strip_prefix("title = \"") {
            titles.push(rest.trim_end_matches('"').to_string());
            in_phase = false;
        }
    }
    titles
}

#[test]
fn plan_shows_every_phase() {
    let path = "runbooks/production-rollout.toml";
    let out = runbook(&["plan", path]);
    assert_no_panic(&out);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let titles = phase_titles(path);
    assert!(titles.len() >= 10, "phase titles found: {titles:?}");
    for t in &titles {
        assert!(stdout.contains(t.as_str()), "plan lacks phase {t:?}:\n{stdout}");
    }
}

#[test]
fn plan_with_unknown_var_names_it() {
    let out = runbook(&["plan", "runbooks/production-rollout.toml", "--var", "nosuch=1"]);
    assert_no_panic(&out);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(text(&out.stdout), "");
    assert!(stderr.contains("nosuch"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn plan_with_misspelt_var_suggests_the_name() {
    let out = runbook(&["plan", "runbooks/production-rollout.toml", "--var", "relase=v9"]);
    assert_no_panic(&out);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("did you mean `release`?"), "{stderr}");
}

#[test]
fn plan_of_an_invalid_file_shows_the_problems() {
    let path = format!("{INVALID}/unknown-step-key.toml");
    let out = runbook(&["plan", &path]);
    assert_no_panic(&out);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("{path}:10:1: unknown key `retires`")),
        "{stderr}"
    );
}

/// A watch step's title says how long it watches as the run will: with every duration in
/// `[vars]` overridden (as the README's demo does), no title still says "15 minutes".
#[test]
fn shipped_watch_titles_follow_their_duration() {
    for path in [
        "runbooks/production-rollout.toml",
        "runbooks/kubernetes-canary.toml",
    ] {
        let out = runbook(&["plan", path]);
        let stdout = text(&out.stdout);
        let vars = stdout
            .lines()
            .find_map(|l| l.strip_prefix("vars: "))
            .unwrap_or_else(|| panic!("no vars line:\n{stdout}"));
        let mut args = vec!["plan".to_string(), path.to_string()];
        for (name, value) in vars.split(", ").filter_map(|v| v.split_once('=')) {
            let duration = value.len() > 1
                && value.ends_with(['s', 'm', 'h'])
                && value[..value.len() - 1].chars().all(|c| c.is_ascii_digit());
            if duration {
                args.extend(["--var".to_string(), format!("{name}=17s")]);
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = runbook(&args);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let watches: Vec<&str> = stdout.lines().filter(|l| l.contains("[watch ")).collect();
        assert!(!watches.is_empty(), "{path} has no watch step:\n{stdout}");
        for row in watches {
            assert!(row.contains("[watch 17s]"), "{path}: {row}");
            let title = row.split("[watch 17s]").nth(1).unwrap();
            assert!(title.contains("17s"), "{path}: the title does not say 17s: {row}");
        }
    }
}
