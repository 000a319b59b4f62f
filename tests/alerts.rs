//! Alert triggers (SPEC §7) against a real Prometheus with a rules file and a real Alertmanager,
//! both Debian's packages started on loopback by the tests (`.ci/run` installs them), and the real
//! `runbook` binary watching them headless:
//!
//! - a rule going pending then firing drives the trigger through the same states, each within one
//!   poll of Prometheus', with the firing alert's labels and value journaled; a trigger whose
//!   labels match no alert stays quiet;
//! - an alert silenced in Alertmanager keeps the trigger ok, while an unsilenced one fires;
//! - Alertmanager going down is `unknown`, and `on_no_data` decides (warn goes on, rollback rolls
//!   back);
//! - `validate` refuses what an alert trigger cannot mean, at FILE:LINE:COLUMN.
//!
//! These tests fail, never skip, when Prometheus or Alertmanager is missing.

mod common;

use std::time::{Duration, SystemTime};

use common::prometheus::{
    Alertmanager, Exporter, Prometheus, Run, Setup, echo_rollback, http_get, ms, ts, watching,
};
use common::{Fixture, events};
use serde_json::Value;

/// A runbook polling every second with the triggers in `body`, one `watch` step, and a rollback
/// that echoes.
fn runbook(url: Option<&str>, body: &str, watch: &str) -> String {
    echo_rollback(watching("Alert trigger test", url, body, watch))
}

/// The rule every test uses: errors above 5 for `for_`, labelled with the series' service.
fn rules(for_: &str) -> String {
    format!(
        r#"groups:
  - name: checkout
    interval: 1s
    rules:
      - alert: CheckoutErrors
        expr: demo_errors > 5
        for: {for_}
        labels:
          severity: page
"#
    )
}

/// The state of the first `CheckoutErrors{service="checkout"}` in Prometheus' `/api/v1/alerts`.
fn prometheus_state(prom: &Prometheus) -> Option<String> {
    let (_, body) = http_get(prom.port, "/api/v1/alerts").ok()?;
    let v: Value = serde_json::from_str(&body).ok()?;
    v["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == "CheckoutErrors" && a["labels"]["service"] == "checkout")
        .and_then(|a| a["state"].as_str().map(str::to_string))
}

#[test]
fn a_rule_going_pending_then_firing_drives_the_trigger_through_the_same_states_within_a_poll() {
    let exporter = Exporter::start();
    exporter.set_all(&[
        (r#"demo_errors{service="checkout"}"#, 0.0),
        (r#"demo_errors{service="cart"}"#, 0.0),
    ]);
    let prom = Prometheus::start_with(&Setup {
        target: Some(exporter.target()),
        rules: Some(rules("4s")),
        ..Setup::default()
    });
    let dir = Fixture::new();
    let body = r#"
[[trigger]]
id = "checkout-errors"
title = "Checkout error alert"
alert = "CheckoutErrors"
labels = { service = "checkout" }

[[trigger]]
id = "search-errors"
title = "Search error alert (no such service here)"
alert = "CheckoutErrors"
labels = { service = "search" }
"#;
    let file = dir.write("alert.toml", &runbook(Some(&prom.url()), body, "60s"));
    let mut run = Run::start(&file, &dir.path().join("state"), &[]);
    run.wait_journal("the watch to start", Duration::from_secs(15), |j| {
        !events(j, "step_started").is_empty()
    });
    // Let a few polls see nothing first.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        run.journal()
            .iter()
            .all(|e| !e["event"].as_str().unwrap_or("").starts_with("trigger_"))
    );

    exporter.set(r#"demo_errors{service="checkout"}"#, 12.0);
    // Watch Prometheus' own view, 50 ms apart: when did it say pending, when firing?
    let mut pending_at: Option<SystemTime> = None;
    let mut firing_at: Option<SystemTime> = None;
    let watched = common::wait_for(Duration::from_secs(30), || {
        let now = SystemTime::now();
        match prometheus_state(&prom).as_deref() {
            Some("pending") => {
                pending_at.get_or_insert(now);
            }
            Some("firing") => {
                pending_at.get_or_insert(now);
                firing_at.get_or_insert(now);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(30));
        firing_at.is_some()
    });
    assert!(watched, "Prometheus never fired the alert:\n{}", prom.log());
    let f = run.wait(Duration::from_secs(30));

    f.expect_code(3);
    assert_eq!(f.event("rollback_started")["reason"], "trigger:checkout-errors");
    let trace: Vec<String> = f
        .journal
        .iter()
        .filter(|e| e["event"].as_str().unwrap_or("").starts_with("trigger_"))
        .map(|e| {
            format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["trigger"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        trace,
        ["trigger_pending checkout-errors", "trigger_fired checkout-errors"],
        "the matching trigger follows the alert; the other one never moves\n{}",
        f.context()
    );
    let pending = f.event("trigger_pending");
    let fired = f.event("trigger_fired");
    assert_eq!(pending["value"], 12.0, "{}", f.context());
    assert_eq!(fired["value"], 12.0, "{}", f.context());
    assert_eq!(
        fired["labels"],
        serde_json::json!({
            "alertname": "CheckoutErrors",
            "instance": exporter.target(),
            "job": "demo",
            "service": "checkout",
            "severity": "page"
        }),
        "{}",
        f.context()
    );
    let reason = fired["reason"].as_str().unwrap_or_default();
    assert_eq!(
        reason,
        format!(
            r#"alert CheckoutErrors{{instance="{}", job="demo", service="checkout", severity="page"}} is firing"#,
            exporter.target()
        ),
        "{}",
        f.context()
    );
    assert!(
        f.stdout.contains(reason),
        "the headless output names the alert's labels\n{}",
        f.context()
    );
    // Within one poll (1 s) of Prometheus, plus the time a request takes. The test looks every
    // ~50 ms, so runbook may be a little ahead of it.
    let (p, fi) = (pending_at.unwrap(), firing_at.unwrap());
    for (what, prom_at, event) in [("pending", p, pending), ("firing", fi, fired)] {
        let lag = ms(prom_at, ts(event));
        assert!(
            (-250..=1500).contains(&lag),
            "trigger {what} {lag} ms after Prometheus said so\n{}",
            f.context()
        );
    }
    // The rule's own `for` (4 s) separates them, as it does in Prometheus.
    let apart = ms(ts(pending), ts(fired));
    assert!(
        (2800..=5300).contains(&apart),
        "pending to fired took {apart} ms, the rule says 4s\n{}",
        f.context()
    );
}

/// Alertmanager and a Prometheus sending it the rule's alerts, both series above the threshold;
/// returns once Alertmanager holds both alerts.
fn firing_in_alertmanager() -> (Exporter, Alertmanager, Prometheus) {
    let exporter = Exporter::start();
    exporter.set_all(&[
        (r#"demo_errors{service="checkout"}"#, 9.0),
        (r#"demo_errors{service="cart"}"#, 9.0),
    ]);
    let am = Alertmanager::start();
    let prom = Prometheus::start_with(&Setup {
        target: Some(exporter.target()),
        rules: Some(rules("0s")),
        alertmanager: Some(am.port),
        ..Setup::default()
    });
    let both = common::wait_for(Duration::from_secs(30), || am.alerts("CheckoutErrors").len() == 2);
    assert!(
        both,
        "Alertmanager did not receive both alerts: {:?}\n{}",
        am.alerts("CheckoutErrors"),
        prom.log()
    );
    (exporter, am, prom)
}

fn alertmanager_trigger(am: &str, service: &str, on_no_data: &str) -> String {
    format!(
        r#"
[[trigger]]
id = "errors"
title = "Error alert from Alertmanager"
alert = "CheckoutErrors"
labels = {{ service = "{service}" }}
source = "alertmanager"
alertmanager = "{am}"
on_no_data = "{on_no_data}"
"#
    )
}

#[test]
fn a_silence_in_alertmanager_keeps_the_trigger_ok_while_an_unsilenced_alert_fires() {
    let (_exporter, am, _prom) = firing_in_alertmanager();
    am.silence("CheckoutErrors", &[("service", "checkout")]);
    let silenced = common::wait_for(Duration::from_secs(10), || {
        am.alerts("CheckoutErrors")
            .iter()
            .any(|a| a["labels"]["service"] == "checkout" && a["status"]["state"] == "suppressed")
    });
    assert!(
        silenced,
        "the silence did not take: {:?}",
        am.alerts("CheckoutErrors")
    );

    let dir = Fixture::new();
    let silenced_rb = dir.write(
        "silenced.toml",
        &runbook(None, &alertmanager_trigger(&am.url(), "checkout", "warn"), "4s"),
    );
    let f = Run::start(&silenced_rb, &dir.path().join("state-silenced"), &[]).wait(Duration::from_secs(30));
    f.expect_code(0);
    for bad in [
        "trigger_pending",
        "trigger_fired",
        "trigger_unknown",
        "rollback_started",
    ] {
        assert!(!f.has(bad), "a silenced alert gave {bad}\n{}", f.context());
    }
    // The alert fired in Alertmanager the whole time: it is the silence that kept the trigger ok.
    assert!(
        am.alerts("CheckoutErrors")
            .iter()
            .any(|a| a["labels"]["service"] == "checkout" && a["status"]["state"] == "suppressed"),
        "{:?}",
        am.alerts("CheckoutErrors")
    );

    let open = dir.write(
        "open.toml",
        &runbook(None, &alertmanager_trigger(&am.url(), "cart", "warn"), "20s"),
    );
    let f = Run::start(&open, &dir.path().join("state-open"), &[]).wait(Duration::from_secs(30));
    f.expect_code(3);
    let fired = f.event("trigger_fired");
    assert_eq!(fired["trigger"], "errors");
    assert_eq!(fired["labels"]["service"], "cart", "{}", f.context());
    assert_eq!(fired["labels"]["severity"], "page", "{}", f.context());
    assert!(fired.get("value").is_none(), "Alertmanager has no value: {fired}");
    assert_eq!(f.event("rollback_started")["reason"], "trigger:errors");
}

#[test]
fn alertmanager_down_is_unknown_and_obeys_on_no_data() {
    let (_exporter, mut am, _prom) = firing_in_alertmanager();
    // The silenced alert keeps the trigger ok while Alertmanager is up.
    am.silence("CheckoutErrors", &[("service", "checkout")]);
    assert!(common::wait_for(Duration::from_secs(10), || {
        am.alerts("CheckoutErrors")
            .iter()
            .any(|a| a["labels"]["service"] == "checkout" && a["status"]["state"] == "suppressed")
    }));
    let dir = Fixture::new();
    let warn = dir.write(
        "warn.toml",
        &runbook(None, &alertmanager_trigger(&am.url(), "checkout", "warn"), "8s"),
    );
    let rollback = dir.write(
        "rollback.toml",
        &runbook(
            None,
            &alertmanager_trigger(&am.url(), "checkout", "rollback"),
            "30s",
        ),
    );
    let mut warn_run = Run::start(&warn, &dir.path().join("state-warn"), &[]);
    let mut rollback_run = Run::start(&rollback, &dir.path().join("state-rollback"), &[]);
    for run in [&mut warn_run, &mut rollback_run] {
        run.wait_journal("the watch to start", Duration::from_secs(15), |j| {
            !events(j, "step_started").is_empty()
        });
    }
    std::thread::sleep(Duration::from_millis(1500));
    am.kill();

    let f = warn_run.wait(Duration::from_secs(30));
    f.expect_code(0);
    let unknown = f.events("trigger_unknown");
    assert_eq!(unknown.len(), 1, "unknown, said once\n{}", f.context());
    assert!(
        unknown[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("cannot reach Alertmanager at {}", am.url())),
        "{}",
        f.context()
    );
    assert!(!f.has("trigger_fired"), "warn never fires\n{}", f.context());

    let f = rollback_run.wait(Duration::from_secs(30));
    f.expect_code(3);
    let names: Vec<&str> = f
        .journal
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|n| n.starts_with("trigger_") || *n == "rollback_started")
        .collect();
    assert_eq!(
        names,
        ["trigger_unknown", "trigger_fired", "rollback_started"],
        "one failed poll is shown, the second in a row rolls back\n{}",
        f.context()
    );
    let reason = f.event("trigger_fired")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("cannot reach Alertmanager") && reason.contains("on_no_data = \"rollback\""),
        "{reason}"
    );
    let gap = ms(ts(f.event("trigger_unknown")), ts(f.event("trigger_fired")));
    assert!(
        (700..=2500).contains(&gap),
        "fired {gap} ms after unknown\n{}",
        f.context()
    );
}

/// `runbook validate` on `text`: exit 2 and exactly these `LINE:COL: message` problems.
fn refused(text: &str, expected: &[(usize, usize, &str)]) {
    let dir = Fixture::new();
    let file = dir.write("bad.toml", text);
    let out = common::runbook(&["validate", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let prefix = format!("{}:", file.display());
    let found: Vec<String> = stderr
        .lines()
        .filter(|l| l.starts_with(&prefix) && !l.ends_with("nothing was run"))
        .map(|l| l[prefix.len()..].to_string())
        .collect();
    let want: Vec<String> = expected.iter().map(|(l, c, m)| format!("{l}:{c}: {m}")).collect();
    assert_eq!(found, want, "\n{stderr}");
}

const HEAD: &str = "[runbook]\ntitle = \"T\"\n\n[metrics]\nurl = \"http://127.0.0.1:9090\"\n\n[[metric]]\nid = \"m\"\ntitle = \"M\"\nquery = \"up\"\n\n";
const TAIL: &str = "\n[[phase]]\ntitle = \"P\"\n\n[[phase.step]]\ntitle = \"S\"\nrun = \"true\"\n";

#[test]
fn validate_refuses_what_an_alert_trigger_cannot_mean() {
    // Lines: the trigger table starts on line 12.
    refused(
        &format!(
            "{HEAD}[[trigger]]\ntitle = \"Mixed\"\nalert = \"Burn\"\nmetric = \"m\"\nabove = 1\nfor = \"5m\"\n{TAIL}"
        ),
        &[
            (
                15,
                10,
                "trigger `mixed` follows alert `Burn`: `metric` belongs to metric and check triggers; a trigger watches one thing",
            ),
            (
                16,
                9,
                "trigger `mixed` follows alert `Burn`: `above` belongs to metric and check triggers; a trigger watches one thing",
            ),
            (
                17,
                7,
                "`for` of alert trigger `mixed` is the alerting rule's own: set it in the rule, where Prometheus applies it",
            ),
        ],
    );
    refused(
        &format!(
            "{HEAD}[[trigger]]\ntitle = \"AM\"\nalert = \"Burn\"\nsource = \"alertmanagr\"\nlabels = {{ alertname = \"x\", 9x = \"y\" }}\n{TAIL}"
        ),
        &[
            (
                15,
                10,
                "source `alertmanagr` is not one of \"prometheus\", \"alertmanager\"; did you mean `alertmanager`?",
            ),
            (
                16,
                12,
                "the alert's name is `alert` (trigger `am`), not a label matcher",
            ),
            (
                16,
                29,
                "label name `9x` must be letters, digits and _, not starting with a digit",
            ),
        ],
    );
    refused(
        &format!("{HEAD}[[trigger]]\ntitle = \"AM\"\nalert = \"Burn\"\nsource = \"alertmanager\"\n{TAIL}"),
        &[(
            15,
            10,
            "trigger `am` reads an Alertmanager: it needs `alertmanager = \"http://HOST:9093\"`",
        )],
    );
    refused(
        &format!("{HEAD}[[trigger]]\ntitle = \"Check\"\ncheck = \"true\"\nlabels = {{ a = \"b\" }}\n{TAIL}"),
        &[(
            15,
            10,
            "`labels` belongs to alert triggers, and trigger `check` has no `alert`",
        )],
    );
    let no_url = "[runbook]\ntitle = \"T\"\n\n[[trigger]]\ntitle = \"Burn\"\nalert = \"Burn\"\n";
    refused(
        &format!("{no_url}{TAIL}"),
        &[(
            6,
            9,
            "alert trigger `burn` reads Prometheus' alerts, and there is no [metrics] url: set it (--prometheus overrides it for a run), or give `alertmanager = URL`",
        )],
    );
}
