//! Metrics: where values come from (Prometheus, a command, a simulation), the poller that samples
//! every metric each interval, rollback trigger evaluation (`triggers`, pure), the alerts of alert
//! triggers (`alerts`) and Prometheus history for `backtest` (`history`).
//!
//! The poller runs beside the engine and sends it one `Sample` per round; the engine evaluates the
//! triggers, journals what changed and decides what it means for the run.

pub mod alerts;
pub mod command;
pub mod history;
pub mod prometheus;
pub mod simulated;
pub mod triggers;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::runbook::{MetricSource, Runbook};

/// What an empty answer is called wherever it is shown or journaled.
pub const NO_DATA: &str = "no data";

/// One metric's value at one poll. No data and a failure are different facts, and triggers treat
/// them differently (see `triggers`): keep them apart in every source.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    Value(f64),
    /// The source answered, with nothing: an empty vector, a command that printed nothing.
    NoData,
    /// The source failed (an error, a timeout, a bad status or answer); the message says how.
    Error(String),
}

impl Reading {
    pub fn value(&self) -> Option<f64> {
        match self {
            Reading::Value(v) => Some(*v),
            _ => None,
        }
    }
}

/// Where a metric's values come from, as shown next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum SourceKind {
    Prometheus,
    Command,
    Simulated,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One poll round: a reading per metric, in the runbook's order.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub readings: Vec<Reading>,
}

/// How the metrics of a run are sourced.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// `--prometheus URL`
    pub prometheus: Option<String>,
    /// `--simulate-metrics`, and always in rehearsals.
    pub simulate: bool,
}

/// Where each metric comes from under these options.
pub fn source_kinds(rb: &Runbook, opts: &SourceOptions) -> Vec<SourceKind> {
    let url = opts.prometheus.as_ref().or(rb.metrics.url.as_ref());
    rb.metric
        .iter()
        .map(|m| match (&m.source, opts.simulate, url) {
            (_, true, _) => SourceKind::Simulated,
            (MetricSource::Command(_), _, _) => SourceKind::Command,
            (MetricSource::Query(_), _, Some(_)) => SourceKind::Prometheus,
            (MetricSource::Query(_), _, None) => SourceKind::Simulated,
        })
        .collect()
}

/// What a poll needs besides the runbook: the environment and folder for metric commands, and the
/// secrets for request headers.
pub struct PollContext {
    pub env: Vec<(String, String)>,
    pub secrets: crate::secrets::Secrets,
    /// Shared with the engine: set when a fault is injected into the simulated metrics.
    pub fault: simulated::Fault,
}

enum Source {
    Prometheus(prometheus::Query),
    Command(command::MetricCommand),
    Simulated(simulated::Walk),
}

/// Starts polling every metric of the runbook: the first sample at once, then one per interval.
/// A slow source delays nothing but itself: each is given less than an interval, and rounds never
/// pile up. Returns `None` when the runbook has no metrics.
pub fn start(rb: &Arc<Runbook>, opts: &SourceOptions, ctx: PollContext) -> Option<mpsc::Receiver<Sample>> {
    if rb.metric.is_empty() {
        return None;
    }
    let interval = rb.metrics.interval;
    // A source must answer well within the interval, so that rounds keep their pace.
    let budget = interval
        .mul_f64(0.8)
        .min(Duration::from_secs(10))
        .max(Duration::from_millis(100));
    let url = opts.prometheus.clone().or_else(|| rb.metrics.url.clone());
    let kinds = source_kinds(rb, opts);
    let client = url.as_ref().map(|_| prometheus::client(budget));
    let headers: Vec<(String, String)> = rb
        .metrics
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), ctx.secrets.expand(v)))
        .collect();
    let mut sources: Vec<Source> = rb
        .metric
        .iter()
        .zip(kinds)
        .map(|(m, kind)| match (kind, &m.source) {
            (SourceKind::Prometheus, MetricSource::Query(q)) => Source::Prometheus(prometheus::Query {
                client: client.clone().expect("a url means a client"),
                base: url.clone().unwrap_or_default(),
                query: q.clone(),
                headers: headers.clone(),
            }),
            (SourceKind::Command, MetricSource::Command(c)) => Source::Command(command::MetricCommand {
                shell: rb.settings.shell.clone(),
                command: c.clone(),
                workdir: rb.settings.workdir.clone(),
                env: ctx.env.clone(),
                timeout: budget,
            }),
            _ => Source::Simulated(simulated::Walk::new(m, rb, ctx.fault.clone())),
        })
        .collect();
    let redactor = ctx.secrets.redactor();
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Stamped with the tick's scheduled time, not when this task woke: otherwise a `for`
            // window measured between two late wake-ups comes out a millisecond short and the
            // trigger fires a whole interval later.
            let at = ticks.tick().await;
            let mut readings = poll_all(&mut sources).await;
            // Masked here, where the text is made, so that no front end can ever show it raw.
            for r in &mut readings {
                if let Reading::Error(e) = r {
                    *e = redactor.redact_str(e);
                }
            }
            if tx.send(Sample { at, readings }).await.is_err() {
                break;
            }
        }
    });
    Some(rx)
}

/// Reads every source at once.
async fn poll_all(sources: &mut [Source]) -> Vec<Reading> {
    let futures = sources.iter_mut().map(|s| async move {
        match s {
            Source::Prometheus(q) => q.read().await,
            Source::Command(c) => c.read().await,
            Source::Simulated(w) => w.read(),
        }
    });
    futures_join_all(futures).await
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}
