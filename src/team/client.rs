//! One request to the driver of a run, over its control socket: connect, send one line, read one
//! line. Blocking (a shell command asks once and exits; an async caller uses `spawn_blocking`).

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::control::{Request, Response};

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No socket, or nobody listening on it.
    #[error("nobody drives this run (driver gone)")]
    NoDriver,
    /// The socket is not ours to use.
    #[error("{}: permission denied; {}", .socket.display(), .need)]
    Permission { socket: PathBuf, need: String },
    #[error("{}: {source}", .socket.display())]
    Io { socket: PathBuf, source: std::io::Error },
    /// The driver answered something that is not a response (or nothing at all).
    #[error("the driver's answer could not be read: {0}")]
    Protocol(String),
}

/// How long a request waits for its answer. A takeover waits for the driver's operator to decide,
/// as long as it takes (the asker may give up with Ctrl-C).
fn answer_timeout(req: &Request) -> Option<Duration> {
    match req {
        Request::Takeover { .. } => None,
        _ => Some(Duration::from_secs(15)),
    }
}

/// Sends `req` to the driver of the run in `run_dir` and returns its answer.
pub fn request(run_dir: &Path, req: &Request) -> Result<Response, ClientError> {
    let socket = run_dir.join(super::SOCKET);
    let io = |source: std::io::Error| ClientError::Io {
        socket: socket.clone(),
        source,
    };
    let (address, _dir) = super::socket_address(run_dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ClientError::NoDriver,
        _ => io(e),
    })?;
    let mut stream = match UnixStream::connect(&address) {
        Ok(s) => s,
        Err(e) => {
            return Err(match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => ClientError::NoDriver,
                std::io::ErrorKind::PermissionDenied => ClientError::Permission {
                    need: permission_hint(&socket),
                    socket: socket.clone(),
                },
                _ => io(e),
            });
        }
    };
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(io)?;
    stream.set_read_timeout(answer_timeout(req)).map_err(io)?;
    let mut line = serde_json::to_string(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut answer = String::new();
    // One answer, however long a hello's list is, but never without end.
    let mut reader = BufReader::new(std::io::Read::take(stream, 4 * 1024 * 1024));
    match reader.read_line(&mut answer) {
        Ok(0) => return Err(ClientError::NoDriver),
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Err(ClientError::Protocol(
                "no answer within 15 s (the driver may be stopped: Ctrl-Z, SIGSTOP)".into(),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Err(ClientError::NoDriver),
        Err(e) => return Err(io(e)),
    }
    serde_json::from_str(answer.trim_end()).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// Who may use the socket: its group's members (a shared state dir), or its owner alone.
fn permission_hint(socket: &Path) -> String {
    use std::os::unix::fs::MetadataExt as _;
    // The socket itself, or (when its folder cannot even be searched) the run folder.
    let meta = std::fs::metadata(socket).or_else(|_| std::fs::metadata(socket.parent().unwrap_or(socket)));
    let Ok(meta) = meta else {
        return "you may not reach this run's driver".into();
    };
    let owner = nix::unistd::User::from_uid(meta.uid().into())
        .ok()
        .flatten()
        .map_or_else(|| format!("uid {}", meta.uid()), |u| u.name);
    if meta.mode() & 0o060 == 0o060 {
        let group = nix::unistd::Group::from_gid(meta.gid().into())
            .ok()
            .flatten()
            .map_or_else(|| format!("gid {}", meta.gid()), |g| g.name);
        format!(
            "only {owner} and members of the group {group} may talk to this run's driver (sudo usermod -aG {group} $USER, then log in again)"
        )
    } else {
        format!(
            "only {owner} may talk to this run's driver: the state dir is not shared with a group (see the README: a shared state dir)"
        )
    }
}
