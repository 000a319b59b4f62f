//! Prometheus history for `backtest`: range queries (`/api/v1/query_range`) at a fixed step,
//! split into chunks under Prometheus' limit of 11,000 points per series, each chunk turned into
//! one `Reading` per step, the same readings a run's poll would have made at those moments.
//!
//! Only one chunk is held at a time: the caller asks for the next when it is done with this one,
//! so memory follows the chunk size, not the length of the history.

use std::time::Duration;

use serde::Deserialize;

use super::Reading;

/// Points per range query: under Prometheus' 11,000 points per series, with room to spare.
pub const CHUNK_POINTS: i64 = 10_000;

/// The largest answer read for one chunk: 10,000 points of one series are about 300 KiB; a query
/// returning many series is refused long before this fills memory.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024 * 1024;

/// One metric's query over a window, at a step.
pub struct History {
    pub client: reqwest::Client,
    /// The server's base URL, e.g. `http://127.0.0.1:9090`.
    pub base: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// First evaluation, in ms since the epoch (a multiple of `step_ms`).
    pub start_ms: i64,
    /// Last evaluation at most this, in ms since the epoch.
    pub end_ms: i64,
    pub step_ms: i64,
}

/// The evaluations of one chunk: `(ms since the epoch, reading)`, one per step, in order.
pub type Chunk = Vec<(i64, Reading)>;

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    values: Vec<(f64, String)>,
}

impl History {
    /// The windows of the range queries: `(first, last)` evaluation of each chunk, in ms.
    pub fn chunks(&self) -> impl Iterator<Item = (i64, i64)> + use<> {
        let (start, end, step) = (self.start_ms, self.end_ms, self.step_ms.max(1));
        let span = step * CHUNK_POINTS;
        (0..)
            .map(move |k| start + k * span)
            .take_while(move |from| *from <= end)
            .map(move |from| (from, (from + span - step).min(end)))
    }

    /// Reads one chunk: every evaluation from `from` to `to` (ms), each a value, no data (no
    /// point at that step: a gap) or an error (several series, NaN), as a run would read them.
    pub async fn read(&self, from: i64, to: i64) -> Result<Chunk, String> {
        let endpoint = format!("{}/api/v1/query_range", self.base.trim_end_matches('/'));
        let secs = |ms: i64| format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
        let step = Duration::from_millis(self.step_ms as u64)
            .as_secs_f64()
            .to_string();
        let url = reqwest::Url::parse_with_params(
            &endpoint,
            [
                ("query", self.query.as_str()),
                ("start", &secs(from)),
                ("end", &secs(to)),
                ("step", &step),
            ],
        )
        .map_err(|e| format!("invalid Prometheus url {endpoint}: {e}"))?;
        let mut req = self.client.get(url);
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let mut resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                "Prometheus did not answer in time".to_string()
            } else if e.is_connect() {
                format!("cannot reach Prometheus at {}", self.base)
            } else {
                format!("Prometheus request failed: {e}")
            }
        })?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("reading Prometheus' answer: {e}"))?
        {
            if body.len() + chunk.len() > MAX_CHUNK_BYTES {
                return Err(format!(
                    "Prometheus' answer is larger than {}; the query must return one series",
                    crate::runbook::size_text(MAX_CHUNK_BYTES as u64)
                ));
            }
            body.extend_from_slice(&chunk);
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
            let snippet: String = String::from_utf8_lossy(&body[..body.len().min(80)])
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            format!("Prometheus answered HTTP {status} with something that is not a range query's answer: {snippet:?}")
        })?;
        if answer.status != "success" {
            return Err(format!(
                "Prometheus {} (HTTP {status}): {}",
                answer.error_type.as_deref().unwrap_or("error"),
                answer.error.as_deref().unwrap_or("no message")
            ));
        }
        let data = answer
            .data
            .ok_or_else(|| "Prometheus' answer has no data".to_string())?;
        if data.result_type != "matrix" {
            return Err(format!(
                "Prometheus answered a range query with a {}, not a matrix",
                data.result_type
            ));
        }
        Ok(self.readings(from, to, &data.result))
    }

    /// One reading per step from `from` to `to`: the series' point at that step, no data where
    /// none has one, an error where several have (the run says to aggregate them).
    fn readings(&self, from: i64, to: i64, series: &[Series]) -> Chunk {
        let step = self.step_ms.max(1);
        let n = ((to - from) / step + 1).max(0) as usize;
        let mut out: Chunk = (0..n)
            .map(|i| (from + i as i64 * step, Reading::NoData))
            .collect();
        let mut count = vec![0u32; n];
        for s in series {
            for (t, v) in &s.values {
                let ms = (t * 1000.0).round() as i64;
                let i = (ms - from) / step;
                if ms < from || i as usize >= n || (ms - from) % step != 0 {
                    continue;
                }
                let i = i as usize;
                count[i] += 1;
                out[i].1 = match v.parse::<f64>() {
                    _ if count[i] > 1 => Reading::Error(format!(
                        "the query returns {} series; aggregate it to one (e.g. sum(...) or max(...))",
                        count[i]
                    )),
                    Ok(x) if x.is_nan() => Reading::Error(
                        "the query's value is NaN (a division by zero, e.g. no traffic?)".into(),
                    ),
                    Ok(x) => Reading::Value(x),
                    Err(_) => Reading::Error(format!("Prometheus' value {v:?} is not a number")),
                };
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(start_ms: i64, end_ms: i64, step_ms: i64) -> History {
        History {
            client: reqwest::Client::new(),
            base: String::new(),
            query: String::new(),
            headers: Vec::new(),
            start_ms,
            end_ms,
            step_ms,
        }
    }

    #[test]
    fn chunks_stay_under_the_points_limit_and_cover_every_step_once() {
        // A week at 15 s: 40,321 evaluations.
        let step = 15_000;
        let week = 7 * 24 * 3600 * 1000;
        let h = history(0, week, step);
        let chunks: Vec<(i64, i64)> = h.chunks().collect();
        assert_eq!(chunks.len(), 5);
        let mut next = 0;
        for (from, to) in &chunks {
            assert_eq!(*from, next, "no step missed or repeated");
            let points = (to - from) / step + 1;
            assert!(points < 11_000, "{points} points in one query");
            next = to + step;
        }
        assert_eq!(chunks.last().unwrap().1, week);
        assert_eq!(history(0, 0, step).chunks().count(), 1, "one evaluation");
    }

    #[test]
    fn steps_without_a_point_are_no_data_and_two_series_are_an_error() {
        let h = history(0, 60_000, 15_000);
        let series = vec![
            Series {
                values: vec![(0.0, "1".into()), (30.0, "NaN".into()), (45.0, "2".into())],
            },
            Series {
                values: vec![(45.0, "3".into())],
            },
        ];
        let r = h.readings(0, 60_000, &series);
        assert_eq!(r.len(), 5);
        assert_eq!(r[0], (0, Reading::Value(1.0)));
        assert_eq!(r[1], (15_000, Reading::NoData));
        assert!(matches!(&r[2].1, Reading::Error(e) if e.contains("NaN")));
        assert!(matches!(&r[3].1, Reading::Error(e) if e.contains("2 series")));
        assert_eq!(r[4], (60_000, Reading::NoData));
    }
}
