//! The runbook as plain data: what `parse` builds from a TOML file after every rule is checked.
//!
//! Nothing here does I/O. Variables are already substituted (except `${SECRET}` references in http
//! fields and metric headers, which are resolved only when a request is made so that no secret is
//! ever held in a printable field). Byte spans are kept where a later error must point into the file.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

/// A checked runbook.
#[derive(Debug, Clone)]
pub struct Runbook {
    /// Stable id of the runbook (from `[runbook] id`, else the file name), used for the run folder.
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    /// `[runbook] lock`: at most one run holding a lock of this name at a time in the state dir.
    pub lock: Option<String>,
    /// Path of the runbook file as given.
    pub file: PathBuf,
    /// Hex sha256 of the file's bytes.
    pub sha256: String,
    /// `[vars]` after `--var` overrides, in file order.
    pub vars: Vec<(String, String)>,
    pub secrets: Vec<SecretSpec>,
    pub settings: Settings,
    pub metrics: MetricsSettings,
    pub metric: Vec<Metric>,
    pub triggers: Vec<Trigger>,
    pub phases: Vec<Phase>,
    pub rollback: Option<Rollback>,
    /// `[[notify]]`: where events are sent (SPEC §6).
    pub notify: Vec<NotifyTarget>,
}

#[derive(Debug, Clone)]
pub struct SecretSpec {
    pub name: String,
    pub source: SecretSource,
    /// Where the secret is declared, for errors when it cannot be read.
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub shell: String,
    /// Absolute (or runbook-relative resolved) folder commands run in.
    pub workdir: PathBuf,
    pub kill_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct MetricsSettings {
    pub url: Option<String>,
    pub interval: Duration,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Metric {
    pub id: String,
    pub title: String,
    pub source: MetricSource,
    pub unit: Unit,
    pub simulate: Simulate,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MetricSource {
    Query(String),
    Command(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Unit {
    Percent,
    Seconds,
    Number,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// A value in this unit as an operator reads it: ratios as percentages, seconds with ms.
    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Percent => format!("{:.2}%", value * 100.0),
            Unit::Seconds if value < 1.0 => format!("{:.0}ms", value * 1000.0),
            Unit::Seconds => format!("{value:.2}s"),
            // Six decimals at most, trailing zeros dropped: 7, 0.001574, 123.5.
            Unit::Number => crate::text::decimal(value, 6),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Simulate {
    pub baseline: f64,
    pub jitter: f64,
}

#[derive(Debug, Clone)]
pub struct Trigger {
    pub id: String,
    pub title: String,
    pub kind: TriggerKind,
    pub armed_from: Option<String>,
    pub auto_rollback: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TriggerKind {
    Metric {
        metric: String,
        threshold: Threshold,
        for_: Duration,
        on_no_data: OnNoData,
    },
    Check {
        command: String,
        interval: Duration,
        timeout: Duration,
    },
    /// Raised by the operator.
    Manual,
    /// Follows an alerting rule the team already has (SPEC §7; see `parse::alert`).
    Alert(AlertTrigger),
}

/// An alert trigger: fires while a matching alert fires. `for` is the rule's own.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertTrigger {
    /// The alert's name (its `alertname` label).
    pub alert: String,
    /// Exact label matchers, in file order.
    pub labels: Vec<(String, String)>,
    pub source: AlertSource,
    pub on_no_data: OnNoData,
}

impl AlertTrigger {
    /// The alert as a selector, the way Prometheus writes one: `Name{service="checkout"}`.
    pub fn selector(&self) -> String {
        if self.labels.is_empty() {
            return self.alert.clone();
        }
        let m: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        format!("{}{{{}}}", self.alert, m.join(", "))
    }

    /// Where the alerts are read, as shown: `prometheus` or `alertmanager URL`.
    pub fn source_text(&self) -> String {
        match &self.source {
            AlertSource::Prometheus => "prometheus".into(),
            AlertSource::Alertmanager(url) => format!("alertmanager {url}"),
        }
    }
}

/// Where an alert trigger reads alerts.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertSource {
    /// The run's Prometheus (`[metrics] url`, or `--prometheus`): `/api/v1/alerts`.
    Prometheus,
    /// An Alertmanager at this URL: `/api/v2/alerts`, silenced and inhibited alerts left out.
    Alertmanager(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Above(f64),
    Below(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum OnNoData {
    Warn,
    Hold,
    Rollback,
}

impl OnNoData {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub id: String,
    pub title: String,
    pub section: Option<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub title: String,
    pub kind: StepKind,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    pub on_failure: OnFailure,
    pub confirm: bool,
    pub env: Vec<(String, String)>,
    pub irreversible: bool,
    /// Absolute folder, when the step overrides the runbook's.
    pub workdir: Option<PathBuf>,
    /// Four eyes: other operators must approve it after its go-ahead (`approval`, `approvers`).
    pub approval: Option<super::approval::Approval>,
}

impl Step {
    /// Whether the run waits for the operator before this step starts.
    pub fn needs_go_ahead(&self) -> bool {
        self.confirm || matches!(self.kind, StepKind::Manual(_))
    }
}

#[derive(Debug, Clone, PartialEq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum StepKind {
    Run(String),
    /// A checklist item; the instruction, when one is given.
    Manual(Option<String>),
    Watch(Duration),
    Http(HttpSpec),
}

impl StepKind {
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub expect_status: Vec<u16>,
    pub expect_body: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum OnFailure {
    Ask,
    Continue,
    Rollback,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone)]
pub struct Rollback {
    pub title: String,
    pub phases: Vec<Phase>,
}

/// A `[[notify]]` target. `url`, `headers` and the template have their vars substituted; a
/// `${SECRET}` reference is kept as it is, and resolved only when a request is made.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyTarget {
    pub id: String,
    pub url: String,
    pub format: NotifyFormat,
    /// Journal event names, and `waiting`.
    pub on: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub method: String,
    /// `waiting`: how long the run waits for an operator before it is sent.
    pub waiting_after: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NotifyFormat {
    /// A Slack incoming-webhook message: `{"text": "..."}`.
    Slack,
    /// The journal event as it is.
    Json,
    /// The request body, a minijinja template.
    Template(String),
}

impl Runbook {
    /// The runbook file's absolute path, as text: what the journal's `run_started` and the shared
    /// store's `runs` row record, so that `resume` finds the file from any folder. (Made absolute
    /// against the current folder, which is read; the path as given when that fails.)
    pub fn absolute_file(&self) -> String {
        std::path::absolute(&self.file)
            .unwrap_or_else(|_| self.file.clone())
            .display()
            .to_string()
    }

    pub fn step_count(&self) -> usize {
        self.phases.iter().map(|p| p.steps.len()).sum()
    }

    /// The forward phases, or the rollback procedure's (none when it has no `[rollback]`).
    pub fn phases_of(&self, rollback: bool) -> &[Phase] {
        if rollback {
            self.rollback.as_ref().map(|r| r.phases.as_slice()).unwrap_or(&[])
        } else {
            &self.phases
        }
    }

    /// A step by its phase id and step id.
    pub fn find_step(&self, rollback: bool, phase: &str, step: &str) -> Option<&Step> {
        self.phases_of(rollback)
            .iter()
            .find(|p| p.id == phase)?
            .steps
            .iter()
            .find(|s| s.id == step)
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Unit;

    #[test]
    fn values_read_as_an_operator_expects() {
        assert_eq!(Unit::Percent.format(0.0123), "1.23%");
        assert_eq!(Unit::Seconds.format(0.255), "255ms");
        assert_eq!(Unit::Seconds.format(1.5), "1.50s");
        assert_eq!(Unit::Number.format(7.0), "7");
        assert_eq!(Unit::Number.format(0.0015736264633689596), "0.001574");
        assert_eq!(Unit::Number.format(-0.0), "0");
        assert_eq!(Unit::Number.format(123.5), "123.5");
    }
}
