//! What a `[[notify]]` target sends (SPEC §6), as pure functions of a journal event: the event
//! names a target may subscribe to, the fields a template sees, the one-line summary, and the
//! request body of each format (slack, json, template with minijinja).
//!
//! Shared by `parse` (a template must render against a sample of every event it is sent for) and
//! by `crate::notify`, which delivers. No I/O here, and no secret: a `${SECRET}` in a template is
//! filled in from the values the caller passes, which are masked again before anything is shown.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::model::{NotifyFormat, NotifyTarget};

/// The journal events a target may name in `on`, and `waiting`.
pub const EVENT_NAMES: &[&str] = &[
    "run_started",
    "step_started",
    "step_finished",
    "note",
    "metrics_sampled",
    "trigger_pending",
    "trigger_fired",
    "trigger_cleared",
    "trigger_acknowledged",
    "trigger_unknown",
    "fault_injected",
    "write_failed",
    "rollback_started",
    "rollback_finished",
    "rehearsal_figures",
    "run_finished",
    WAITING,
];

/// Not a journal event: the run has waited for an operator longer than `waiting_after`.
pub const WAITING: &str = "waiting";

/// `on` when a target does not say.
pub const DEFAULT_ON: &[&str] = &[
    "run_started",
    "trigger_fired",
    "rollback_started",
    "rollback_finished",
    "run_finished",
];

/// The run a notification is about, as a template sees it under `run`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunInfo {
    /// The run folder's name (`20261129T121500Z-checkout`): the same for every event of a run.
    pub id: String,
    pub runbook: String,
    pub title: String,
    pub vars: BTreeMap<String, String>,
    pub operator: String,
    pub host: String,
    /// run, rehearse or resume.
    pub mode: String,
    pub rehearsal: bool,
    /// The run folder.
    pub dir: String,
    /// When the run started (RFC 3339), and as milliseconds since the epoch.
    pub started: String,
    pub started_ms: u64,
    /// How the run ended (`succeeded`, `rolled_back`, ...): null until `run_finished`.
    pub outcome: Option<String>,
}

/// The fields a template sees for one event: the event's own fields at the top (an optional one
/// that the event lacks is null, never undefined), `event`, `ts`, `ts_ms`, `summary` and `run`.
pub fn context(record: &Value, run: &RunInfo) -> Value {
    let mut m: Map<String, Value> = record.as_object().cloned().unwrap_or_default();
    let name = m.get("event").and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(Value::Object(sample)) = sample_fields(&name) {
        for k in sample.keys() {
            m.entry(k.clone()).or_insert(Value::Null);
        }
    }
    let ts_ms = m
        .get("ts")
        .and_then(Value::as_str)
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    m.insert("ts_ms".into(), json!(ts_ms));
    let summary = summary(&Value::Object(m.clone()));
    m.insert("summary".into(), json!(summary));
    m.insert("run".into(), serde_json::to_value(run).unwrap_or(Value::Null));
    Value::Object(m)
}

/// The event in words, one line: "trigger error-rate fired (0.034): ...".
pub fn summary(ctx: &Value) -> String {
    let s = |k: &str| ctx.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let opt = |k: &str| ctx.get(k).and_then(Value::as_str).map(str::to_string);
    let value = || match ctx.get("value").and_then(Value::as_f64) {
        Some(v) => format!(" (value {v})"),
        None => String::new(),
    };
    let tail = |k: &str| opt(k).map(|r| format!(": {r}")).unwrap_or_default();
    let step = || format!("{}/{}", s("phase"), s("step"));
    match s("event").as_str() {
        "run_started" => format!(
            "{}@{} started {} ({})",
            s("operator"),
            s("host"),
            s("title"),
            s("mode")
        ),
        "step_started" => {
            let attempt = ctx.get("attempt").and_then(Value::as_u64).unwrap_or(1);
            let again = if attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            };
            format!("step {} started{again}", step())
        }
        "step_finished" => {
            let why = opt("error").or_else(|| opt("reason")).map(|r| format!(": {r}"));
            format!("step {} {}{}", step(), s("status"), why.unwrap_or_default())
        }
        "note" => format!("note by {}: {}", s("operator"), s("text")),
        "metrics_sampled" => {
            let values = ctx.get("values").and_then(Value::as_object);
            let shown: Vec<String> = values
                .into_iter()
                .flatten()
                .map(|(k, v)| match v.as_f64() {
                    Some(v) => format!("{k}={v}"),
                    None => format!("{k}=unknown"),
                })
                .collect();
            format!("metrics: {}", shown.join(", "))
        }
        "trigger_pending" => format!("trigger {} pending{}", s("trigger"), value()),
        "trigger_fired" => format!("trigger {} FIRED{}{}", s("trigger"), value(), tail("reason")),
        "trigger_cleared" => format!("trigger {} cleared{}", s("trigger"), value()),
        "trigger_acknowledged" => {
            let by = opt("operator").map(|o| format!(" by {o}")).unwrap_or_default();
            format!("trigger {} acknowledged{by}", s("trigger"))
        }
        "trigger_unknown" => format!("trigger {} unknown{}", s("trigger"), tail("error")),
        "fault_injected" => format!("fault injected by {}", s("by")),
        "write_failed" => format!("cannot write {}{}", s("file"), tail("error")),
        "rollback_started" => format!("ROLLBACK started{}", tail("reason")),
        "rollback_finished" => format!("rollback {}", s("status")),
        "rehearsal_figures" => "rehearsal figures recorded".into(),
        "run_finished" => {
            let outcome = s("outcome").replace('_', " ");
            let code = ctx.get("exit_code").and_then(Value::as_i64).unwrap_or(0);
            format!("run {outcome} (exit {code}){}", tail("reason"))
        }
        WAITING => format!(
            "waiting for an operator for {} at {} ({})",
            s("waited"),
            step(),
            s("why")
        ),
        other => other.replace('_', " "),
    }
}

/// What a target sends for an event: the body, and its default content type.
pub fn body(
    target: &NotifyTarget,
    record: &Value,
    ctx: &Value,
    secrets: &[(String, String)],
) -> Result<String, String> {
    match &target.format {
        NotifyFormat::Slack => {
            let title = ctx["run"]["title"].as_str().unwrap_or("");
            let summary = ctx["summary"].as_str().unwrap_or("");
            let run = &ctx["run"];
            let who = format!(
                "{}@{}",
                run["operator"].as_str().unwrap_or(""),
                run["host"].as_str().unwrap_or("")
            );
            // run_started says who already.
            let text = if ctx["event"] == "run_started" {
                format!("*{}* · {summary}", slack_escape(title))
            } else {
                format!("*{}* · {summary} · {who}", slack_escape(title))
            };
            Ok(json!({ "text": text }).to_string())
        }
        NotifyFormat::Json => Ok(record.to_string()),
        NotifyFormat::Template(t) => render(t, ctx, secrets),
    }
}

/// Slack's own escapes in message text: `&`, `<`, `>`.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Renders a template against an event's context. `${NAME}` of a secret stands for its value (it
/// becomes a template variable, so that text from an event is never searched for references).
/// An undefined name is an error when it is printed (`{% if x %}` and `x|default` are fine).
pub fn render(template: &str, ctx: &Value, secrets: &[(String, String)]) -> Result<String, String> {
    let mut source = template.to_string();
    let mut values = Map::new();
    for (name, value) in secrets {
        let reference = format!("${{{name}}}");
        if source.contains(&reference) {
            source = source.replace(&reference, &format!("{{{{ __secrets[\"{name}\"] }}}}"));
            values.insert(name.clone(), json!(value));
        }
    }
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    env.add_filter("json_escape", json_escape);
    env.add_filter("tojson", tojson);
    let tmpl = env.template_from_str(&source).map_err(describe)?;
    let mut ctx = ctx.clone();
    if let Value::Object(m) = &mut ctx {
        m.insert("__secrets".into(), Value::Object(values));
    }
    tmpl.render(minijinja::value::Serde(&ctx)).map_err(describe)
}

/// `{{ x|tojson }}`: the value as JSON (a string with its quotes). Unlike the built-in one, an
/// undefined name is an error, not `null`: a misspelt field is found by `validate`.
fn tojson(value: minijinja::Value) -> Result<minijinja::Value, minijinja::Error> {
    if value.is_undefined() {
        return Err(minijinja::Error::from(minijinja::ErrorKind::UndefinedError));
    }
    serde_json::to_string(&value)
        .map(minijinja::Value::from_safe_string)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))
}

/// `{{ text|json_escape }}`: the text escaped for the inside of a JSON string (no quotes around it;
/// `tojson` gives a whole JSON value, quotes included). None is the empty text.
fn json_escape(value: minijinja::Value) -> Result<String, minijinja::Error> {
    if value.is_undefined() {
        return Err(minijinja::Error::from(minijinja::ErrorKind::UndefinedError));
    }
    let text = match value.as_str() {
        Some(s) => s.to_string(),
        None if value.is_none() => String::new(),
        None => value.to_string(),
    };
    let quoted = serde_json::to_string(&text).unwrap_or_default();
    Ok(quoted[1..quoted.len() - 1].to_string())
}

/// A template error in a sentence, with its line in the template.
fn describe(e: minijinja::Error) -> String {
    let mut s = match e.detail() {
        Some(d) => format!("{}: {d}", kind_words(e.kind())),
        None => kind_words(e.kind()).to_string(),
    };
    if let Some(line) = e.line() {
        s.push_str(&format!(" (template line {line})"));
    }
    s
}

fn kind_words(k: minijinja::ErrorKind) -> String {
    use minijinja::ErrorKind as K;
    match k {
        K::UndefinedError => "undefined value".into(),
        K::SyntaxError => "syntax error".into(),
        K::UnknownFilter => "unknown filter".into(),
        K::UnknownFunction => "unknown function".into(),
        K::UnknownTest => "unknown test".into(),
        K::InvalidOperation => "invalid operation".into(),
        other => format!("{other}").to_lowercase(),
    }
}

/// The line of a template error, when it says.
pub fn error_line(message: &str) -> Option<usize> {
    let at = message.rfind("(template line ")?;
    message[at + 15..].trim_end_matches(')').parse().ok()
}

/// A sample of an event (its every field, free text with a quote and a backslash in it), as a
/// journal line reads: what `validate` renders a template against.
pub fn sample(name: &str) -> Option<Value> {
    let mut m = match sample_fields(name)? {
        Value::Object(m) => m,
        _ => return None,
    };
    let mut out = Map::new();
    out.insert("ts".into(), json!("2026-01-01T03:00:00.000Z"));
    out.insert("event".into(), json!(name));
    out.append(&mut m);
    Some(Value::Object(out))
}

/// Every field of each event, with a sample value.
fn sample_fields(name: &str) -> Option<Value> {
    let text = r#"say "why" \ here"#;
    Some(match name {
        "run_started" => {
            json!({"runbook": "checkout", "title": "Production rollout", "file": "/srv/runbooks/checkout.toml",
            "sha256": "0".repeat(64), "operator": "alice", "host": "bastion", "mode": "run",
            "vars": {"release": "v2.14.0"}, "pid": 4242})
        }
        "step_started" => json!({"phase": "app-deploy", "step": "canary", "attempt": 1, "rollback": false}),
        "step_finished" => json!({"phase": "app-deploy", "step": "canary", "attempt": 1, "rollback": false,
            "status": "failed", "duration_ms": 1500, "exit_code": 1, "http_status": 503, "log": "logs/app-deploy.canary.1.log",
            "by": "alice", "metrics": {"error_rate": 0.002}, "reason": text, "error": text}),
        "note" => json!({"text": text, "operator": "alice"}),
        "metrics_sampled" => json!({"values": {"error_rate": 0.002}, "errors": {"latency": text}}),
        "trigger_pending" | "trigger_cleared" => json!({"trigger": "error-rate", "value": 0.034}),
        "trigger_fired" => json!({"trigger": "error-rate", "value": 0.034, "reason": text}),
        "trigger_acknowledged" => json!({"trigger": "error-rate", "value": 0.034, "operator": "alice"}),
        "trigger_unknown" => json!({"trigger": "error-rate", "error": text}),
        "fault_injected" => json!({"by": "alice"}),
        "write_failed" => json!({"file": "logs/x.log", "error": text}),
        "rollback_started" => json!({"reason": text}),
        "rollback_finished" => json!({"status": "succeeded"}),
        "rehearsal_figures" => json!({"fired_to_decision_ms": 1200, "rollback_ms": 30000}),
        "run_finished" => json!({"outcome": "rolled_back", "exit_code": 3, "reason": text}),
        WAITING => {
            json!({"phase": "app-deploy", "step": "canary", "why": "go-ahead", "waited": "2m", "waited_s": 120})
        }
        _ => return None,
    })
}

/// A sample run for `validate`, with the runbook's own title and vars.
pub fn sample_run(title: &str, vars: &[(String, String)], event: &str) -> RunInfo {
    RunInfo {
        id: "20260101T030000Z-sample".into(),
        runbook: "sample".into(),
        title: title.into(),
        vars: vars.iter().cloned().collect(),
        operator: "alice".into(),
        host: "bastion".into(),
        mode: "run".into(),
        rehearsal: false,
        dir: "/var/lib/runbook/runs/20260101T030000Z-sample".into(),
        started: "2026-01-01T02:50:00.000Z".into(),
        started_ms: 1_767_235_800_000,
        outcome: (event == "run_finished").then(|| "rolled_back".into()),
    }
}

/// The `## Notifications` part of `plan`: each target, its format and method, and the events it is
/// sent. Never its url or headers: they usually hold a secret.
pub fn outline(targets: &[NotifyTarget]) -> String {
    if targets.is_empty() {
        return String::new();
    }
    let mut o = String::from("\n## Notifications\n");
    for t in targets {
        let format = match t.format {
            NotifyFormat::Slack => "slack",
            NotifyFormat::Json => "json",
            NotifyFormat::Template(_) => "template",
        };
        let on: Vec<String> =
            t.on.iter()
                .map(|e| {
                    if e == WAITING {
                        format!(
                            "waiting (after {})",
                            crate::duration::format_duration(t.waiting_after)
                        )
                    } else {
                        e.clone()
                    }
                })
                .collect();
        o.push_str(&format!(
            "  {:<16} {format}, {}; on {}\n",
            t.id,
            t.method,
            on.join(", ")
        ));
    }
    o
}

/// Whether the target's headers set a Content-Type (else a body is sent as `application/json`).
pub fn content_type(target: &NotifyTarget) -> Option<&str> {
    target
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(format: NotifyFormat) -> NotifyTarget {
        NotifyTarget {
            id: "t".into(),
            url: "http://127.0.0.1:1/".into(),
            format,
            on: vec![],
            headers: vec![],
            method: "POST".into(),
            waiting_after: std::time::Duration::from_secs(120),
        }
    }

    #[test]
    fn templates_see_the_event_the_run_and_secrets_and_escape_json() {
        let record = sample("trigger_fired").unwrap();
        let ctx = context(
            &record,
            &sample_run("Roll \"out\"", &[("release".into(), "v2".into())], "x"),
        );
        let t = target(NotifyFormat::Template(
            r#"{"t": {{ run.title|tojson }}, "r": "{{ reason|json_escape }}", "v": {{ value }}, "k": "${KEY}", "rel": "{{ run.vars.release }}", "ms": {{ ts_ms }}}"#.into(),
        ));
        let secrets = [("KEY".to_string(), "s3cr3t".to_string())];
        let out = body(&t, &record, &ctx, &secrets).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["t"], "Roll \"out\"");
        assert_eq!(v["r"], r#"say "why" \ here"#);
        assert_eq!(v["v"], 0.034);
        assert_eq!(v["k"], "s3cr3t");
        assert_eq!(v["rel"], "v2");
        assert_eq!(v["ms"], 1_767_236_400_000u64);
    }

    #[test]
    fn an_undefined_name_printed_is_an_error_with_its_line_but_a_test_of_it_is_not() {
        let ctx = context(
            &sample("run_started").unwrap(),
            &sample_run("T", &[], "run_started"),
        );
        let e = render("ok\n{{ trigerr }}", &ctx, &[]).unwrap_err();
        assert!(e.starts_with("undefined value"), "{e}");
        assert_eq!(error_line(&e), Some(2));
        assert_eq!(render("{% if trigerr %}x{% endif %}-", &ctx, &[]).unwrap(), "-");
        // A field the event lacks is null, not undefined: `{{ value }}` of a check trigger.
        let fired = json!({"ts": "2026-01-01T00:00:00.000Z", "event": "trigger_fired", "trigger": "smoke"});
        let ctx = context(&fired, &RunInfo::default());
        assert_eq!(
            render("{{ value }}|{{ reason|tojson }}", &ctx, &[]).unwrap(),
            "None|null"
        );
    }

    #[test]
    fn event_text_is_never_searched_for_secret_references() {
        let note =
            json!({"ts": "2026-01-01T00:00:00.000Z", "event": "note", "text": "${KEY}", "operator": "a"});
        let ctx = context(&note, &RunInfo::default());
        let secrets = [("KEY".to_string(), "s3cr3t".to_string())];
        assert_eq!(render("{{ text }}", &ctx, &secrets).unwrap(), "${KEY}");
    }

    #[test]
    fn slack_and_json_bodies() {
        let record = sample("run_finished").unwrap();
        let ctx = context(&record, &sample_run("Checkout <prod>", &[], "run_finished"));
        let out = body(&target(NotifyFormat::Slack), &record, &ctx, &[]).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["text"],
            r#"*Checkout &lt;prod&gt;* · run rolled back (exit 3): say "why" \ here · alice@bastion"#
        );
        let out = body(&target(NotifyFormat::Json), &record, &ctx, &[]).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), record);
    }

    #[test]
    fn every_event_name_has_a_sample() {
        for name in EVENT_NAMES {
            assert!(sample(name).is_some(), "{name}");
        }
    }
}
