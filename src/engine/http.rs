//! `http` steps: one request with reqwest (rustls), checked against `expect_status` and
//! `expect_body`. The exchange is written to the step's log; secrets in it are masked.

use std::time::Duration;

use crate::runbook::HttpSpec;
use crate::secrets::Secrets;

/// The default limit for a request when the step sets no `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a response body is kept in the log.
const BODY_LOG_LIMIT: usize = 64 * 1024;

/// How much of a response body is read (and searched for `expect_body`); the rest is left unread,
/// so that a huge answer cannot fill memory.
pub const BODY_READ_LIMIT: usize = 1024 * 1024;

pub struct HttpOutcome {
    pub status: Option<u16>,
    /// No answer within the step's timeout.
    pub timed_out: bool,
    /// Why the step failed; `None` when it passed.
    pub error: Option<String>,
    /// Text for the log (the body is masked; the rest not yet).
    pub transcript: String,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("runbook/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

pub async fn execute(
    client: &reqwest::Client,
    spec: &HttpSpec,
    secrets: &Secrets,
    timeout: Duration,
) -> HttpOutcome {
    let url = secrets.expand(&spec.url);
    let mut transcript = format!("{} {}\n", spec.method, spec.url);
    let method = reqwest::Method::from_bytes(spec.method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = client.request(method, &url).timeout(timeout);
    for (k, v) in &spec.headers {
        req = req.header(k.as_str(), secrets.expand(v));
    }
    if let Some(body) = &spec.body {
        req = req.body(secrets.expand(body));
    }
    let started = std::time::Instant::now();
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            let why = describe(&e, timeout);
            transcript.push_str(&format!("error: {why}\n"));
            return HttpOutcome {
                status: None,
                timed_out: e.is_timeout(),
                error: Some(why),
                transcript,
            };
        }
    };
    let status = resp.status();
    transcript.push_str(&format!("→ {} ({} ms)\n", status, started.elapsed().as_millis()));
    let (body, complete) = match read_body(resp, BODY_READ_LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            let why = format!("reading the response body: {}", describe(&e, timeout));
            transcript.push_str(&format!("error: {why}\n"));
            return HttpOutcome {
                status: Some(status.as_u16()),
                timed_out: e.is_timeout(),
                error: Some(why),
                transcript,
            };
        }
    };
    // Masked before it is cut for the log, so that the cut never leaves the start of a secret.
    let redactor = secrets.redactor();
    let masked = redactor.redact(&body);
    let shown = masked.as_deref().unwrap_or(&body);
    let text = String::from_utf8_lossy(&shown[..shown.len().min(BODY_LOG_LIMIT)]);
    transcript.push_str(&text);
    if !text.ends_with('\n') && !text.is_empty() {
        transcript.push('\n');
    }
    if !complete {
        transcript.push_str(&format!(
            "… (more than {}; the rest was not read)\n",
            crate::runbook::size_text(BODY_READ_LIMIT as u64)
        ));
    } else if shown.len() > BODY_LOG_LIMIT {
        transcript.push_str(&format!("… ({} bytes in all)\n", body.len()));
    }
    let code = status.as_u16();
    let error = if !spec.expect_status.contains(&code) {
        let want: Vec<String> = spec.expect_status.iter().map(u16::to_string).collect();
        Some(format!("status {code}, expected {}", want.join(" or ")))
    } else if let Some(needle) = &spec.expect_body {
        let needle = secrets.expand(needle);
        if memchr::memmem::find(&body, needle.as_bytes()).is_none() {
            Some(format!(
                "the response body does not contain \"{}\"{}",
                spec.expect_body.as_deref().unwrap_or(""),
                if complete {
                    String::new()
                } else {
                    format!(
                        " in its first {}",
                        crate::runbook::size_text(BODY_READ_LIMIT as u64)
                    )
                }
            ))
        } else {
            None
        }
    } else {
        None
    };
    HttpOutcome {
        status: Some(code),
        timed_out: false,
        error,
        transcript,
    }
}

/// Reads at most `limit` bytes of a response body; `true` when that was the whole of it.
async fn read_body(mut resp: reqwest::Response, limit: usize) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}", crate::duration::format_duration(timeout));
    }
    if e.is_connect() {
        return format!("cannot connect: {}", root_cause(e));
    }
    if e.is_builder() {
        return format!("invalid request: {}", root_cause(e));
    }
    root_cause(e)
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg = format!("{msg}: {t}");
        }
        src = s.source();
    }
    msg
}
