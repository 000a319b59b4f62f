//! `command` metrics: a command run every interval whose stdout is one number.

use std::path::PathBuf;
use std::time::Duration;

use super::Reading;
use crate::process;

pub struct MetricCommand {
    pub shell: String,
    pub command: String,
    pub workdir: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
}

impl MetricCommand {
    pub async fn read(&self) -> Reading {
        let out =
            process::run_captured(&self.shell, &self.command, &self.workdir, &self.env, self.timeout).await;
        match out {
            Err(e) => Reading::Error(e),
            Ok(c) if c.exit != 0 => {
                let err = String::from_utf8_lossy(&c.stderr);
                let last = err.lines().last().unwrap_or("").trim();
                Reading::Error(format!(
                    "the command exited {}{}",
                    c.exit,
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!(": {last}")
                    }
                ))
            }
            Ok(c) => {
                let text = String::from_utf8_lossy(&c.stdout);
                let text = text.trim();
                if text.is_empty() {
                    return Reading::NoData;
                }
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() => Reading::Value(v),
                    _ => {
                        let shown: String = text.chars().take(40).collect();
                        Reading::Error(format!("the command printed {shown:?}, not one number"))
                    }
                }
            }
        }
    }
}
