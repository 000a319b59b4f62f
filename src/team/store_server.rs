//! The driver's side of requests through the shared store (`store::requests`): while this
//! `runbook` holds the run's lease, the requests other hosts put in the store for its run go to
//! the engine exactly as the control socket's do (`engine::Command::Team`), with a `Peer` whose
//! origin names the store role, and the engine's answer is written in the request's row. A
//! request whose asker gave up (its session closed) before the engine answered is seen as a hung
//! up asker on the socket is: a hand-over nobody waits for any more is not carried out.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::control::{Asked, Reply, Response};
use crate::engine::Command;
use crate::store::StoreConfig;
use crate::store::requests::{Answers, Asking, Inbox};

/// Serves the run's requests in the store while this lives.
pub struct StoreServer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens for the requests of `run_id` in the store and hands them to the engine. A store
/// that cannot be reached is tried again every few seconds; nothing here stops the run.
pub fn serve(config: StoreConfig, run_id: String, commands: mpsc::Sender<Command>) -> StoreServer {
    let task = tokio::spawn(async move {
        let me = crate::store::lease::Driver::me();
        loop {
            if let Ok(mut inbox) = Inbox::open(&config, &run_id).await {
                let answers = inbox.answers();
                while let Ok(list) = inbox.next(&me.host, me.pid).await {
                    for asking in list {
                        tokio::spawn(ask(asking, answers.clone(), commands.clone()));
                    }
                }
            }
            if commands.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    StoreServer { task }
}

/// One request: to the engine, and its answer into the row; or, when the asker gives up first,
/// nobody waits for the engine's answer any more.
async fn ask(asking: Asking, answers: Answers, commands: mpsc::Sender<Command>) {
    let Asking {
        id,
        request,
        peer,
        backend,
    } = asking;
    let (reply, mut answer) = Reply::new();
    let asked = Asked { peer, request, reply };
    if commands.send(Command::Team(asked)).await.is_err() {
        let no = Response::refused("the run is ending; its driver takes no more requests");
        let _ = answers.answer(id, &no).await;
        return;
    }
    loop {
        tokio::select! {
            a = &mut answer => {
                let response = a.unwrap_or_else(|_| Response::refused("the driver stopped before it answered"));
                let _ = answers.answer(id, &response).await;
                return;
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Ok(false) = answers.asker_waits(backend).await {
                    // Dropping the receiver tells the engine that nobody waits.
                    drop(answer);
                    let _ = answers.answer(id, &Response::refused("the asker gave up")).await;
                    return;
                }
            }
        }
    }
}
