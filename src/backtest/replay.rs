//! The pure part of a backtest: readings in, episodes out. A `Replay` feeds one trigger's readings
//! through the run's own trigger state machine and keeps only the episodes, one count per day and a
//! fixed number of sparkline buckets.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{DAY_MS, day};
use crate::metrics::Reading;
use crate::metrics::triggers::{State, Transition, Watched};
use crate::runbook::{Threshold, Trigger, TriggerKind, Unit};

/// Sparkline buckets: fits 80 columns with its indent.
pub const SPARK_WIDTH: usize = 72;

/// One stretch of time in which the trigger was pending or firing.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// The first evaluation that saw it pending (or firing), ms since the epoch.
    pub start_ms: i64,
    /// The evaluation at which it went back to ok, or lost its pending window to a gap in the
    /// data; `None` when it was still pending or firing at the end of the window.
    pub end_ms: Option<i64>,
    /// The worst value seen while it lasted (highest for `above`, lowest for `below`).
    pub peak: Option<f64>,
    /// When it would have fired.
    pub fired_ms: Option<i64>,
}

/// What a trigger would have done over the window.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub trigger: String,
    pub title: String,
    pub metric: String,
    pub unit: Unit,
    pub threshold: Threshold,
    pub for_: Duration,
    pub episodes: Vec<Episode>,
    /// Fires per UTC day (`YYYY-MM-DD`), every day of the window listed.
    pub fires_per_day: Vec<(String, u32)>,
    pub samples: u64,
    pub no_data: u64,
    pub errors: u64,
    /// The worst value in each of `SPARK_WIDTH` equal slices of the window.
    pub spark: Vec<Option<f64>>,
}

/// A trigger replayed over history: readings in, in time order; episodes out.
pub struct Replay {
    watched: Watched,
    threshold: Threshold,
    /// The run's clock: `origin` is the window's first evaluation.
    origin: Instant,
    start_ms: i64,
    end_ms: i64,
    open: Option<Episode>,
    episodes: Vec<Episode>,
    fires: BTreeMap<String, u32>,
    samples: u64,
    no_data: u64,
    errors: u64,
    spark: Vec<Option<f64>>,
}

impl Replay {
    /// `None` for a trigger that is not a metric trigger.
    pub fn new(t: &Trigger, start_ms: i64, end_ms: i64) -> Option<Replay> {
        let TriggerKind::Metric { threshold, .. } = &t.kind else {
            return None;
        };
        let mut watched = Watched::new(t, 1.0);
        // History has no phases: a trigger armed from one is watched all along.
        watched.arm();
        Some(Replay {
            watched,
            threshold: *threshold,
            origin: Instant::now(),
            start_ms,
            end_ms,
            open: None,
            episodes: Vec::new(),
            fires: BTreeMap::new(),
            samples: 0,
            no_data: 0,
            errors: 0,
            spark: vec![None; SPARK_WIDTH],
        })
    }

    fn breached(&self, v: f64) -> bool {
        match self.threshold {
            Threshold::Above(t) => v > t,
            Threshold::Below(t) => v < t,
        }
    }

    fn worse(&self, a: Option<f64>, b: f64) -> f64 {
        match (a, self.threshold) {
            (None, _) => b,
            (Some(a), Threshold::Above(_)) => a.max(b),
            (Some(a), Threshold::Below(_)) => a.min(b),
        }
    }

    /// The evaluation at `t_ms` read `reading`.
    pub fn feed(&mut self, t_ms: i64, reading: &Reading) {
        self.samples += 1;
        match reading {
            Reading::Value(v) => {
                let span = (self.end_ms - self.start_ms + 1).max(1) as i128;
                let i = ((t_ms - self.start_ms).max(0) as i128 * SPARK_WIDTH as i128 / span) as usize;
                let i = i.min(SPARK_WIDTH - 1);
                self.spark[i] = Some(self.worse(self.spark[i], *v));
            }
            Reading::NoData => self.no_data += 1,
            Reading::Error(_) => self.errors += 1,
        }
        let now = self.origin + Duration::from_millis((t_ms - self.start_ms).max(0) as u64);
        match self.watched.observe(now, reading) {
            Some(Transition::Pending { value }) => {
                if self.open.is_none() {
                    self.open = Some(Episode {
                        start_ms: t_ms,
                        end_ms: None,
                        peak: Some(value),
                        fired_ms: None,
                    });
                }
            }
            Some(Transition::Fired { value, .. }) => {
                let e = self.open.get_or_insert(Episode {
                    start_ms: t_ms,
                    end_ms: None,
                    peak: value,
                    fired_ms: None,
                });
                e.fired_ms.get_or_insert(t_ms);
                *self.fires.entry(day(t_ms)).or_default() += 1;
            }
            Some(Transition::Cleared { .. }) => self.close(t_ms),
            // An empty answer ends a pending window (a failed query keeps it).
            Some(Transition::Unknown { .. }) if self.watched.state == (State::Unknown { pending: None }) => {
                if self.open.as_ref().is_some_and(|e| e.fired_ms.is_none()) {
                    self.close(t_ms);
                }
            }
            Some(Transition::Unknown { .. } | Transition::DataLost { .. }) | None => {}
        }
        if let (Reading::Value(v), true) = (reading, self.open.is_some())
            && self.breached(*v)
        {
            let peak = self.open.as_ref().and_then(|e| e.peak);
            let worse = self.worse(peak, *v);
            if let Some(e) = self.open.as_mut() {
                e.peak = Some(worse);
            }
        }
    }

    fn close(&mut self, t_ms: i64) {
        if let Some(mut e) = self.open.take() {
            e.end_ms = Some(t_ms);
            self.episodes.push(e);
        }
    }

    /// The result, with every day of the window in `fires_per_day`.
    pub fn finish(mut self, t: &Trigger, unit: Unit) -> Outcome {
        if let Some(e) = self.open.take() {
            self.episodes.push(e);
        }
        let mut fires_per_day = Vec::new();
        let mut d = self.start_ms.div_euclid(DAY_MS) * DAY_MS;
        while d <= self.end_ms {
            let name = day(d);
            let n = self.fires.get(&name).copied().unwrap_or(0);
            fires_per_day.push((name, n));
            d += DAY_MS;
        }
        let (metric, for_) = match &t.kind {
            TriggerKind::Metric { metric, for_, .. } => (metric.clone(), *for_),
            _ => (String::new(), Duration::ZERO),
        };
        Outcome {
            trigger: t.id.clone(),
            title: t.title.clone(),
            metric,
            unit,
            threshold: self.threshold,
            for_,
            episodes: self.episodes,
            fires_per_day,
            samples: self.samples,
            no_data: self.no_data,
            errors: self.errors,
            spark: self.spark,
        }
    }
}
