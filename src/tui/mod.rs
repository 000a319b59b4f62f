//! The terminal UI: the second front end over the engine (the first is `headless`).
//!
//! One task owns all UI state (`state::App`). It waits on terminal input, engine updates, a
//! one-second tick while the run goes on (clocks on screen), and a frame deadline that exists only
//! when something changed — so a quiet screen costs nothing and sends next to nothing over SSH.
//! Frames are capped at 20 a second and wrapped in synchronized updates.

pub mod attach;
pub mod bindings;
pub mod dialog;
pub mod keys;
pub mod scroll;
pub mod state;
mod team;
mod terminal;
pub mod ui;
pub mod watching;

use std::io::Write;
use std::pin::Pin;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures_core::Stream;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::time::Instant;

use crate::engine::Mode;
use crate::journal::Outcome;
use crate::metrics::SourceKind;
use crate::session::Session;
use keys::Effect;
use state::App;
use ui::theme::Theme;

/// The shortest time between two frames.
const FRAME: Duration = Duration::from_millis(50);
/// The shortest time between two frames that only show new output of a step: a followed log is
/// drawn four times a second, a few lines at a time, which costs the link far less than one
/// frame per line (`assets/bench/follow.py`).
const OUTPUT_FRAME: Duration = Duration::from_millis(250);

async fn next_event(events: &mut Option<EventStream>) -> Option<std::io::Result<TermEvent>> {
    match events {
        Some(events) => std::future::poll_fn(|cx| Pin::new(&mut *events).poll_next(cx)).await,
        None => None,
    }
}

/// The terminal has gone away. crossterm's reader thread would read end-of-file from it in a
/// tight loop, burning a core until we exit (and a step in flight may run for a long time yet):
/// stdin becomes a pipe that never has anything to read, so that the thread blocks instead.
fn terminal_gone() {
    use std::os::fd::AsRawFd;
    if let Ok((read, write)) = nix::unistd::pipe() {
        // SAFETY: dup2 onto fd 0 replaces stdin in place; both descriptors are valid.
        unsafe {
            libc::dup2(read.as_raw_fd(), 0);
        }
        // The write end stays open for the life of the process, so the pipe never ends.
        std::mem::forget(write);
    }
}

async fn recv_hangup(hangup: &mut Option<tokio::signal::unix::Signal>) {
    match hangup {
        Some(h) => {
            h.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// The store's status when it changes; pending forever without a store (or once its copy ended).
async fn store_changed(
    status: &mut Option<tokio::sync::watch::Receiver<crate::store::Status>>,
) -> crate::store::Status {
    if let Some(rx) = status {
        if rx.changed().await.is_ok() {
            return rx.borrow_and_update().clone();
        }
        *status = None;
    }
    std::future::pending().await
}

/// How the driver's screen ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The run stopped here (or the terminal went away): the exit status.
    Exit(i32),
    /// The run was handed over, or a newer driver's lease fenced this one, and the terminal is
    /// still there: its operator goes on watching the run (SPEC §8), as `runbook attach` does.
    HandedOver { to: String },
}

/// Runs the UI until the run has ended and the operator leaves, or the run was handed over.
pub async fn run(session: Session, mode: Mode, sources: Vec<SourceKind>, speed: f64) -> Ended {
    let run_dir = session.run_dir;
    let mut app = App::new(session.runbook, mode, &sources, run_dir.display().to_string());
    app.speed = speed;
    app.shared_id = crate::team::approve::shared_id(&run_dir, session.store_status.is_some());
    // Resuming: the screen starts where the run stood (the resumed session's own `run_started`
    // then resets what the engine watches afresh: the triggers).
    for record in session.history {
        app.apply(crate::engine::Update::Event(record));
    }
    app.finished = None;
    for n in session.notices {
        app.note(n);
    }
    // The store is the command line's: it finishes the store's tasks. How far behind it is
    // comes from the engine while it runs, then from the copy itself.
    let (commands, mut updates, engine) = (session.commands, session.updates, session.engine);
    let mut store_status = session.store_status;
    let theme = Theme::from_env();
    let guard = match terminal::Guard::enter() {
        Ok(g) => g,
        Err(e) => {
            crate::say!("runbook: cannot use the terminal ({e}); use --headless");
            let _ = commands
                .send(crate::engine::Command::Abort {
                    reason: Some("no terminal".into()),
                })
                .await;
            return Ended::Exit(engine.await.map(|o| o.exit_code()).unwrap_or(1));
        }
    };
    let terminal = match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
        Ok(t) => t,
        Err(e) => {
            drop(guard);
            crate::say!("runbook: cannot draw on the terminal: {e}");
            return Ended::Exit(1);
        }
    };
    if let Ok(size) = terminal.size() {
        app.screen = (size.width, size.height);
    }
    let mut screen = Screen {
        terminal,
        last: None,
        scroll_regions: scroll_regions(),
    };
    load_wanted_log(&mut app, &run_dir);
    let mut events = Some(EventStream::new());
    let mut input_open = true;
    // The terminal going away (SSH dropped, tmux killed) is a SIGHUP; crossterm's reader would
    // only see end-of-file, forever. The engine hears the same signal and stops after its step.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut engine = Some(engine);
    let mut outcome: Option<Outcome> = None;
    let mut last_frame = Instant::now() - FRAME;
    let mut key_pressed = false;
    // Everything that changed since the last frame is new output of a step.
    let mut output_only = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // A key is answered at once; other changes wait for the frame cap.
        let frame_at = app.dirty.then(|| {
            if std::mem::take(&mut key_pressed) {
                Instant::now()
            } else {
                let gap = if output_only { OUTPUT_FRAME } else { FRAME };
                (last_frame + gap).max(Instant::now())
            }
        });
        tokio::select! {
            // Keys first, then frames, then output: a flood of output must not keep the operator
            // waiting.
            biased;
            _ = recv_hangup(&mut hangup) => {
                hangup = None;
                input_open = false;
                events = None;
                terminal_gone();
                app.quit_when_done = true;
            }
            ev = next_event(&mut events), if input_open => match ev {
                Some(Ok(TermEvent::Key(key))) if key.kind == KeyEventKind::Press => {
                    key_pressed = true;
                    for effect in keys::on_key(&mut app, key) {
                        match effect {
                            Effect::Send(c) => {
                                let _ = commands.send(c).await;
                            }
                            Effect::Quit => {
                                app.quit_when_done = true;
                            }
                            Effect::Suspend => {
                                let _ = guard.suspend();
                                if app.mouse {
                                    let _ = terminal::mouse(true);
                                }
                                let _ = screen.terminal.clear();
                                screen.forget();
                                app.dirty = true;
                            }
                            Effect::Mouse(on) => {
                                let _ = terminal::mouse(on);
                            }
                        }
                    }
                    load_wanted_log(&mut app, &run_dir);
                }
                Some(Ok(TermEvent::Mouse(m))) => {
                    keys::on_mouse(&mut app, m);
                    key_pressed = app.dirty;
                }
                Some(Ok(TermEvent::Resize(w, h))) => {
                    app.screen = (w, h);
                    app.dirty = true;
                }
                Some(Ok(_)) => {}
                // The terminal went away: nobody is left to press q.
                Some(Err(_)) | None => {
                    input_open = false;
                    events = None;
                    terminal_gone();
                    app.quit_when_done = true;
                }
            },
            _ = crate::engine::sleep_until_opt(frame_at) => {
                // With the terminal gone there is nobody to draw for.
                if input_open {
                    draw(&mut screen, &mut app, &theme);
                } else {
                    app.dirty = false;
                }
                last_frame = Instant::now();
                output_only = false;
            }
            _ = tick.tick(), if app.finished.is_none() => {
                app.dirty = true;
                output_only = false;
            }
            // Once the run has ended the engine says no more about the store: the copy does.
            status = store_changed(&mut store_status), if engine.is_none() => {
                if app.store_behind != status.behind {
                    app.store_behind = status.behind;
                    app.dirty = true;
                }
            }
            u = updates.recv(), if engine.is_some() => match u {
                Some(u) => {
                    // Take what else is waiting (a few, so that keys are heard between batches):
                    // a chatty step costs one frame, not one per chunk.
                    let mut batch = vec![u];
                    while batch.len() < 16 {
                        match updates.try_recv() {
                            Ok(u) => batch.push(u),
                            Err(_) => break,
                        }
                    }
                    let only_output = batch.iter().all(|u| matches!(u, crate::engine::Update::Output { .. }));
                    output_only = only_output && (output_only || !app.dirty);
                    app.apply_batch(batch);
                    load_wanted_log(&mut app, &run_dir);
                }
                None => {
                    let handle = engine.take().expect("engine handle");
                    let o = handle.await.unwrap_or(Outcome::Failed);
                    outcome = Some(o);
                    app.dirty = true;
                    if o == Outcome::Interrupted || !input_open {
                        app.quit_when_done = true;
                    }
                }
            },
        }
        if app.quit_when_done && outcome.is_some() {
            break;
        }
    }
    if input_open {
        drop(screen);
        drop(guard);
    } else {
        // Restoring a terminal that is gone can only fail (ratatui would print about it); there
        // is nothing to restore.
        std::mem::forget(screen);
        std::mem::forget(guard);
    }
    let o = outcome.unwrap_or(Outcome::Failed);
    if let Some(to) = app.handed_over {
        if input_open {
            return Ended::HandedOver { to };
        }
        // Nobody is there to watch: the terminal hung up.
        crate::out!(
            "runbook: handed over to {to} — watch with: runbook attach {}",
            run_dir.display()
        );
        return Ended::Exit(0);
    }
    crate::out!(
        "runbook: run {} (exit {}); journal: {}",
        o.as_str().replace('_', " "),
        o.exit_code(),
        run_dir.display()
    );
    Ended::Exit(o.exit_code())
}

/// The most of a log file read back for the screen (its end): the screen keeps
/// `state::LOG_LINES` lines anyway.
const LOG_READ: u64 = 1 << 20;

/// Reads the log the screen asks for (an earlier attempt's, or one from an earlier session) from
/// the run folder: the only file the UI reads, here in the event loop rather than in a key or a
/// frame. A small read of a local file, done once per attempt.
fn load_wanted_log(app: &mut App, run_dir: &std::path::Path) {
    let Some((at, attempt, rel)) = app.wanted_log() else {
        return;
    };
    let read = crate::files::read_tail(&run_dir.join(&rel), LOG_READ);
    app.log_loaded(at, attempt, read);
}

/// The terminal, and the last frame drawn on it (for `scroll`).
struct Screen {
    terminal: Terminal<CrosstermBackend<std::io::Stdout>>,
    last: Option<ratatui::buffer::Buffer>,
    /// The terminal scrolls regions (every xterm-like terminal, tmux and screen do; the Linux
    /// console is left out, and `RUNBOOK_SCROLL_REGIONS=0` turns it off).
    scroll_regions: bool,
}

impl Screen {
    /// The next frame is drawn whole (the terminal was cleared or given back meanwhile).
    fn forget(&mut self) {
        self.last = None;
    }
}

fn scroll_regions() -> bool {
    let term = std::env::var("TERM").unwrap_or_default();
    std::env::var("RUNBOOK_SCROLL_REGIONS").map_or(true, |v| v != "0") && term != "linux" && term != "dumb"
}

fn draw(screen: &mut Screen, app: &mut App, theme: &Theme) {
    app.dirty = false;
    let now = std::time::Instant::now();
    let mut out = std::io::stdout();
    let _ = crossterm::queue!(out, crossterm::terminal::BeginSynchronizedUpdate);
    // A terminal that has gone away fails to draw; the run goes on regardless.
    // The backend writes to stdout, buffered: the cells go the same way, after what it queued.
    let drawn = scroll::draw(
        &mut screen.terminal,
        &mut screen.last,
        screen.scroll_regions,
        Some(&mut out),
        |f| {
            ui::draw(f, app, theme, now);
            ui::log_lines(app, f.area(), theme)
        },
    );
    if drawn.is_err() {
        screen.forget();
    }
    if std::mem::take(&mut app.bell) {
        let _ = out.write_all(b"\x07");
    }
    let _ = crossterm::execute!(out, crossterm::terminal::EndSynchronizedUpdate);
}
