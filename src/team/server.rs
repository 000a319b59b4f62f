//! The driver's side of the control socket: `RUN_DIR/control.sock`, created `0600` (or `0660` for
//! the group of a shared state dir, as every file of a run folder), removed when the driver ends.
//! Each connection carries one request: the peer's Unix user comes from the kernel
//! (SO_PEERCRED), where it came from from `/proc`; the request goes to the engine as a command,
//! and the engine's answer goes back on the connection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::control::{Asked, MAX_REQUEST, Peer, Reply, Request, Response, origin};
use crate::engine::Command;

/// The socket, served while this lives; dropping it stops serving and removes the socket.
pub struct Server {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serves the control socket of the run in `run_dir`, passing requests to the engine. The
/// caller holds the run's lock, so a socket left there is a dead driver's: it is replaced.
pub fn serve(run_dir: &Path, commands: mpsc::Sender<Command>) -> std::io::Result<Server> {
    let path = run_dir.join(super::SOCKET);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let (address, _dir) = super::socket_address(run_dir)?;
    let listener = UnixListener::bind(&address)?;
    // The run folder (0700 or 2770) keeps everyone else out until the socket's own mode is set.
    crate::files::give_access(&path)?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            tokio::spawn(connection(stream, commands.clone()));
        }
    });
    Ok(Server { path, task })
}

async fn connection(stream: UnixStream, commands: mpsc::Sender<Command>) {
    let peer = match stream.peer_cred() {
        Ok(cred) => peer(cred.uid(), cred.pid().and_then(|p| u32::try_from(p).ok())),
        Err(_) => return,
    };
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_REQUEST as u64));
    let mut line = String::new();
    let got = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await;
    let response = match got {
        Ok(Ok(n)) if n > 0 && line.ends_with('\n') => {
            match serde_json::from_str::<Request>(line.trim_end()) {
                Err(e) => Response::refused(format!("not a request this driver understands: {e}")),
                Ok(request) => ask(peer, request, commands, &mut reader).await,
            }
        }
        Ok(Ok(_)) => Response::refused(format!("a request is one line of at most {MAX_REQUEST} bytes")),
        Ok(Err(e)) => Response::refused(format!("the request could not be read: {e}")),
        Err(_) => Response::refused("no request within 10 s"),
    };
    if let Ok(mut text) = serde_json::to_string(&response) {
        text.push('\n');
        let _ = tokio::time::timeout(Duration::from_secs(5), write.write_all(text.as_bytes())).await;
    }
}

/// Passes the request to the engine and waits for its answer, or for the asker to hang up (then
/// the engine sees nobody waits: a hand-over nobody waits for any more is not carried out).
async fn ask<R: tokio::io::AsyncRead + Unpin>(
    peer: Peer,
    request: Request,
    commands: mpsc::Sender<Command>,
    reader: &mut R,
) -> Response {
    let (reply, answer) = Reply::new();
    let asked = Asked { peer, request, reply };
    if commands.send(Command::Team(asked)).await.is_err() {
        return Response::refused("the run is ending; its driver takes no more requests");
    }
    let mut rest = [0u8; 64];
    tokio::select! {
        a = answer => a.unwrap_or_else(|_| Response::refused("the driver stopped before it answered")),
        // Anything more from the asker, or its end of the connection: it no longer waits.
        _ = reader.read(&mut rest) => Response::refused("the asker hung up"),
    }
}

/// The peer: its Unix user (from the kernel), and where it is, from `/proc`.
fn peer(uid: u32, pid: Option<u32>) -> Peer {
    let user = nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map_or_else(|| format!("uid{uid}"), |u| u.name);
    Peer {
        uid,
        user,
        origin: origin(pid),
    }
}
