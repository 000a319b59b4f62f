//! Delivering one target's notifications, one after the other (a channel reads them in the order
//! they happened): the body rendered, the request made with `ATTEMPTS` attempts, `TIMEOUT` each,
//! `BACKOFF` between them, and the outcome journaled. A rehearsal journals what it would send.
//!
//! Retried: no answer, a connection that fails, HTTP 408, 429 and 5xx. Any other status is the
//! receiver's final word (a 400 will not be a 200 a second later). Errors never show the URL (it
//! usually is the secret) and are masked besides.

use std::time::Duration;

use tokio::sync::mpsc;

use super::{Job, Pending};
use crate::journal::{Appender, Event, Record};
use crate::runbook::NotifyTarget;
use crate::runbook::notify::{self as format};
use crate::secrets::{Redactor, Secrets};

pub const ATTEMPTS: u32 = 3;
/// The most one request may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The wait before the second and the third attempt.
pub const BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];
/// The most of a receiver's answer kept for an error message.
const ANSWER_SHOWN: usize = 200;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("runbook/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(TIMEOUT)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

pub(super) struct Worker {
    pub target: NotifyTarget,
    pub rehearsal: bool,
    pub client: reqwest::Client,
    pub secrets: Secrets,
    pub redactor: Redactor,
    pub journal: Appender,
    pub shown: mpsc::Sender<Record>,
    pub pending: Pending,
}

/// How one attempt went.
enum Attempt {
    Sent(u16),
    /// Worth another try.
    Retry(Option<u16>, String),
    /// The receiver's final word, or a body that cannot be made.
    Final(Option<u16>, String),
}

impl Worker {
    pub async fn run(self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(job) = jobs.recv().await {
            let event = self.deliver(&job).await;
            // Taken off the pending list and journaled with no wait between: a worker stopped at
            // the end of the grace period has either journaled a job or left it pending.
            if let Ok(mut p) = self.pending.lock() {
                p.remove(&job.id);
            }
            if let Ok(rec) = self.journal.append(event) {
                let _ = self.shown.try_send(rec);
            }
        }
    }

    fn set_attempts(&self, job: &Job, n: u32) {
        if let Ok(mut p) = self.pending.lock()
            && let Some(entry) = p.get_mut(&job.id)
        {
            entry.2 = n;
        }
    }

    async fn deliver(&self, job: &Job) -> Event {
        let t = &self.target;
        let failed = |status, attempt, error: String| Event::NotifyFailed {
            target: t.id.clone(),
            on: job.on.clone(),
            status,
            attempt,
            error: self.redactor.redact_str(&error),
        };
        let body = match format::body(t, &job.record, &job.context, &self.secrets.values) {
            Ok(b) => b,
            Err(e) => return failed(None, 0, format!("the template does not render: {e}")),
        };
        if self.rehearsal {
            return Event::NotifyRehearsed {
                target: t.id.clone(),
                on: job.on.clone(),
                method: t.method.clone(),
                url: self.redactor.redact_str(&t.url),
                body: self.redactor.redact_str(&body),
            };
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.set_attempts(job, attempt);
            match self.send(&body).await {
                Attempt::Sent(status) => {
                    return Event::NotifySent {
                        target: t.id.clone(),
                        on: job.on.clone(),
                        status,
                        attempt,
                    };
                }
                Attempt::Final(status, error) => return failed(status, attempt, error),
                Attempt::Retry(status, error) if attempt >= ATTEMPTS => {
                    return failed(status, attempt, error);
                }
                Attempt::Retry(..) => {
                    tokio::time::sleep(BACKOFF[(attempt as usize - 1).min(BACKOFF.len() - 1)]).await;
                }
            }
        }
    }

    async fn send(&self, body: &str) -> Attempt {
        let t = &self.target;
        let url = self.secrets.expand(&t.url);
        let method = reqwest::Method::from_bytes(t.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let mut req = self.client.request(method, url.as_str()).timeout(TIMEOUT);
        if format::content_type(t).is_none() {
            req = req.header("Content-Type", "application/json");
        }
        for (k, v) in &t.headers {
            req = req.header(k.as_str(), self.secrets.expand(v));
        }
        let resp = match req.body(body.to_string()).send().await {
            Ok(r) => r,
            Err(e) => {
                let why = describe(&e);
                return if e.is_builder() {
                    Attempt::Final(None, why)
                } else {
                    Attempt::Retry(None, why)
                };
            }
        };
        let status = resp.status().as_u16();
        // The answer is read (a little of it) so that a receiver's reason can be shown.
        let answer = tokio::time::timeout(TIMEOUT, resp.bytes()).await;
        if (200..300).contains(&status) {
            return Attempt::Sent(status);
        }
        let text = match answer {
            Ok(Ok(b)) => {
                let t = String::from_utf8_lossy(&b[..b.len().min(ANSWER_SHOWN)]).into_owned();
                let t: String = t.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
                let t = t.trim().to_string();
                if t.is_empty() {
                    String::new()
                } else {
                    format!(": {t}")
                }
            }
            _ => String::new(),
        };
        let error = format!("HTTP {status}{text}");
        if status == 408 || status == 429 || status >= 500 {
            Attempt::Retry(Some(status), error)
        } else {
            Attempt::Final(Some(status), error)
        }
    }
}

/// A request error in words, without the URL.
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {}", crate::duration::format_duration(TIMEOUT));
    }
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_builder() {
        "invalid request"
    } else {
        "request failed"
    };
    // The innermost cause says it best ("Connection refused (os error 111)"); reqwest's own
    // words would name the URL.
    let mut cause = None;
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = Some(s.to_string());
        src = s.source();
    }
    match cause {
        Some(c) => format!("{what}: {c}"),
        None => what.to_string(),
    }
}
