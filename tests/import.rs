//! `runbook import CHECKLIST.md` seen from the outside: the real binary on the seed plan and on
//! small checklists in `tests/fixtures/import/`. Every import must be accepted by `runbook validate`
//! and `runbook plan`, and must keep every checklist item in its own words.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{runbook, text};
use runbook::runbook::{Runbook, StepKind, TriggerKind};

const FIXTURES: &str = "tests/fixtures/import";
const SEED: &str = "tests/fixtures/import/production-rollout-plan.md";

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("fixture")
}

/// An import that worked: the TOML, and the runbook as the tool reads it back.
struct Imported {
    toml: String,
    rb: Runbook,
    _dir: tempfile::TempDir,
}

/// Imports `md` (a path from the crate root), checks exit 0 and that stderr holds only notices
/// about this file, writes the output to a temporary file, and checks that `validate` and `plan`
/// accept it.
fn import_ok(md: &str) -> Imported {
    let out = runbook(&["import", md]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "import {md} failed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for line in stderr.lines() {
        assert!(
            line.starts_with(&format!("runbook: {md}: ")),
            "import {md} wrote to stderr: {stderr}"
        );
    }
    validated(md, stdout)
}

fn validated(what: &str, toml: String) -> Imported {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("imported.toml");
    std::fs::write(&file, &toml).expect("write the import");
    let f = file.to_str().expect("utf-8 temp path");
    let v = runbook(&["validate", f]);
    assert_eq!(
        v.status.code(),
        Some(0),
        "the import of {what} does not validate:\n{}{}\n--- the import:\n{toml}",
        text(&v.stdout),
        text(&v.stderr)
    );
    let p = runbook(&["plan", f]);
    assert_eq!(
        p.status.code(),
        Some(0),
        "plan refused the import of {what}:\n{}{}",
        text(&p.stdout),
        text(&p.stderr)
    );
    assert!(!text(&p.stdout).trim().is_empty(), "plan printed nothing");
    let rb = runbook::runbook::load(&file, &[]).unwrap_or_else(|e| panic!("{}", e.render()));
    Imported { toml, rb, _dir: dir }
}

/// The words of every `- [ ]` / `- [x]` / `* [ ]` item of a checklist, read naively line by line.
fn checkbox_items(md: &str) -> Vec<String> {
    md.lines()
        .filter_map(|l| {
            let t = l.trim_start();
            let t = t
                .strip_prefix("- ")
                .or_else(|| t.strip_prefix("* "))
                .or_else(|| t.strip_prefix("+ "))?;
            let t = t
                .strip_prefix("[ ]")
                .or_else(|| t.strip_prefix("[x]"))
                .or_else(|| t.strip_prefix("[X]"))?;
            Some(t.trim().to_string())
        })
        .collect()
}

fn forward_titles(rb: &Runbook) -> Vec<String> {
    rb.phases
        .iter()
        .flat_map(|p| p.steps.iter().map(|s| s.title.clone()))
        .collect()
}

fn rollback_titles(rb: &Runbook) -> Vec<String> {
    rb.rollback
        .iter()
        .flat_map(|r| r.phases.iter())
        .flat_map(|p| p.steps.iter().map(|s| s.title.clone()))
        .collect()
}

fn counts(items: &[String]) -> HashMap<&str, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i.as_str()).or_insert(0) += 1;
    }
    m
}

/// Every step of the runbook is a manual step.
fn assert_all_manual(rb: &Runbook) {
    let phases = rb
        .phases
        .iter()
        .chain(rb.rollback.iter().flat_map(|r| r.phases.iter()));
    for p in phases {
        for s in &p.steps {
            assert!(
                matches!(s.kind, StepKind::Manual(_)),
                "{}/{} is not manual",
                p.id,
                s.id
            );
        }
    }
}

/// Every checkbox item of `md` is a step or a trigger, as often as it is in the checklist.
fn assert_items_kept(md: &str, rb: &Runbook) {
    let items = checkbox_items(md);
    assert!(!items.is_empty());
    let mut all = forward_titles(rb);
    all.extend(rollback_titles(rb));
    all.extend(rb.triggers.iter().map(|t| t.title.clone()));
    let have = counts(&all);
    for (item, n) in counts(&items) {
        assert!(
            have.get(item).copied().unwrap_or(0) >= n,
            "item {item:?} ({n}×) is missing from the import; titles: {all:#?}"
        );
    }
}

// ── The seed plan ──────────────────────────────────────────────────────────────────────────────

#[test]
fn seed_plan_imports_and_validates() {
    let imp = import_ok(SEED);
    assert_eq!(imp.rb.title, "Production Rollout Plan");
    assert_eq!(imp.rb.phases.len(), 11);
    assert_all_manual(&imp.rb);
    assert!(imp.toml.ends_with('\n'));
}

#[test]
fn seed_plan_every_item_is_a_step_exactly_once() {
    let md = read(SEED);
    let items = checkbox_items(&md);
    assert_eq!(items.len(), 52, "the seed plan has 52 `- [ ]` items");
    let imp = import_ok(SEED);
    let titles = forward_titles(&imp.rb);
    assert_eq!(titles.len(), 52, "{titles:#?}");
    let have = counts(&titles);
    for item in &items {
        assert_eq!(have.get(item.as_str()), Some(&1), "item {item:?}");
    }
    // and in the checklist's order
    assert_eq!(titles, items);
}

#[test]
fn seed_plan_rollback_triggers_become_manual_triggers() {
    let imp = import_ok(SEED);
    let titles: Vec<&str> = imp.rb.triggers.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Error rate exceeds 1% for 5 minutes",
            "P95 latency exceeds 1 second",
            "Critical business flows failing",
            "Security vulnerability detected",
            "Data integrity issues observed",
        ]
    );
    for t in &imp.rb.triggers {
        assert!(matches!(t.kind, TriggerKind::Manual), "{} is not manual", t.id);
        assert!(t.armed_from.is_none() && t.auto_rollback.is_none());
    }
    let ids: Vec<&str> = imp.rb.triggers.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "error-rate",
            "p95-latency",
            "critical",
            "security",
            "data-integrity"
        ]
    );
}

#[test]
fn seed_plan_rollback_process_becomes_the_rollback_procedure() {
    let imp = import_ok(SEED);
    let rb = imp.rb.rollback.as_ref().expect("a [rollback]");
    assert_eq!(rb.title, "Rollback Process");
    let phases: Vec<(&str, Vec<&str>)> = rb
        .phases
        .iter()
        .map(|p| {
            (
                p.title.as_str(),
                p.steps.iter().map(|s| s.title.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            (
                "Immediate Actions",
                vec![
                    "Stop deployment if in progress",
                    "Scale up previous version",
                    "Direct traffic to previous version",
                    "Notify stakeholders"
                ]
            ),
            (
                "Database Rollback",
                vec![
                    "Restore from pre-deployment backup if needed",
                    "Verify data integrity",
                    "Run validation queries"
                ]
            ),
            (
                "Post-Rollback",
                vec![
                    "Verify system health",
                    "Update status page",
                    "Schedule incident review"
                ]
            ),
        ]
    );
    assert_eq!(rb.phases.iter().map(|p| p.steps.len()).sum::<usize>(), 10);
}

#[test]
fn seed_plan_sections_and_phases_follow_the_headings() {
    let imp = import_ok(SEED);
    let mut sections: Vec<&str> = Vec::new();
    for p in &imp.rb.phases {
        let s = p.section.as_deref().expect("every phase has a section");
        if sections.last() != Some(&s) {
            sections.push(s);
        }
    }
    assert_eq!(
        sections,
        [
            "Pre-deployment Tasks",
            "Deployment Process",
            "Success Criteria",
            "Post-deployment Tasks"
        ]
    );
    let phases: Vec<(&str, &str)> = imp
        .rb
        .phases
        .iter()
        .map(|p| (p.id.as_str(), p.title.as_str()))
        .collect();
    assert_eq!(
        phases,
        [
            ("infrastructure-validation", "Infrastructure Validation"),
            ("application-readiness", "Application Readiness"),
            ("monitoring-setup", "Monitoring Setup"),
            ("pre-deployment-communication", "Pre-deployment Communication"),
            ("database-updates", "Database Updates"),
            ("application-deployment", "Application Deployment"),
            ("post-deployment-verification", "Post-deployment Verification"),
            ("success-criteria", "Success Criteria"),
            ("monitoring-24-hours", "Monitoring (24 hours)"),
            ("documentation", "Documentation"),
            ("review", "Review"),
        ]
    );
    // every phase id is written out, not left to derivation
    let written = imp.toml.matches("[[phase]]\nid = \"").count()
        + imp.toml.matches("[[rollback.phase]]\nid = \"").count();
    assert_eq!(written, 14);
}

#[test]
fn seed_plan_comments_point_at_what_to_automate() {
    let imp = import_ok(SEED);
    let toml = &imp.toml;
    let head: Vec<&str> = toml.lines().take_while(|l| l.starts_with('#')).collect();
    let head = head.join("\n");
    assert!(head.contains("runbook import"), "{head}");
    assert!(head.contains("production-rollout-plan.md"), "{head}");
    assert!(head.contains("review before use"), "{head}");
    let dated = head.as_bytes().windows(10).any(|w| {
        w.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
    });
    assert!(
        !dated,
        "the header has a date, so every import would differ: {head}"
    );
    let hint_above = |title: &str| -> String {
        let needle = format!("title = \"{title}\"");
        let at = toml.find(&needle).unwrap_or_else(|| panic!("no step {title:?}"));
        let before = &toml[..at];
        let block_start = before.rfind("\n\n").map_or(0, |i| i + 2);
        before[block_start..]
            .lines()
            .filter(|l| l.starts_with("# automate:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(hint_above("Monitor error rates for 15 minutes").contains("watch = \"15m\""));
    assert!(hint_above("Apply schema migrations").contains("irreversible"));
    assert!(hint_above("Error rate exceeds 1% for 5 minutes").contains("metric trigger"));
    assert!(hint_above("Error rate exceeds 1% for 5 minutes").contains("for = \"5m\""));
    // things only a person does, and things whose words name no command, are not flagged: a
    // suggestion comes from what the text says, never from a keyword alone
    for human in [
        "Take full database backup",
        "Database backup completed",
        "Health checks passing",
        "Schedule deployment retrospective",
        "Document lessons learned",
        "Confirm on-call support availability",
        "Zero downtime during deployment",
    ] {
        assert_eq!(hint_above(human), "", "{human} is flagged");
    }
    for line in toml.lines().filter(|l| l.starts_with("# automate:")) {
        assert!(line.contains("README.md"), "{line}");
    }
}

#[test]
fn import_is_the_same_from_any_folder_and_every_time() {
    let a = runbook(&["import", SEED]);
    let abs = Path::new(env!("CARGO_MANIFEST_DIR")).join(SEED);
    let b = runbook(&["import", abs.to_str().unwrap()]);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(text(&a.stdout), text(&b.stdout));
}

#[test]
fn crlf_line_endings_import_like_lf() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["production-rollout-plan.md", "nested.md", "quotes.md"] {
        let lf = read(&fixture(name));
        let crlf = lf.replace('\n', "\r\n");
        assert!(crlf.contains("\r\n"));
        let path: PathBuf = dir.path().join(name);
        std::fs::write(&path, &crlf).unwrap();
        let from_crlf = runbook(&["import", path.to_str().unwrap()]);
        let from_lf = runbook(&["import", &fixture(name)]);
        assert_eq!(from_crlf.status.code(), Some(0), "{}", text(&from_crlf.stderr));
        let toml = text(&from_crlf.stdout);
        assert!(
            !toml.contains('\r'),
            "a carriage return leaked into the import of {name}"
        );
        assert_eq!(toml, text(&from_lf.stdout), "{name}: CRLF and LF differ");
        let imp = validated(name, toml);
        if name == "production-rollout-plan.md" {
            assert_eq!(imp.rb.step_count(), 52);
            assert_eq!(imp.rb.triggers.len(), 5);
        }
    }
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_title() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bom.md");
    std::fs::write(&path, "\u{feff}# Title\n\n- [ ] One\n").unwrap();
    let out = runbook(&["import", path.to_str().unwrap()]);
    let imp = validated("bom.md", text(&out.stdout));
    assert_eq!(imp.rb.title, "Title");
}

// ── Small checklists ───────────────────────────────────────────────────────────────────────────

#[test]
fn nested_headings_star_items_continuations_and_noise() {
    let imp = import_ok(&fixture("nested.md"));
    let rb = &imp.rb;
    assert_eq!(rb.title, "Release checklist: payments");
    assert_eq!(
        rb.description.as_deref(),
        Some("Payments service release, weekly train.")
    );
    let phases: Vec<(Option<&str>, &str, Vec<&str>)> = rb
        .phases
        .iter()
        .map(|p| {
            (
                p.section.as_deref(),
                p.title.as_str(),
                p.steps.iter().map(|s| s.title.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            (
                None,
                "Release checklist: payments",
                vec!["Release ticket approved", "Change freeze calendar checked"]
            ),
            (
                Some("Before"),
                "Build",
                vec![
                    "Build artefacts published",
                    "Container image signed",
                    "SBOM attached",
                    "Changelog written"
                ]
            ),
            (
                Some("Before"),
                "Build / Backend",
                vec![
                    "API image built",
                    "Worker image built (nested item)",
                    "Migrations packaged"
                ]
            ),
            (
                Some("Before"),
                "Build / Frontend",
                vec!["Bundle uploaded to the CDN, with the new asset prefix"]
            ),
            (
                Some("Deploy"),
                "Deploy",
                vec![
                    "Deploy new version to 10% of instances",
                    "Monitor error rates for 10 minutes",
                    "Deploy to remaining instances ##"
                ]
            ),
            (Some("Afterwards"), "Afterwards", vec!["Announce in #releases"]),
        ]
    );
    assert!(rb.triggers.is_empty() && rb.rollback.is_none());
    // items in code blocks and HTML comments are not items; empty and prose-only headings vanish
    let all = forward_titles(rb).join("\n");
    assert!(!all.contains("not an item"));
    assert!(!imp.toml.contains("Empty heading") && !imp.toml.contains("Prose only"));
    // what is not an item is in the instruction of the step it follows, where the operator sees it
    let frontend = &rb.phases[3].steps[0];
    let StepKind::Manual(Some(text)) = &frontend.kind else {
        panic!("no instruction: {:?}", frontend.kind)
    };
    assert!(
        text.contains("Notes are kept as comments:\n\n- plain bullets are not steps\n- they stay as notes"),
        "{text}"
    );
    assert!(text.contains("./build.sh --release"), "{text}");
    // an item already checked says so
    let written = &rb.phases[1].steps[3];
    assert!(matches!(&written.kind, StepKind::Manual(Some(t)) if t.contains("Already checked")));
}

#[test]
fn duplicate_items_and_headings_get_ids_of_their_own() {
    let imp = import_ok(&fixture("duplicates.md"));
    assert_items_kept(&read(&fixture("duplicates.md")), &imp.rb);
    let checks = &imp.rb.phases[0];
    let titles: Vec<&str> = checks.steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Verify backup",
            "Verify backup",
            "Verify backup!",
            "Verify backup 2",
            "Verify backup",
            "✓✓",
            "✓✓",
            "Проверить журналы"
        ]
    );
    let ids: Vec<&str> = checks.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "verify-backup",
            "verify-backup-2",
            "verify-backup-3",
            "verify-backup-2-2",
            "verify-backup-4",
            "step-6",
            "step-7",
            "step-8"
        ]
    );
    let phase_ids: Vec<&str> = imp.rb.phases.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(phase_ids, ["checks", "checks-2", "phase", "checks-2-2"]);
    assert_eq!(imp.rb.phases[1].title, "Checks");
    assert_eq!(imp.rb.phases[2].title, "Проверка");
    assert_eq!(imp.rb.step_count(), 12);
}

#[test]
fn quotes_backslashes_and_dollar_braces_survive_verbatim() {
    let md = read(&fixture("quotes.md"));
    let imp = import_ok(&fixture("quotes.md"));
    assert_items_kept(&md, &imp.rb);
    assert_eq!(imp.rb.title, r#"Release "v2" \ the 'quoted' one"#);
    assert_eq!(imp.rb.phases[0].title, r#"Phase with "quotes" and \backslashes\"#);
    assert_eq!(
        forward_titles(&imp.rb),
        [
            r#"Run `./deploy.sh --tag "v2.0"`"#,
            r"Check C:\Program Files\app\config.ini",
            "Say ${release} and $${literal} and $HOME and ${ unterminated",
            r#"Triple """ and ''' quotes"#,
            "Brackets ]] [[phase]] and a # hash",
            "Tab\tinside and trailing spaces",
            r"Ends with a backslash \",
            "Unicode: ✓ café — 日本語",
        ]
    );
    let triggers: Vec<&str> = imp.rb.triggers.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(
        triggers,
        [r#"Latency > 2s for "10 minutes""#, r"Operator says \stop\"]
    );
    assert_eq!(
        rollback_titles(&imp.rb),
        [r#"Revert "v2" \ now"#, "Post ${channel} update"]
    );
    assert!(imp.rb.vars.is_empty(), "no [vars] needed");
}

#[test]
fn a_checklist_without_rollback_sections() {
    let md = read(&fixture("no-rollback.md"));
    let imp = import_ok(&fixture("no-rollback.md"));
    assert_items_kept(&md, &imp.rb);
    assert_eq!(forward_titles(&imp.rb), checkbox_items(&md));
    // no `#` title: the file's name is the title; flat headings make no sections
    assert_eq!(imp.rb.title, "No rollback");
    assert!(imp.rb.phases.iter().all(|p| p.section.is_none()));
    assert!(imp.rb.rollback.is_none() && imp.rb.triggers.is_empty());
    assert!(!imp.toml.contains("[rollback]") && !imp.toml.contains("[[trigger]]"));
    assert!(imp.toml.contains("watch = \"30m\""));
}

#[test]
fn rollback_sections_in_other_shapes() {
    let imp = import_ok(&fixture("rollback-variants.md"));
    let rb = &imp.rb;
    let triggers: Vec<&str> = rb.triggers.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(
        triggers,
        [
            "Error rate above 2% for 3 minutes",
            "Checkout flow failing",
            "Latency below 10ms (suspiciously fast)"
        ]
    );
    // "Rollback readiness" is work before the deploy, not the procedure
    let phases: Vec<&str> = rb.phases.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(phases, ["Steps", "Rollback readiness"]);
    let procedure = rb.rollback.as_ref().expect("a [rollback]");
    assert_eq!(procedure.title, "Rollback");
    let rphases: Vec<(&str, Vec<&str>)> = procedure
        .phases
        .iter()
        .map(|p| {
            (
                p.title.as_str(),
                p.steps.iter().map(|s| s.title.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        rphases,
        [
            (
                "Revert",
                vec!["Revert the canary", "Restore traffic to the stable pool"]
            ),
            (
                "Database / Restore snapshot",
                vec!["Stop writers", "Restore the latest snapshot"]
            ),
            ("Database", vec!["Resume writers"]),
        ]
    );
}

// ── Errors ─────────────────────────────────────────────────────────────────────────────────────

fn assert_refused(path: &str, says: &str) {
    let out = runbook(&["import", path]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "import {path}: {stderr}");
    assert!(out.stdout.is_empty(), "import {path} wrote a runbook anyway");
    assert!(
        stderr.starts_with(&format!("runbook: {path}: ")),
        "import {path}: {stderr}"
    );
    assert!(
        stderr.contains(says),
        "import {path}: {stderr:?} does not say {says:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_missing_file_is_refused() {
    assert_refused(&fixture("no-such-checklist.md"), "no such file");
}

#[test]
fn a_folder_is_refused() {
    assert_refused(FIXTURES, "is a folder");
}

#[test]
fn a_binary_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("binary.md");
    std::fs::write(&path, b"# Title\n- [ ] ok\n\xff\xfe\x00garbage").unwrap();
    assert_refused(path.to_str().unwrap(), "not a text file");
}

#[test]
fn a_checklist_without_items_is_refused() {
    assert_refused(&fixture("no-items.md"), "no checklist items");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.md");
    std::fs::write(&empty, "").unwrap();
    assert_refused(empty.to_str().unwrap(), "no checklist items");
}

#[test]
fn a_checklist_with_only_a_rollback_is_the_procedure_to_run() {
    let md = fixture("only-rollback.md");
    let out = runbook(&["import", &md]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("imported as the procedure to run"),
        "{}",
        text(&out.stderr)
    );
    let imp = import_ok(&md);
    assert!(imp.rb.rollback.is_none());
    assert_eq!(forward_titles(&imp.rb), ["Revert", "Restore"]);
}

// ── Whatever the Markdown, the import validates ────────────────────────────────────────────────

/// A small deterministic generator (no dependency needed for a few thousand checklists).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.next(from.len())]
    }
}

#[test]
fn any_checklist_imports_to_a_valid_runbook_or_is_refused() {
    const STARTS: &[&str] = &[
        "",
        "# ",
        "## ",
        "### ",
        "#### ",
        "- [ ] ",
        "* [ ] ",
        "- [x] ",
        "+ [X] ",
        "  - ",
        "    - [ ] ",
        "1. ",
        "2) ",
        "1. [ ] ",
        "- ",
        "```",
        "~~~",
        "   ",
        "\t- [ ] ",
        "===",
        "---",
        "<!-- ",
        "> ",
    ];
    const WORDS: &[&str] = &[
        "Deploy",
        "backup",
        "${x}",
        "$${y}",
        "\"q\"",
        "\\",
        "✓",
        "Проверка",
        "",
        " ",
        "\t",
        "1.",
        "#",
        "##",
        ":",
        "Rollback",
        "triggers",
        "process",
        "plan",
        "Monitor",
        "for 5 minutes",
        "[x]",
        "[ ]",
        "-",
        "*",
        "`",
        "```",
        "-->",
        "'''",
        "\u{1}",
        "\u{7f}",
        "}",
        "{",
        "=",
        "when to roll back",
        "if",
        "exceeds 1%",
        "> 2s",
        "verify",
        "\u{feff}",
        "a-very-long-word-that-goes-on-and-on-and-on-x",
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("generated.toml");
    let mut rng = Lcg(0x5eed);
    let (mut imported, mut refused) = (0, 0);
    for case in 0..3000 {
        let mut md = String::new();
        for _ in 0..rng.next(30) {
            md.push_str(rng.pick(STARTS));
            for w in 0..rng.next(6) {
                if w > 0 {
                    md.push(' ');
                }
                md.push_str(rng.pick(WORDS));
            }
            md.push_str(if rng.next(4) == 0 { "\r\n" } else { "\n" });
        }
        match runbook::runbook::import::convert("generated.md", &md) {
            Ok(runbook::runbook::import::Imported { toml, .. }) => {
                imported += 1;
                if let Err(e) = runbook::runbook::parse::parse_str(&path, &toml, &[]) {
                    panic!(
                        "case {case}: the import does not validate:\n{}\n--- markdown:\n{md}\n--- toml:\n{toml}",
                        e.render()
                    );
                }
            }
            Err(message) => {
                refused += 1;
                assert!(message.contains("checklist item"), "case {case}: {message}");
            }
        }
    }
    assert!(
        imported > 500 && refused > 100,
        "{imported} imported, {refused} refused"
    );
}

#[test]
fn code_blocks_inside_items_hold_no_items() {
    let md = "# T\n\n- [ ] Take a backup\n    ```sh\n    - [ ] not an item\n    ```\n- [ ] Deploy\n";
    let toml = runbook::runbook::import::convert("t.md", md).unwrap().toml;
    let imp = validated("code blocks", toml);
    assert_eq!(forward_titles(&imp.rb), ["Take a backup", "Deploy"]);
    let StepKind::Manual(Some(text)) = &imp.rb.phases[0].steps[0].kind else {
        panic!("the code is not in the instruction")
    };
    assert_eq!(text, "- [ ] not an item");
}

// ── Issue 10: what real runbooks need ──────────────────────────────────────────────────────────

fn issue10(name: &str) -> String {
    format!("{FIXTURES}/issue10/{name}")
}

/// The instruction of a step, or "" for `manual = true` and other kinds.
fn instruction(s: &runbook::runbook::Step) -> &str {
    match &s.kind {
        StepKind::Manual(Some(t)) => t,
        _ => "",
    }
}

fn step<'r>(rb: &'r Runbook, title: &str) -> &'r runbook::runbook::Step {
    rb.phases
        .iter()
        .chain(rb.rollback.iter().flat_map(|r| r.phases.iter()))
        .flat_map(|p| p.steps.iter())
        .find(|s| s.title == title)
        .unwrap_or_else(|| panic!("no step {title:?}"))
}

/// The stderr of an import that worked.
fn import_stderr(md: &str) -> String {
    let out = runbook(&["import", md]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stderr)
}

#[test]
fn issue10_1_only_conditions_that_call_for_a_rollback_are_triggers() {
    let imp = import_ok(&issue10("1-do-not-roll-back.md"));
    let triggers: Vec<&str> = imp.rb.triggers.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(triggers, ["API error rate > 10%"]);
    let decide = step(&imp.rb, "Decide whether to roll back");
    let text = instruction(decide);
    assert!(
        text.contains("Do NOT roll back if:\n- [ ] Minor UI glitch (fix in patch)"),
        "{text}"
    );
    assert!(
        text.contains("Consider escalation first if:\n- [ ] Performance slightly degraded (< 5%)"),
        "{text}"
    );
    assert!(text.contains("API error rate > 10%"), "{text}");
    // the decision is made where the triggers heading stands, before the rollback procedure
    assert_eq!(imp.rb.phases[1].title, "Rollback triggers");
    assert_eq!(rollback_titles(&imp.rb), ["Revert the deploy"]);
}

#[test]
fn issue10_2_numbered_and_plain_procedures_are_steps_forward_too() {
    let imp = import_ok(&issue10("2-numbered-procedures.md"));
    let phases: Vec<(&str, Vec<&str>)> = imp
        .rb
        .phases
        .iter()
        .map(|p| {
            (
                p.title.as_str(),
                p.steps.iter().map(|s| s.title.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            (
                "Release Procedure",
                vec![
                    "Tag the release",
                    "Build the artefacts",
                    "Publish the release notes"
                ]
            ),
            ("Pre-checks", vec!["Backup verified"]),
            (
                "Migration Execution",
                vec![
                    "Stop the writers",
                    "Run the migration",
                    "Check the schema version"
                ]
            ),
            (
                "Deploy steps",
                vec!["Drain the first node", "Upgrade the first node"]
            ),
            ("Post-checks", vec!["Smoke test passes"]),
        ]
    );
    assert_eq!(instruction(step(&imp.rb, "Run the migration")), "./migrate.sh up");
    // a fence written flush left under a numbered step is still that step's
    assert_eq!(
        instruction(step(&imp.rb, "Check the schema version")),
        "./migrate.sh status"
    );
    for cmd in ["systemctl stop writer", "./migrate.sh up", "./migrate.sh status"] {
        assert!(
            imp.toml.contains(&format!("# run = '{cmd}'\n")),
            "{cmd}:\n{}",
            imp.toml
        );
    }
}

#[test]
fn issue10_3_commands_are_in_the_instruction_and_suggested_only_from_the_text() {
    let imp = import_ok(&issue10("3-commands.md"));
    let toml = &imp.toml;
    assert_eq!(
        instruction(step(&imp.rb, "Kill the inactive pod")),
        "kubectl delete pod web-inactive"
    );
    assert_eq!(
        instruction(step(&imp.rb, "Check replication:")),
        "- lag under 1s\n- no errors in the log"
    );
    // an item that is one command is offered as a commented run
    assert!(
        toml.contains(
            "# run = 'kubectl delete pod web-inactive'\n[[phase.step]]\ntitle = \"Kill the inactive pod\""
        ),
        "{toml}"
    );
    assert!(
        toml.contains("# run = 'kubectl rollout status deploy/web'\n"),
        "{toml}"
    );
    // and nothing is guessed from a keyword
    for guessed in [
        "./backup.sh",
        "./run-tests.sh",
        "./verify.sh",
        "below = 0.05",
        "smoke-test",
    ] {
        assert!(!toml.contains(guessed), "{guessed} suggested:\n{toml}");
    }
    let runs = toml.lines().filter(|l| l.starts_with("# run = ")).count();
    assert_eq!(runs, 2, "{toml}");
}

#[test]
fn issue10_4_nested_items_keep_their_parents() {
    let imp = import_ok(&issue10("4-nested.md"));
    let phases: Vec<(&str, Vec<&str>)> = imp
        .rb
        .phases
        .iter()
        .map(|p| {
            (
                p.title.as_str(),
                p.steps.iter().map(|s| s.title.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            ("Release / Mock Run", vec!["Stage", "Release"]),
            (
                "Release / NoMock Run",
                vec!["Stage", "Release", "Announce / Send the email"]
            ),
        ]
    );
}

#[test]
fn issue10_5_front_matter_names_the_runbook() {
    let md = issue10("5-front-matter.md");
    let imp = import_ok(&md);
    assert_eq!(imp.rb.title, "Release");
    let phases: Vec<&str> = imp.rb.phases.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(phases, ["Checklist"]);
    assert!(!imp.toml.contains("labels"), "{}", imp.toml);
    let stderr = import_stderr(&md);
    assert!(
        stderr.contains("line 1: not imported: front matter `about`, `labels`"),
        "{stderr}"
    );
}

#[test]
fn issue10_6_a_rollback_playbook_is_the_procedure_to_run() {
    let md = issue10("6-rollback-only.md");
    let stderr = import_stderr(&md);
    assert!(stderr.contains("imported as the procedure to run"), "{stderr}");
    let imp = import_ok(&md);
    assert!(imp.rb.rollback.is_none() && imp.rb.triggers.is_empty());
    assert_eq!(
        forward_titles(&imp.rb),
        [
            "Decide whether to roll back",
            "Freeze deploys",
            "Revert to the previous release",
            "Verify the checkout flow"
        ]
    );
    assert!(instruction(step(&imp.rb, "Decide whether to roll back")).contains("Error rate above 5%"));
    assert_eq!(
        instruction(step(&imp.rb, "Revert to the previous release")),
        "./deploy.sh --rollback"
    );
}

#[test]
fn issue10_7_tables_bash_headings_checked_items_bold_headings_and_placeholders() {
    let md = issue10("7-dropped.md");
    let imp = import_ok(&md);
    let phases: Vec<(&str, Vec<&str>)> = imp
        .rb
        .phases
        .iter()
        .map(|p| {
            (
                p.title.as_str(),
                p.steps.iter().map(|s| s.title.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            ("Readiness", vec!["Backup taken", "DNS TTL lowered"]),
            ("Flush caches", vec!["Flush caches"]),
            ("Verify", vec!["Staging verified", "Production verified"]),
            ("Prep work", vec!["Warm the caches"]),
        ]
    );
    assert_eq!(instruction(step(&imp.rb, "Flush caches")), "redis-cli FLUSHALL");
    assert!(imp.toml.contains("# run = 'redis-cli FLUSHALL'"));
    assert!(instruction(step(&imp.rb, "Staging verified")).contains("Already checked"));
    assert_eq!(instruction(step(&imp.rb, "Production verified")), "");
    assert_eq!(imp.rb.phases[3].section.as_deref(), Some("Verify"));
    // nothing is dropped without a trace
    let stderr = import_stderr(&md);
    assert!(
        stderr.contains("line 20: not imported: placeholder item \"<add more items here>\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 23: not imported: paragraph under \"Notes\" \"Just prose here.\""),
        "{stderr}"
    );
}

// ── Real checklists and runbooks ───────────────────────────────────────────────────────────────

const REAL: &str = "tests/fixtures/import/real";

/// What a reader of the Markdown expects to find in the runbook, read with simple line rules,
/// independently of the importer: `- [ ]` items, numbered items and the lines of fenced code,
/// each with its line number. HTML comments and front matter are not content.
#[derive(Default)]
struct Expected {
    items: Vec<(usize, String)>,
    numbered: Vec<(usize, String)>,
    commands: Vec<(usize, String)>,
}

fn expected(md: &str) -> Expected {
    let mut e = Expected::default();
    let lines: Vec<&str> = md.lines().collect();
    let mut i = 0;
    if lines.first() == Some(&"---") {
        i = 1 + lines[1..].iter().position(|l| *l == "---").map_or(0, |p| p + 1);
    }
    let mut in_comment = false;
    let mut fence: Option<(char, usize)> = None;
    while i < lines.len() {
        let n = i + 1;
        let mut line = lines[i].to_string();
        i += 1;
        // HTML comments, whole or inline
        let mut kept = String::new();
        let mut rest = line.as_str();
        loop {
            if in_comment {
                match rest.find("-->") {
                    Some(at) => {
                        rest = &rest[at + 3..];
                        in_comment = false;
                    }
                    None => break,
                }
            } else {
                match rest.find("<!--") {
                    Some(at) => {
                        kept.push_str(&rest[..at]);
                        rest = &rest[at + 4..];
                        in_comment = true;
                    }
                    None => {
                        kept.push_str(rest);
                        break;
                    }
                }
            }
        }
        line = kept;
        let t = line.trim();
        let ch = t.chars().next().unwrap_or(' ');
        if ch == '`' || ch == '~' {
            let len = t.chars().take_while(|&c| c == ch).count();
            match fence {
                Some((c, l)) if c == ch && len >= l && t.chars().all(|x| x == ch) => {
                    fence = None;
                    continue;
                }
                None if len >= 3 => {
                    fence = Some((ch, len));
                    continue;
                }
                _ => {}
            }
        }
        if fence.is_some() {
            if !t.is_empty() {
                e.commands.push((n, t.to_string()));
            }
            continue;
        }
        let (ordered, after) = if let Some(a) = t
            .strip_prefix("- ")
            .or_else(|| t.strip_prefix("* "))
            .or_else(|| t.strip_prefix("+ "))
        {
            (false, a)
        } else {
            let digits = t.chars().take_while(char::is_ascii_digit).count();
            match t.get(digits..digits + 2) {
                Some(". " | ") ") if digits > 0 => (true, &t[digits + 2..]),
                _ => continue,
            }
        };
        let after = after.trim_start();
        // a command written in an item's words: a code span with a space in it
        for (k, span) in after.split('`').enumerate() {
            if k % 2 == 1 && span.trim().contains(' ') {
                e.commands.push((n, span.trim().to_string()));
            }
        }
        let boxed = ["[ ]", "[x]", "[X]"].iter().find_map(|b| after.strip_prefix(b));
        match boxed {
            Some(words) => e.items.push((n, words.trim().to_string())),
            None if ordered => e.numbered.push((n, after.trim().to_string())),
            None => {}
        }
    }
    e
}

/// The words of a text, lowercased, without Markdown or punctuation, for comparing a line of
/// Markdown with what the runbook shows.
fn tokens(s: &str) -> Vec<String> {
    // a link to a place in the same document shows only its text
    let mut s = s.to_string();
    while let Some(at) = s.find("](#") {
        let end = s[at..].find(')').map_or(s.len(), |e| at + e + 1);
        s.replace_range(at + 1..end, "");
    }
    let s = s
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("<br>", " ")
        .replace("<br/>", " ")
        .replace("<br />", " ");
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every text the operator sees in `plan` and the UI: phase and step titles, instructions and
/// trigger titles, each as ` word word `.
fn visible_texts(rb: &Runbook) -> Vec<String> {
    let mut out = Vec::new();
    let phases = rb
        .phases
        .iter()
        .chain(rb.rollback.iter().flat_map(|r| r.phases.iter()));
    for p in phases {
        out.push(p.title.clone());
        for s in &p.steps {
            out.push(s.title.clone());
            out.push(instruction(s).to_string());
        }
    }
    out.extend(rb.triggers.iter().map(|t| t.title.clone()));
    out.iter().map(|t| format!(" {} ", tokens(t).join(" "))).collect()
}

/// "<add more>": an item with nothing to act on, which import lists on stderr instead.
fn placeholder(words: &str) -> bool {
    let t = words.trim();
    t.is_empty() || (t.starts_with('<') && t.trim_end_matches([':', '.']).ends_with('>'))
}

#[test]
fn real_runbooks_import_valid_and_keep_every_item_step_and_command() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(REAL);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md") && n != "SOURCES.md")
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    let mut table = vec![
        "| file | items | numbered | commands | steps | kept |".to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ];
    let mut missing: Vec<String> = Vec::new();
    for name in &files {
        let md_path = format!("{REAL}/{name}");
        let md = read(&md_path);
        let imp = import_ok(&md_path);
        let stderr = import_stderr(&md_path);
        let seen = visible_texts(&imp.rb);
        let e = expected(&md);
        let wanted: Vec<&(usize, String)> = e.items.iter().chain(&e.numbered).chain(&e.commands).collect();
        let mut kept = 0;
        for (line, words) in &wanted {
            if placeholder(words) {
                assert!(
                    stderr.contains(&format!("line {line}: not imported")),
                    "{name}:{line}: {words:?} is neither imported nor listed:\n{stderr}"
                );
                kept += 1;
                continue;
            }
            let needle = format!(" {} ", tokens(words).join(" "));
            if needle.trim().is_empty() || seen.iter().any(|s| s.contains(&needle)) {
                kept += 1;
            } else {
                missing.push(format!("{name}:{line}: {words}"));
            }
        }
        let steps = imp.rb.step_count()
            + imp
                .rb
                .rollback
                .iter()
                .flat_map(|r| r.phases.iter())
                .map(|p| p.steps.len())
                .sum::<usize>();
        table.push(format!(
            "| {name} | {} | {} | {} | {steps} | {kept}/{} |",
            e.items.len(),
            e.numbered.len(),
            e.commands.len(),
            wanted.len()
        ));
    }
    eprintln!("{}", table.join("\n"));
    assert!(
        missing.is_empty(),
        "not in any step's visible text:\n{}",
        missing.join("\n")
    );
}

#[test]
fn deeply_nested_quotes_and_lists_neither_crash_nor_lose_words() {
    let quotes = format!("{}deep words\n\n# T\n\n- [ ] ok\n", "> ".repeat(50_000));
    let imported = runbook::runbook::import::convert("deep.md", &quotes).unwrap();
    validated("deep quotes", imported.toml);
    assert!(
        imported.notices.iter().any(|n| n.contains("deep words")),
        "{:?}",
        imported.notices
    );
    let lists: String = (0..1500)
        .map(|i| format!("{}- [ ] item {i}\n", "  ".repeat(i)))
        .collect();
    let imported = runbook::runbook::import::convert("deep.md", &lists).unwrap();
    let imp = validated("deep lists", imported.toml);
    let seen = visible_texts(&imp.rb).join("");
    assert!(seen.contains(" item 1499 "), "the deepest item is lost");
}
