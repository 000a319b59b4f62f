//! Polling the alerts of alert triggers (SPEC §7): one task per armed alert trigger reads its
//! alerts every `[metrics] interval` and sends the reading to the wait loop (`watch`), which
//! feeds it to the trigger's pure state machine (`metrics::alerts`) and journals what changed,
//! with the firing alert's labels. A rehearsal, or `--simulate-metrics`, reads nothing: the alert
//! fires when the fault is injected.

use super::watch::Input;
use super::*;
use crate::metrics::alerts::{self, AlertQuery, AlertReading};
use crate::runbook::TriggerKind;

impl Engine {
    /// Starts polling trigger `i`'s alerts, when it is an alert trigger.
    pub(super) fn start_alert(&mut self, i: usize) {
        let TriggerKind::Alert(spec) = self.triggers[i].kind.clone() else {
            return;
        };
        let interval = self.rb.metrics.interval;
        // An answer must come well within the interval, so that polls keep their pace.
        let budget = interval
            .mul_f64(0.8)
            .min(Duration::from_secs(10))
            .max(Duration::from_millis(100));
        let simulated = self.opts.rehearsal.is_some() || self.opts.sources.simulate;
        let query = AlertQuery {
            client: crate::metrics::prometheus::client(budget),
            spec,
            prometheus: self
                .opts
                .sources
                .prometheus
                .clone()
                .or_else(|| self.rb.metrics.url.clone()),
            headers: self
                .rb
                .metrics
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), self.secrets.expand(v)))
                .collect(),
        };
        let query = Arc::new(query);
        let fault = self.fault.clone();
        let redactor = self.redactor.clone();
        let read = move || {
            let (query, fault, redactor) = (query.clone(), fault.clone(), redactor.clone());
            async move {
                if simulated {
                    alerts::simulated(&query.spec, fault.injected_at().is_some())
                } else {
                    match query.read().await {
                        AlertReading::Error(e) => AlertReading::Error(redactor.redact_str(&e)),
                        r => r,
                    }
                }
            }
        };
        let poll = super::poll::every(interval, i, self.alerts.0.clone(), read);
        self.check_tasks.push(poll);
    }

    /// An alert trigger's poll: its transition journaled, with the labels of the alert that fired.
    pub(super) async fn on_alert<T>(
        &mut self,
        i: usize,
        reading: AlertReading,
    ) -> Result<Option<Input<T>>, Stop> {
        if self.rolling_back {
            return Ok(None);
        }
        let labels = reading.firing_labels();
        let tr = self.triggers[i].observe_alert(Instant::now(), &reading);
        self.record_with(i, tr, labels).await
    }
}
