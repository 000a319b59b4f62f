//! The loop every repeating trigger poll runs on: a task that reads once per interval and sends
//! `(trigger index, reading)` to the wait loop, until the engine is gone. A tick missed (a slow
//! read) is not made up: polls keep their pace rather than bunching. What is read is the caller's:
//! a check trigger's command (`CheckCommand`, started by `watch`), an alert trigger's alerts
//! (`alerts`).

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Spawns the poll of trigger `i`: `read()` every `interval`, each reading sent on `tx`.
pub(super) fn every<R, F, Fut>(
    interval: Duration,
    i: usize,
    tx: mpsc::Sender<(usize, R)>,
    mut read: F,
) -> JoinHandle<()>
where
    R: Send + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let reading = read().await;
            if tx.send((i, reading)).await.is_err() {
                break;
            }
        }
    })
}

/// What a check trigger runs at each poll: its command, with the step's shell, folder and
/// environment, within its timeout. Passed when it exits 0; else why not, in a few words (its
/// exit code and its last line of output, secrets masked).
pub(super) struct CheckCommand {
    pub shell: String,
    pub command: String,
    pub workdir: std::path::PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub redactor: crate::mask::Redactor,
}

impl CheckCommand {
    pub(super) async fn run(&self) -> Result<(), String> {
        let c =
            crate::process::run_captured(&self.shell, &self.command, &self.workdir, &self.env, self.timeout)
                .await?;
        if c.exit == 0 {
            return Ok(());
        }
        let out = if c.stderr.is_empty() { &c.stdout } else { &c.stderr };
        let text = String::from_utf8_lossy(out);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let last = self.redactor.redact_str(last);
        Err(if last.is_empty() {
            format!("exit {}", c.exit)
        } else {
            format!("exit {}: {last}", c.exit)
        })
    }
}
