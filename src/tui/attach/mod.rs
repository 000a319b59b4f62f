//! `runbook attach`: the driver's screen, read-only and live, in another terminal.
//!
//! The screen is built from the run's journal through the same `App::apply` that the driver's
//! screen and `resume` use, fed by `runs::follow` as the driver appends to the journal and as the
//! running step's log grows (inotify: a watcher with nothing to show sleeps). What the journal
//! does not say (that a step waits for a go-ahead before it starts) is worked out by
//! `runs::standing`. The metrics shown are the values the driver journaled: a watcher never
//! queries the sources itself (no second load on Prometheus, no credentials needed, and exactly
//! what the driver saw).
//!
//! A run whose driver is on another host is followed through the shared store instead
//! (`runs::remote`, LISTEN/NOTIFY): the run is read through `runs::source`, the one seam between
//! the two, so that everything below it is the same screen.
//!
//! A watcher writes nothing in the run folder; leaving it (q, a hang-up, a kill) changes nothing
//! for the driver.
//!
//! The watcher's state and how what follows changes it are `watcher`'s; this is the event loop.

mod watcher;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::time::Instant;

use super::state::App;
use super::watching::{Action, ViaStore, Watching};
use super::{FRAME, Screen, draw, next_event, recv_hangup, scroll_regions, terminal};
use crate::control::{Request, Response};
use crate::engine::Mode;
use crate::journal::Record;
use crate::runbook::StepKind;
use crate::runs::Liveness;
use crate::runs::follow::{DriverExit, Followed};
use crate::runs::source::{Requests, Source};

use watcher::{Watcher, instant_of, mode_of};

/// `runbook attach [RUN] [--store URL]`: returns the exit status (0, or 2 when there is nothing
/// to watch).
pub fn main(state_dir: &Path, run: Option<&str>, store: Option<&str>) -> i32 {
    crate::runs::source::with_run(state_dir, run, store, |source, now| async move {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
            let grows = match source.local_dir() {
                Some(dir) => format!("{} grows as it goes", dir.join("journal.jsonl").display()),
                None => format!("{} is in the shared store", source.run_id()),
            };
            crate::say!(
                "runbook: attach shows the run's screen and needs a terminal; runbook ls says where it stands, and {grows}"
            );
            return 2;
        }
        watch(source, now).await
    })
}

async fn watch(source: Source, now: Vec<Followed>) -> i32 {
    let shown_as = source.shown_as();
    let history: Vec<Record> = now
        .iter()
        .filter_map(|f| match f {
            Followed::Record(r) => Some((**r).clone()),
            _ => None,
        })
        .collect();
    let rb = match crate::runs::runbook_of(&history) {
        Ok(rb) => rb,
        Err(e) => {
            crate::say!("runbook: cannot show {shown_as}: {e}");
            return 2;
        }
    };
    let mut notices = Vec::new();
    if let Some(info) = crate::journal::resume::info(&history) {
        for change in crate::journal::resume::changes(&history, &info.sha256, &rb) {
            notices.push(format!("shown with the runbook as it is now: {change}"));
        }
    }
    let mode = mode_of(&history);
    let sources = crate::metrics::source_kinds(
        &rb,
        &crate::metrics::SourceOptions {
            prometheus: None,
            simulate: mode == Mode::Rehearse,
        },
    );
    let id = source.run_id();
    let mut app = App::new(Arc::new(rb), mode, &sources, shown_as);
    app.shared_id = source.store().map(|_| id.clone());
    let driver = source.driver(&history);
    app.watching = Some(Watching {
        run: id,
        driver: driver.clone(),
        ended: false,
        me: crate::identity::unix_user(),
        store: source.store().map(|at| ViaStore { at, lost: None }),
    });
    if let Some(d) = &driver {
        app.operator = d.operator.clone();
        app.host = d.host.clone();
    }
    if let Some(at) = history.first().and_then(|r| instant_of(&r.ts)) {
        app.started = at;
    }
    let mut w = Watcher {
        app,
        records: Vec::new(),
        following: None,
        closed: None,
        source,
        moved: false,
    };
    w.take(now, false).await;
    // Attached in the middle of a step: its output so far (the end of it), then as it comes.
    if let Some(at) = w.app.running()
        && matches!(w.app.step(at).kind, StepKind::Run(_) | StepKind::Http(_))
    {
        let phase = &w.app.phases(at.rollback)[at.phase];
        let path = crate::engine::log_file(
            at.rollback,
            &phase.id,
            &phase.steps[at.step].id,
            w.app.view(at).attempts,
        );
        w.following = Some(at);
        let so_far = w.source.follow_log(&path, true).await;
        w.fold_all(so_far);
    }
    for n in notices {
        w.app.note(n);
    }
    run(w).await
}

/// The watcher's event loop: keys, changes in the run folder, the driver's end, frames.
async fn run(mut w: Watcher) -> i32 {
    let theme = super::ui::theme::Theme::from_env();
    let guard = match terminal::Guard::enter() {
        Ok(g) => g,
        Err(e) => {
            crate::say!("runbook: cannot use the terminal ({e})");
            return 2;
        }
    };
    let term = match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
        Ok(t) => t,
        Err(e) => {
            drop(guard);
            crate::say!("runbook: cannot draw on the terminal: {e}");
            return 1;
        }
    };
    if let Ok(size) = term.size() {
        w.app.screen = (size.width, size.height);
    }
    let mut term = Screen {
        terminal: term,
        last: None,
        scroll_regions: scroll_regions(),
    };
    // Requests go to the driver's control socket on this host, or through the shared store.
    let requests = w.source.requests();
    w.load_log().await;
    let mut events = Some(EventStream::new());
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut term_signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut exit = driver_exit(&w.app, None);
    let mut last_frame = Instant::now() - FRAME;
    let mut key_pressed = false;
    let mut following = w.app.finished.is_none();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut gone = false;
    let (answers_tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let mut hello_at: Option<Instant> = None;
    let mut hello_out = false;
    w.moved = w.app.finished.is_none();
    loop {
        if w.app.finished.is_some()
            && let Some(ws) = &mut w.app.watching
        {
            ws.ended = true;
        }
        let frame_at = w.app.dirty.then(|| {
            if std::mem::take(&mut key_pressed) {
                Instant::now()
            } else {
                (last_frame + FRAME).max(Instant::now())
            }
        });
        tokio::select! {
            biased;
            _ = recv_hangup(&mut hangup) => {
                // The terminal is gone: nobody to draw for, nothing to restore.
                gone = true;
                break;
            }
            _ = recv_hangup(&mut term_signal) => break,
            ev = next_event(&mut events) => match ev {
                Some(Ok(TermEvent::Key(key))) if key.kind == KeyEventKind::Press => {
                    key_pressed = true;
                    let mut quit = false;
                    for action in super::watching::on_key(&mut w.app, key) {
                        match action {
                            Action::Quit => quit = true,
                            Action::Suspend => {
                                let _ = guard.suspend();
                                if w.app.mouse {
                                    let _ = terminal::mouse(true);
                                }
                                let _ = term.terminal.clear();
                                term.forget();
                                w.app.dirty = true;
                            }
                            Action::Mouse(on) => {
                                let _ = terminal::mouse(on);
                            }
                            Action::Ask(request) => ask(&requests, request, &answers_tx),
                        }
                    }
                    if quit {
                        break;
                    }
                    w.load_log().await;
                }
                // The wheel scrolls the log, as on the driver's screen.
                Some(Ok(TermEvent::Mouse(m))) => {
                    super::keys::on_mouse(&mut w.app, m);
                    key_pressed = w.app.dirty;
                }
                Some(Ok(TermEvent::Resize(cols, rows))) => {
                    w.app.screen = (cols, rows);
                    w.app.dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    gone = true;
                    break;
                }
            },
            _ = crate::engine::sleep_until_opt(frame_at) => {
                draw(&mut term, &mut w.app, &theme);
                last_frame = Instant::now();
            }
            changes = w.source.next(), if following => match changes {
                Ok(changes) => {
                    w.take(changes, true).await;
                    w.load_log().await;
                }
                Err(e) => {
                    w.app.note(format!("cannot follow the run any more: {e}"));
                    following = false;
                }
            },
            _ = async {
                match &exit {
                    Some((_, e)) => e.exited().await,
                    None => std::future::pending().await,
                }
            }, if exit.is_some() => {
                exit = None;
                // Whatever it managed to journal before it died.
                if let Some(d) = w.app.watching.as_mut().and_then(|ws| ws.driver.as_mut()) {
                    d.alive = Liveness::Gone;
                }
                if w.app.finished.is_none() && let Some(ws) = &w.app.watching {
                    let text = format!(
                        "{}'s runbook has ended without finishing the run; to drive it: runbook takeover {} --reason …",
                        ws.driver_name(),
                        ws.run
                    );
                    w.app.note(text);
                }
            }
            Some((request, answer)) = answers.recv() => {
                if request == Request::Hello {
                    hello_out = false;
                }
                w.answer(request, answer);
            }
            _ = crate::engine::sleep_until_opt(hello_at), if !hello_out => {
                hello_at = None;
                hello_out = true;
                ask(&requests, Request::Hello, &answers_tx);
            }
            _ = tick.tick(), if w.app.finished.is_none() => w.app.dirty = true,
        }
        // Whether a step waits for approvals is the driver's to say (`hello`): asked when the run
        // moved, and every few seconds only while a step that needs approvals waits for its
        // go-ahead (given on the driver's screen, it is journaled nowhere). Through the store,
        // the driver's lease row says it as it changes (`Followed::Approvals`): nobody is asked.
        let moved = std::mem::take(&mut w.moved);
        let asks = w.asks_hello();
        if asks && moved && w.approvals_matter() {
            hello_at = Some(Instant::now());
        } else if asks && hello_at.is_none() && !hello_out && w.approval_soon() {
            hello_at = Some(Instant::now() + HELLO_EVERY);
        }
        // A new driver (a takeover, a resume): watch its process instead.
        if let Some(new) = driver_exit(&w.app, exit.as_ref().map(|e| e.0)) {
            exit = Some(new);
        } else if w.app.finished.is_some() {
            exit = None;
        }
    }
    if gone {
        std::mem::forget(term);
        std::mem::forget(guard);
    } else {
        drop(term);
        drop(guard);
    }
    0
}

/// Watches the driver's process, when it runs on this host and is not the one watched already.
fn driver_exit(app: &App, watched: Option<u32>) -> Option<(u32, DriverExit)> {
    let d = app.watching.as_ref()?.driver.as_ref()?;
    if d.alive != Liveness::Alive
        || app.finished.is_some()
        || watched == Some(d.pid)
        || d.host != crate::identity::host()
    {
        return None;
    }
    Some((d.pid, DriverExit::watch(d.pid)?))
}

/// How often a watcher asks the driver whether a step waits for approvals, while one may.
const HELLO_EVERY: Duration = Duration::from_secs(2);

type Answer = (Request, Result<Response, String>);

/// Sends a request to the driver in the background (its control socket, or the shared store);
/// its answer comes back on `answers`.
fn ask(to: &Requests, request: Request, answers: &tokio::sync::mpsc::UnboundedSender<Answer>) {
    let to = to.clone();
    let answers = answers.clone();
    tokio::spawn(async move {
        let answer = to.ask(&request).await;
        let _ = answers.send((request, answer));
    });
}
