//! The report's metric summaries: every `metrics_sampled` event's values and errors gathered per
//! metric, then summed up (samples, no data, min, median, max, last value, last error).

use std::collections::BTreeMap;

use super::MetricSummary;
use super::plans::Plans;

/// One metric's samples while the journal is read.
#[derive(Default)]
struct MetricAcc {
    values: Vec<f64>,
    samples: usize,
    no_data: usize,
    last: Option<f64>,
    last_ts: Option<String>,
    last_error: Option<String>,
}

/// Every metric's samples while the journal is read: a list, not a map (a runbook has a few
/// metrics, each looked up thousands of times).
#[derive(Default)]
pub(super) struct Metrics(Vec<(String, MetricAcc)>);

/// `latest[id] = v`, the id copied only when it is new.
fn set(latest: &mut BTreeMap<String, Option<f64>>, id: &str, v: Option<f64>) {
    match latest.get_mut(id) {
        Some(slot) => *slot = v,
        None => {
            latest.insert(id.to_string(), v);
        }
    }
}

impl Metrics {
    /// The metric's samples (its id copied only the first time it is seen: a long journal
    /// samples every metric thousands of times).
    fn acc(&mut self, id: &str) -> &mut MetricAcc {
        let i = match self.0.iter().position(|(k, _)| k == id) {
            Some(i) => i,
            None => {
                self.0.push((id.to_string(), MetricAcc::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    /// One `metrics_sampled` event at `ts`; `latest` (the values last sampled, for the timeline)
    /// follows it.
    pub(super) fn sampled(
        &mut self,
        values: &BTreeMap<String, Option<f64>>,
        errors: &BTreeMap<String, String>,
        ts: &str,
        latest: &mut BTreeMap<String, Option<f64>>,
    ) {
        for (id, v) in values {
            set(latest, id, v.filter(|x| x.is_finite()));
            let acc = self.acc(id);
            acc.samples += 1;
            match v {
                Some(x) if x.is_finite() => {
                    acc.values.push(*x);
                    acc.last = Some(*x);
                    // The same buffer each time.
                    let last_ts = acc.last_ts.get_or_insert_with(String::new);
                    last_ts.clear();
                    last_ts.push_str(ts);
                }
                _ => acc.no_data += 1,
            }
        }
        for (id, e) in errors {
            let acc = self.acc(id);
            if !values.contains_key(id) {
                acc.samples += 1;
                acc.no_data += 1;
                set(latest, id, None);
            }
            acc.last_error = Some(e.clone());
        }
    }

    /// Each metric's summary, with its title and unit from the plan snapshot.
    pub(super) fn summaries(self, plans: &Plans) -> BTreeMap<String, MetricSummary> {
        let mut out = BTreeMap::new();
        for (id, mut acc) in self.0 {
            acc.values.sort_unstable_by(f64::total_cmp);
            let v = &acc.values;
            let median = match v.len() {
                0 => None,
                n if n % 2 == 1 => Some(v[n / 2]),
                n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
            };
            let (title, unit) = plans.metric(&id).unzip();
            out.insert(
                id,
                MetricSummary {
                    title,
                    unit,
                    samples: acc.samples,
                    no_data: acc.no_data,
                    min: v.first().copied(),
                    median,
                    max: v.last().copied(),
                    last: acc.last,
                    last_ts: acc.last_ts,
                    last_error: acc.last_error,
                },
            );
        }
        out
    }
}
