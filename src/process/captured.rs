//! Short commands (a metric or a check): run in their own process group, output captured, the
//! whole group ended however the run stopped waiting.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::{exit_code, reap_adopted, spawn_registered, unregister};

/// What a short command (a metric or a check) printed, and how it ended.
pub struct Captured {
    pub exit: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// The most output kept from a metric or check command.
const CAPTURE_LIMIT: usize = 64 * 1024;

/// Runs a short command in its own process group and captures its output. Past `timeout` the
/// group is killed and the error says so. Nothing of it is left running.
pub async fn run_captured(
    shell: &str,
    command: &str,
    workdir: &Path,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Captured, String> {
    use tokio::io::AsyncReadExt as _;
    let mut cmd = tokio::process::Command::new(shell);
    cmd.arg("-c")
        .arg(command)
        .current_dir(workdir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let (mut child, pgid) = spawn_registered(&mut cmd)
        .map_err(|e| format!("cannot start `{shell}` in {}: {e}", workdir.display()))?;
    // If this future is dropped (the run stopped watching), the command goes with it.
    let _group = GroupGuard(pgid);
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let work = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let read_out = async {
            let _ = (&mut stdout)
                .take(CAPTURE_LIMIT as u64)
                .read_to_end(&mut out)
                .await;
        };
        let read_err = async {
            let _ = (&mut stderr)
                .take(CAPTURE_LIMIT as u64)
                .read_to_end(&mut err)
                .await;
        };
        tokio::join!(read_out, read_err);
        let status = child.wait().await;
        (status, out, err)
    };
    let result = tokio::time::timeout(timeout, work).await;
    let outcome = match result {
        Ok((Ok(status), stdout, stderr)) => Ok(Captured {
            exit: exit_code(status),
            stdout,
            stderr,
        }),
        Ok((Err(e), _, _)) => Err(format!("waiting for the command: {e}")),
        Err(_) => Err(format!(
            "no answer within {}",
            crate::duration::format_duration(timeout)
        )),
    };
    // Whatever it left behind in its group goes with it (the guard kills the group).
    drop(_group);
    reap_adopted();
    outcome
}

/// Kills a short command's whole group when dropped, however its future ended.
struct GroupGuard(i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.0 > 0 {
            let _ = killpg(Pid::from_raw(self.0), Signal::SIGKILL);
        }
        unregister(self.0);
    }
}
