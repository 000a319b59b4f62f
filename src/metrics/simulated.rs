//! Simulated metrics: a plausible random walk around `simulate.baseline` with `jitter`, and a
//! fault that, once injected, drives each metric past its triggers' thresholds within seconds —
//! so that a team can practise the rollback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::Reading;
use crate::runbook::{Metric, Runbook, Threshold, TriggerKind};

/// Shared switch: when a fault was injected, if it was.
#[derive(Clone, Default, Debug)]
pub struct Fault(Arc<Mutex<Option<Instant>>>);

impl Fault {
    /// Injects the fault now; false when it already was.
    pub fn inject(&self) -> bool {
        let mut at = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if at.is_some() {
            return false;
        }
        *at = Some(Instant::now());
        true
    }

    pub fn injected_at(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long a fault takes to drive a metric from normal to its target.
pub const FAULT_RAMP: Duration = Duration::from_secs(3);

pub struct Walk {
    baseline: f64,
    jitter: f64,
    /// Mean-reverting noise in [-1, 1].
    x: f64,
    /// Where the fault drives the metric: beyond every threshold of its triggers.
    target: f64,
    fault: Fault,
    rng: fastrand::Rng,
}

impl Walk {
    pub fn new(m: &Metric, rb: &Runbook, fault: Fault) -> Walk {
        let base = m.simulate.baseline;
        let mut target: Option<f64> = None;
        for t in &rb.triggers {
            if let TriggerKind::Metric {
                metric, threshold, ..
            } = &t.kind
                && metric == &m.id
            {
                let beyond = match threshold {
                    Threshold::Above(v) => v.abs().max(base.abs()).max(1e-9) * 1.5 + m.simulate.jitter,
                    Threshold::Below(v) => v * 0.5 - m.simulate.jitter,
                };
                target = Some(match (target, threshold) {
                    (None, _) => beyond,
                    (Some(t), Threshold::Above(_)) => t.max(beyond),
                    (Some(t), Threshold::Below(_)) => t.min(beyond),
                });
            }
        }
        Walk {
            baseline: base,
            jitter: m.simulate.jitter,
            x: 0.0,
            target: target.unwrap_or(if base == 0.0 { 1.0 } else { base * 10.0 }),
            fault,
            rng: fastrand::Rng::new(),
        }
    }

    pub fn read(&mut self) -> Reading {
        self.x = 0.7 * self.x + 0.3 * (self.rng.f64() * 2.0 - 1.0);
        let mut v = self.baseline + self.jitter * self.x;
        if let Some(since) = self.fault.injected_at() {
            let k = (since.elapsed().as_secs_f64() / FAULT_RAMP.as_secs_f64()).min(1.0);
            v += (self.target - v) * k;
        }
        if self.baseline >= 0.0 {
            v = v.max(0.0);
        }
        Reading::Value(v)
    }
}
