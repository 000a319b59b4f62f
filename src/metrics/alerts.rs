//! Alert triggers (SPEC §7): reading the alerts a team's own rules raise, from Prometheus
//! (`/api/v1/alerts`: pending and firing) or from an Alertmanager (`/api/v2/alerts`: active, not
//! silenced, not inhibited), picking those a trigger matches, and what such a reading does to the
//! trigger's state (`Watched::observe_alert`, pure, beside the metric and check triggers').
//!
//! The rule decides when its alert fires (its expression, its `for`): a trigger follows it, it
//! does not time anything itself. A pending alert makes the trigger pending, a firing one fires
//! it, no matching alert is ok. An API that cannot be read is a failed query, exactly as for a
//! metric: `unknown` for that poll, and `on_no_data` decides when it holds or rolls back.
//! The engine polls (`engine::alerts`); this module does one request and its reading.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::triggers::{State, Transition, Watched};
use crate::runbook::{AlertSource, AlertTrigger, TriggerKind};

/// The largest alerts list read. A busy Prometheus lists a few thousand alerts in well under this.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// One alert as an API listed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub firing: bool,
    /// Every label of the alert, `alertname` included.
    pub labels: BTreeMap<String, String>,
    /// The rule expression's value when the alert was evaluated (Prometheus only).
    pub value: Option<f64>,
    /// Since when it is pending or firing.
    pub active_at: Option<SystemTime>,
}

/// What one poll of a trigger's alerts found.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertReading {
    /// The API answered, and no alert it lists matches the trigger.
    Clear,
    /// A matching alert is pending (in Prometheus), none fires.
    Pending(Alert),
    /// A matching alert fires: the one firing longest, and how many fire.
    Firing { alert: Alert, count: usize },
    /// The API could not be read; the message says how.
    Error(String),
}

impl AlertReading {
    /// The labels journaled with `trigger_fired`: those of the firing alert.
    pub fn firing_labels(&self) -> Option<BTreeMap<String, String>> {
        match self {
            AlertReading::Firing { alert, .. } => Some(alert.labels.clone()),
            _ => None,
        }
    }
}

/// Whether an alert is the trigger's: its name, and every label matcher exactly.
pub fn matches(spec: &AlertTrigger, labels: &BTreeMap<String, String>) -> bool {
    labels.get("alertname").map(String::as_str) == Some(spec.alert.as_str())
        && spec
            .labels
            .iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == Some(v.as_str()))
}

/// The reading from the trigger's alerts: firing beats pending; among several, the one active
/// longest (then the highest value) is the one shown.
pub fn pick(alerts: Vec<Alert>) -> AlertReading {
    let count = alerts.iter().filter(|a| a.firing).count();
    let first = |mut v: Vec<Alert>| {
        v.sort_by(|a, b| {
            let at = |x: &Alert| x.active_at.unwrap_or(SystemTime::UNIX_EPOCH);
            at(a).cmp(&at(b)).then(
                b.value
                    .unwrap_or(f64::NEG_INFINITY)
                    .total_cmp(&a.value.unwrap_or(f64::NEG_INFINITY)),
            )
        });
        v.into_iter().next()
    };
    let (firing, pending): (Vec<Alert>, Vec<Alert>) = alerts.into_iter().partition(|a| a.firing);
    match (first(firing), first(pending)) {
        (Some(alert), _) => AlertReading::Firing { alert, count },
        (None, Some(alert)) => AlertReading::Pending(alert),
        (None, None) => AlertReading::Clear,
    }
}

/// What an operator reads about the firing alert: its name, its labels, how many fire.
pub fn firing_reason(alert: &Alert, count: usize) -> String {
    let labels: Vec<String> = alert
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    let name = alert.labels.get("alertname").map_or("?", String::as_str);
    let more = if count > 1 {
        format!(" (and {} more firing)", count - 1)
    } else {
        String::new()
    };
    format!("alert {name}{{{}}} is firing{more}", labels.join(", "))
}

fn rfc3339(v: &serde_json::Value) -> Option<SystemTime> {
    v.as_str().and_then(|s| humantime::parse_rfc3339_weak(s).ok())
}

fn labels_of(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn not_json(what: &str, status: u16, body: &[u8]) -> AlertReading {
    let snippet: String = String::from_utf8_lossy(&body[..body.len().min(80)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    AlertReading::Error(format!(
        "{what} answered HTTP {status} with something that is not JSON: {snippet:?}"
    ))
}

/// An answer of Prometheus' `/api/v1/alerts`, for one trigger.
pub fn parse_prometheus(spec: &AlertTrigger, status: u16, body: &[u8]) -> AlertReading {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return not_json("Prometheus", status, body);
    };
    if json["status"] != "success" {
        let kind = json["errorType"].as_str().unwrap_or("error");
        let msg = json["error"].as_str().unwrap_or("no message");
        return AlertReading::Error(format!("Prometheus {kind} (HTTP {status}): {msg}"));
    }
    let Some(list) = json["data"]["alerts"].as_array() else {
        return AlertReading::Error(format!(
            "Prometheus' answer (HTTP {status}) has no data.alerts list"
        ));
    };
    let alerts = list
        .iter()
        .filter_map(|a| {
            let labels = labels_of(&a["labels"]);
            let firing = match a["state"].as_str() {
                Some("firing") => true,
                Some("pending") => false,
                _ => return None,
            };
            matches(spec, &labels).then(|| Alert {
                firing,
                labels,
                value: a["value"].as_str().and_then(|v| v.parse::<f64>().ok()),
                active_at: rfc3339(&a["activeAt"]),
            })
        })
        .collect();
    pick(alerts)
}

/// An answer of Alertmanager's `/api/v2/alerts`, for one trigger. Only `active` alerts count:
/// a suppressed (silenced or inhibited) one does not, and neither does one not yet processed,
/// whose silences are not known yet.
pub fn parse_alertmanager(spec: &AlertTrigger, status: u16, body: &[u8]) -> AlertReading {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return not_json("Alertmanager", status, body);
    };
    if !(200..300).contains(&status) {
        let msg = json
            .as_str()
            .or_else(|| json["message"].as_str())
            .unwrap_or("no message");
        return AlertReading::Error(format!("Alertmanager answered HTTP {status}: {msg}"));
    }
    let Some(list) = json.as_array() else {
        return AlertReading::Error(format!(
            "Alertmanager's answer (HTTP {status}) is not a list of alerts"
        ));
    };
    let alerts = list
        .iter()
        .filter_map(|a| {
            let labels = labels_of(&a["labels"]);
            let active = a["status"]["state"].as_str() == Some("active");
            (active && matches(spec, &labels)).then(|| Alert {
                firing: true,
                labels,
                value: None,
                active_at: rfc3339(&a["startsAt"]),
            })
        })
        .collect();
    pick(alerts)
}

/// One trigger's alerts, read from one API.
pub struct AlertQuery {
    pub client: reqwest::Client,
    pub spec: AlertTrigger,
    /// The Prometheus base URL (for `source = "prometheus"`).
    pub prometheus: Option<String>,
    /// Request headers for Prometheus (`[metrics] headers`, secrets resolved).
    pub headers: Vec<(String, String)>,
}

impl AlertQuery {
    pub async fn read(&self) -> AlertReading {
        let (what, base, url) = match &self.spec.source {
            AlertSource::Prometheus => {
                let Some(base) = self.prometheus.as_deref() else {
                    return AlertReading::Error(
                        "there is no Prometheus to read alerts from: set [metrics] url or pass --prometheus"
                            .into(),
                    );
                };
                let endpoint = format!("{}/api/v1/alerts", base.trim_end_matches('/'));
                (
                    "Prometheus",
                    base,
                    reqwest::Url::parse(&endpoint)
                        .map_err(|e| format!("invalid Prometheus url {endpoint}: {e}")),
                )
            }
            AlertSource::Alertmanager(base) => {
                let endpoint = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
                let mut params = vec![
                    ("active".to_string(), "true".to_string()),
                    ("silenced".to_string(), "false".to_string()),
                    ("inhibited".to_string(), "false".to_string()),
                    (
                        "filter".to_string(),
                        format!("alertname={}", quoted(&self.spec.alert)),
                    ),
                ];
                for (k, v) in &self.spec.labels {
                    params.push(("filter".to_string(), format!("{k}={}", quoted(v))));
                }
                (
                    "Alertmanager",
                    base.as_str(),
                    reqwest::Url::parse_with_params(&endpoint, params)
                        .map_err(|e| format!("invalid Alertmanager url {endpoint}: {e}")),
                )
            }
        };
        let url = match url {
            Ok(u) => u,
            Err(e) => return AlertReading::Error(e),
        };
        let mut req = self.client.get(url);
        if self.spec.source == AlertSource::Prometheus {
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return AlertReading::Error(format!("{what} did not answer in time")),
            Err(e) if e.is_connect() => return AlertReading::Error(format!("cannot reach {what} at {base}")),
            Err(e) => return AlertReading::Error(format!("{what} request failed: {e}")),
        };
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER_BYTES => {
                    return AlertReading::Error(format!(
                        "{what}'s list of alerts is larger than {}",
                        crate::runbook::size_text(MAX_ANSWER_BYTES as u64)
                    ));
                }
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) if e.is_timeout() => {
                    return AlertReading::Error(format!("{what} did not answer in time"));
                }
                Err(e) => return AlertReading::Error(format!("reading {what}'s answer: {e}")),
            }
        }
        match self.spec.source {
            AlertSource::Prometheus => parse_prometheus(&self.spec, status, &body),
            AlertSource::Alertmanager(_) => parse_alertmanager(&self.spec, status, &body),
        }
    }
}

/// A label value as Alertmanager's matchers quote it (Go's rules: backslash, quote, newline).
fn quoted(v: &str) -> String {
    let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// What a rehearsal (or `--simulate-metrics`) reads: nothing fires until the fault is injected,
/// then the trigger's alert does, with its own matchers as labels.
pub fn simulated(spec: &AlertTrigger, fault_injected: bool) -> AlertReading {
    if !fault_injected {
        return AlertReading::Clear;
    }
    let mut labels: BTreeMap<String, String> = spec.labels.iter().cloned().collect();
    labels.insert("alertname".into(), spec.alert.clone());
    AlertReading::Firing {
        alert: Alert {
            firing: true,
            labels,
            value: None,
            active_at: None,
        },
        count: 1,
    }
}

impl Watched {
    /// A poll of an alert trigger's alerts. Like `observe` for a metric trigger, with the timing
    /// left to the rule: pending and firing are the alert's own.
    pub fn observe_alert(&mut self, now: Instant, reading: &AlertReading) -> Option<Transition> {
        let TriggerKind::Alert(spec) = &self.kind else {
            return None;
        };
        if !self.is_armed() {
            return None;
        }
        let on_no_data = spec.on_no_data;
        match reading {
            // No `for` of the trigger's own: the second failed poll in a row is "staying down".
            AlertReading::Error(error) => self.failed(now, error, Duration::ZERO, on_no_data),
            AlertReading::Clear => {
                self.answered();
                if self.state == State::Ok {
                    return None;
                }
                self.go(State::Ok);
                Some(Transition::Cleared { value: None })
            }
            AlertReading::Pending(alert) => {
                self.answered();
                self.last_value = alert.value;
                match self.state {
                    State::Pending { .. } => None,
                    // The alert that fired has resolved; another one is only pending. Cleared now,
                    // pending at the next poll.
                    State::Firing { .. } | State::Acknowledged => {
                        self.go(State::Ok);
                        Some(Transition::Cleared { value: alert.value })
                    }
                    _ => {
                        self.go(State::Pending { since: now });
                        Some(Transition::Pending {
                            value: alert.value.unwrap_or(f64::NAN),
                        })
                    }
                }
            }
            AlertReading::Firing { alert, count } => {
                self.answered();
                self.last_value = alert.value;
                match self.state {
                    State::Firing { .. } | State::Acknowledged => None,
                    _ => {
                        self.go(State::Firing { since: now });
                        Some(Transition::Fired {
                            value: alert.value,
                            reason: Some(firing_reason(alert, *count)),
                            roll_back_now: false,
                        })
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::{OnNoData, Trigger};

    fn spec(on_no_data: OnNoData) -> AlertTrigger {
        AlertTrigger {
            alert: "Burn".into(),
            labels: vec![("service".into(), "checkout".into())],
            source: AlertSource::Prometheus,
            on_no_data,
        }
    }

    fn watched(on_no_data: OnNoData) -> Watched {
        Watched::new(
            &Trigger {
                id: "burn".into(),
                title: "Burn".into(),
                kind: TriggerKind::Alert(spec(on_no_data)),
                armed_from: None,
                auto_rollback: None,
            },
            1.0,
        )
    }

    const PROM: &str = r#"{"status":"success","data":{"alerts":[
        {"labels":{"alertname":"Burn","service":"cart"},"state":"firing","activeAt":"2026-11-29T10:00:00Z","value":"9e+00"},
        {"labels":{"alertname":"Other","service":"checkout"},"state":"firing","activeAt":"2026-11-29T10:00:00Z","value":"8e+00"},
        {"labels":{"alertname":"Burn","service":"checkout","pod":"b"},"state":"pending","activeAt":"2026-11-29T10:00:01Z","value":"2e+00"},
        {"labels":{"alertname":"Burn","service":"checkout","pod":"a"},"state":"firing","activeAt":"2026-11-29T10:00:03.5Z","value":"3e+00"},
        {"labels":{"alertname":"Burn","service":"checkout","pod":"c"},"state":"firing","activeAt":"2026-11-29T10:00:02Z","value":"1.5e+00"}
    ]}}"#;

    #[test]
    fn prometheus_matches_name_and_labels_and_shows_the_longest_firing() {
        let r = parse_prometheus(&spec(OnNoData::Warn), 200, PROM.as_bytes());
        let AlertReading::Firing { alert, count } = r else {
            panic!("{r:?}")
        };
        assert_eq!(count, 2, "pod a and pod c fire; cart and Other do not match");
        assert_eq!(alert.labels["pod"], "c", "firing since 10:00:02, before pod a");
        assert_eq!(alert.value, Some(1.5));
        assert_eq!(
            firing_reason(&alert, count),
            r#"alert Burn{pod="c", service="checkout"} is firing (and 1 more firing)"#
        );
    }

    #[test]
    fn prometheus_pending_empty_and_errors() {
        let pending = r#"{"status":"success","data":{"alerts":[
            {"labels":{"alertname":"Burn","service":"checkout"},"state":"pending","value":"2e+00"}]}}"#;
        assert!(matches!(
            parse_prometheus(&spec(OnNoData::Warn), 200, pending.as_bytes()),
            AlertReading::Pending(Alert {
                value: Some(2.0),
                firing: false,
                ..
            })
        ));
        let empty = r#"{"status":"success","data":{"alerts":[]}}"#;
        assert_eq!(
            parse_prometheus(&spec(OnNoData::Warn), 200, empty.as_bytes()),
            AlertReading::Clear
        );
        assert!(matches!(
            parse_prometheus(&spec(OnNoData::Warn), 502, b"<html>bad gateway</html>"),
            AlertReading::Error(e) if e.contains("HTTP 502") && e.contains("not JSON")
        ));
    }

    #[test]
    fn alertmanager_matchers_are_quoted() {
        assert_eq!(quoted("checkout"), r#""checkout""#);
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted("é\n"), "\"é\\n\"");
    }

    #[test]
    fn alertmanager_counts_only_active_alerts() {
        let body = r#"[
            {"labels":{"alertname":"Burn","service":"checkout"},"status":{"state":"suppressed","silencedBy":["x"],"inhibitedBy":[]},"startsAt":"2026-11-29T10:00:00Z"},
            {"labels":{"alertname":"Burn","service":"checkout"},"status":{"state":"unprocessed","silencedBy":[],"inhibitedBy":[]}}
        ]"#;
        assert_eq!(
            parse_alertmanager(&spec(OnNoData::Warn), 200, body.as_bytes()),
            AlertReading::Clear
        );
        let body = r#"[{"labels":{"alertname":"Burn","service":"checkout","severity":"page"},"status":{"state":"active","silencedBy":[],"inhibitedBy":[]},"startsAt":"2026-11-29T10:00:00Z"}]"#;
        let r = parse_alertmanager(&spec(OnNoData::Warn), 200, body.as_bytes());
        assert_eq!(
            r.firing_labels().map(|l| l["severity"].clone()),
            Some("page".into())
        );
    }

    #[test]
    fn the_trigger_follows_the_alert() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = watched(OnNoData::Warn);
        let alert = |firing, value| Alert {
            firing,
            labels: BTreeMap::from([("alertname".to_string(), "Burn".to_string())]),
            value: Some(value),
            active_at: None,
        };
        assert_eq!(t.observe_alert(t0, &AlertReading::Clear), None);
        assert_eq!(
            t.observe_alert(t0 + s, &AlertReading::Pending(alert(false, 2.0))),
            Some(Transition::Pending { value: 2.0 })
        );
        assert_eq!(
            t.observe_alert(t0 + 2 * s, &AlertReading::Pending(alert(false, 2.5))),
            None
        );
        let fired = t.observe_alert(
            t0 + 3 * s,
            &AlertReading::Firing {
                alert: alert(true, 3.0),
                count: 1,
            },
        );
        assert!(
            matches!(&fired, Some(Transition::Fired { value: Some(3.0), reason: Some(r), roll_back_now: false }) if r.starts_with("alert Burn{")),
            "{fired:?}"
        );
        assert!(t.is_firing());
        // Losing the API while firing clears nothing; reported once.
        assert!(matches!(
            t.observe_alert(t0 + 4 * s, &AlertReading::Error("down".into())),
            Some(Transition::DataLost { .. })
        ));
        assert_eq!(
            t.observe_alert(t0 + 5 * s, &AlertReading::Error("down".into())),
            None
        );
        assert!(t.is_firing());
        assert_eq!(
            t.observe_alert(t0 + 6 * s, &AlertReading::Clear),
            Some(Transition::Cleared { value: None })
        );
        assert_eq!(t.state, State::Ok);
    }

    #[test]
    fn an_unreadable_api_is_unknown_and_obeys_on_no_data() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let down = AlertReading::Error("cannot reach Alertmanager".into());
        let mut warn = watched(OnNoData::Warn);
        warn.observe_alert(t0, &AlertReading::Clear);
        for i in 1..4 {
            let tr = warn.observe_alert(t0 + i * s, &down);
            assert!(!warn.is_firing());
            assert_eq!(tr.is_some(), i == 1, "unknown is reported once");
        }
        assert!(matches!(warn.state, State::Unknown { .. }));
        // Hold: one failed poll is a blip; the second in a row holds the run.
        let mut hold = watched(OnNoData::Hold);
        hold.observe_alert(t0, &AlertReading::Clear);
        assert!(matches!(
            hold.observe_alert(t0 + s, &down),
            Some(Transition::Unknown { .. })
        ));
        assert!(matches!(
            hold.observe_alert(t0 + 2 * s, &down),
            Some(Transition::Fired {
                roll_back_now: false,
                ..
            })
        ));
        // Rollback, never answered: at once.
        let mut rb = watched(OnNoData::Rollback);
        assert!(matches!(
            rb.observe_alert(t0, &down),
            Some(Transition::Fired {
                roll_back_now: true,
                ..
            })
        ));
    }
}
