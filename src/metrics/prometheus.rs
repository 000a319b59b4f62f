//! Prometheus instant queries (`/api/v1/query`): one client, a timeout shorter than the poll
//! interval, and every failure reported as what it is — never as a healthy value.

use std::time::Duration;

use super::Reading;

/// The largest answer read: one number is a few hundred bytes; anything near this is a query that
/// returns far too much, and is refused before it fills memory.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("runbook/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// One metric's query against one Prometheus.
pub struct Query {
    pub client: reqwest::Client,
    /// The server's base URL, e.g. `http://127.0.0.1:9090`.
    pub base: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
}

impl Query {
    pub async fn read(&self) -> Reading {
        let endpoint = format!("{}/api/v1/query", self.base.trim_end_matches('/'));
        let url = match reqwest::Url::parse_with_params(&endpoint, [("query", self.query.as_str())]) {
            Ok(u) => u,
            Err(e) => return Reading::Error(format!("invalid Prometheus url {endpoint}: {e}")),
        };
        let mut req = self.client.get(url);
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Reading::Error("Prometheus did not answer in time".into()),
            Err(e) if e.is_connect() => {
                return Reading::Error(format!("cannot reach Prometheus at {}", self.base));
            }
            Err(e) => return Reading::Error(format!("Prometheus request failed: {e}")),
        };
        let status = resp.status();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > MAX_ANSWER_BYTES => {
                    return Reading::Error(format!(
                        "Prometheus' answer is larger than {}; the query must return one number",
                        crate::runbook::size_text(MAX_ANSWER_BYTES as u64)
                    ));
                }
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) if e.is_timeout() => {
                    return Reading::Error("Prometheus did not answer in time".into());
                }
                Err(e) => return Reading::Error(format!("reading Prometheus' answer: {e}")),
            }
        }
        parse_answer(status.as_u16(), &body)
    }
}

/// Turns an `/api/v1/query` answer into a reading (SPEC: one sample or a scalar is a value, an
/// empty vector is no data, several series is an error that says to aggregate).
pub fn parse_answer(status: u16, body: &[u8]) -> Reading {
    let json: serde_json::Value = match serde_json::from_slice(body) {
        Ok(j) => j,
        Err(_) => {
            let snippet: String = String::from_utf8_lossy(&body[..body.len().min(80)])
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            return Reading::Error(format!(
                "Prometheus answered HTTP {status} with something that is not JSON: {snippet:?}"
            ));
        }
    };
    if json["status"] != "success" {
        let kind = json["errorType"].as_str().unwrap_or("error");
        let msg = json["error"].as_str().unwrap_or("no message");
        return Reading::Error(format!("Prometheus {kind} (HTTP {status}): {msg}"));
    }
    let data = &json["data"];
    let value = match data["resultType"].as_str() {
        Some("scalar") => &data["result"][1],
        Some("vector") => {
            let result = data["result"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            match result {
                [] => return Reading::NoData,
                [one] => &one["value"][1],
                many => {
                    return Reading::Error(format!(
                        "the query returns {} series; aggregate it to one (e.g. sum(...) or max(...))",
                        many.len()
                    ));
                }
            }
        }
        Some(other) => {
            return Reading::Error(format!(
                "the query returns a {other}; it must return one number (an instant vector of one series, or a scalar)"
            ));
        }
        None => return Reading::Error("Prometheus' answer has no resultType".into()),
    };
    let Some(text) = value.as_str() else {
        return Reading::Error("Prometheus' answer has no value".into());
    };
    match text.parse::<f64>() {
        Ok(v) if v.is_nan() => {
            Reading::Error("the query's value is NaN (a division by zero, e.g. no traffic?)".into())
        }
        Ok(v) if v.is_infinite() => Reading::Error(format!("the query's value is {text}")),
        Ok(v) => Reading::Value(v),
        Err(_) => Reading::Error(format!("the query's value {text:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(series: &str) -> Vec<u8> {
        format!(r#"{{"status":"success","data":{{"resultType":"vector","result":[{series}]}}}}"#).into_bytes()
    }

    #[test]
    fn one_series_or_a_scalar_is_a_value() {
        let one = vector(r#"{"metric":{},"value":[1700000000.1,"0.0125"]}"#);
        assert_eq!(parse_answer(200, &one), Reading::Value(0.0125));
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}"#;
        assert_eq!(parse_answer(200, scalar), Reading::Value(3.0));
    }

    #[test]
    fn empty_is_no_data_and_several_is_an_error() {
        assert_eq!(parse_answer(200, &vector("")), Reading::NoData);
        let two = vector(r#"{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}"#);
        let Reading::Error(e) = parse_answer(200, &two) else {
            panic!()
        };
        assert!(e.contains("2 series") && e.contains("aggregate"), "{e}");
    }

    #[test]
    fn nan_inf_errors_and_garbage_are_reported_as_such() {
        let nan = vector(r#"{"metric":{},"value":[1,"NaN"]}"#);
        assert!(matches!(parse_answer(200, &nan), Reading::Error(e) if e.contains("NaN")));
        let inf = vector(r#"{"metric":{},"value":[1,"+Inf"]}"#);
        assert!(matches!(parse_answer(200, &inf), Reading::Error(e) if e.contains("+Inf")));
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert!(
            matches!(parse_answer(400, bad), Reading::Error(e) if e.contains("bad_data") && e.contains("char 5"))
        );
        assert!(
            matches!(parse_answer(502, b"<html>Bad Gateway</html>"), Reading::Error(e) if e.contains("not JSON"))
        );
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(matches!(parse_answer(200, matrix), Reading::Error(e) if e.contains("matrix")));
    }
}
