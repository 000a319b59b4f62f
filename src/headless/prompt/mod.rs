//! The headless front end's questions on a terminal: the go-ahead, what to do after a failure or
//! with a trigger firing.
//!
//! - One key answers: the terminal is put in non-canonical mode without echo (signals still work:
//!   Ctrl-C interrupts the run as always) only while a question is open, and its settings are put
//!   back when the question is answered or withdrawn, when the run ends, and on a panic.
//! - A key that is not one of the choices is answered with the choices, never with a silent
//!   re-prompt.
//! - Progress lines printed while a question is open never land in it: the front end pauses the
//!   question (its line is erased) while it prints, and the line is drawn again after.
//! - A reason (for a skip, for marking a step done, for a rollback) is typed on the question line
//!   with Backspace, Ctrl-U and Esc (back to the choices), and survives progress lines too.
//!
//! Keys are read on a blocking thread that polls stdin, so that a question withdrawn (the run moved
//! on) lets go of the terminal at once. This module leaves what a key means to the engine: it only
//! sends the command the operator chose. The choices, the question's text and decoding bytes into
//! keys are `question`'s.

use std::io::{IsTerminal as _, Write as _};
use std::os::fd::AsFd as _;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

mod question;

pub(super) use question::go_ahead_question;
pub use question::{Choice, Question};
use question::{Key, keys};

use crate::engine::Command;

/// The terminal's settings before a question changed them.
type Saved = nix::sys::termios::Termios;

struct Shared {
    /// The question line as it should look now (choices, or a reason being typed), if one is open.
    line: Option<String>,
    /// The front end is printing: the question line is erased and not drawn until it is done.
    paused: bool,
    /// Bumped when a question is asked or withdrawn: a reader of an older one stops.
    generation: u64,
    /// The terminal's settings to put back, while they are changed.
    saved: Option<Saved>,
    /// stderr is a terminal: the question line can be erased and drawn again.
    redraw: bool,
}

/// Asks questions on the terminal for the headless front end. Dropping it puts the terminal back.
pub struct Prompter {
    shared: Arc<Mutex<Shared>>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes to stderr, ignoring errors (the terminal may be gone after a hang-up).
fn err(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes());
    let _ = e.flush();
}

/// What erases `line` as drawn: back to its first row (it may have wrapped), then to the end of
/// the screen.
fn erase(line: &str) -> String {
    let cols = crossterm::terminal::size().map_or(80, |(c, _)| c.max(1)) as usize;
    let width = unicode_width::UnicodeWidthStr::width(line);
    let rows = width.div_ceil(cols).max(1);
    if rows > 1 {
        format!("\r\x1b[{}A\x1b[J", rows - 1)
    } else {
        "\r\x1b[J".into()
    }
}

impl Default for Prompter {
    fn default() -> Self {
        Self::new()
    }
}

impl Prompter {
    pub fn new() -> Prompter {
        Prompter {
            shared: Arc::new(Mutex::new(Shared {
                line: None,
                paused: false,
                generation: 0,
                saved: None,
                redraw: std::io::stderr().is_terminal(),
            })),
        }
    }

    /// Before the front end prints: the question line, if one shows, is erased. (With stderr not
    /// a terminal nothing can be erased: the question simply stays where it was printed.)
    pub fn pause(&self) {
        let mut s = lock(&self.shared);
        if !s.paused && s.redraw {
            s.paused = true;
            if let Some(line) = s.line.as_deref().filter(|_| s.redraw) {
                err(&erase(line));
            }
        }
    }

    /// After the front end printed (and flushed): the question line is drawn again.
    pub fn resume(&self) {
        let mut s = lock(&self.shared);
        if s.paused {
            s.paused = false;
            if let Some(line) = &s.line {
                err(line);
            }
        }
    }

    /// Asks `q`; the answer is sent on `commands`. A question still open is withdrawn first.
    pub fn ask(&self, commands: mpsc::Sender<Command>, q: Question) {
        let generation = {
            let mut s = lock(&self.shared);
            withdraw_locked(&mut s);
            s.generation += 1;
            let paused = s.paused;
            if !q.context.is_empty() {
                err(&q.context);
            }
            if !raw_mode(&mut s) {
                // stdin is not a terminal after all (it was checked before): nobody can answer.
                drop(s);
                let _ = commands.try_send(Command::Abort {
                    reason: Some("stdin is not a terminal: nobody can answer".into()),
                });
                return;
            }
            s.line = Some(q.choices.clone());
            if !paused {
                err(&q.choices);
            }
            s.generation
        };
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let answer = Reader {
                shared: &shared,
                generation,
                q: &q,
            }
            .answer();
            if let Some(cmd) = answer {
                let _ = commands.blocking_send(cmd);
            }
        });
    }

    /// The run moved on without an answer: the open question (if any) is taken off the screen
    /// and the terminal given back.
    pub fn withdraw(&self) {
        withdraw_locked(&mut lock(&self.shared));
    }
}

impl Drop for Prompter {
    fn drop(&mut self) {
        self.withdraw();
    }
}

fn withdraw_locked(s: &mut Shared) {
    // Also between a choice and its reason's line (no line shows then): the reader stops.
    s.generation += 1;
    if let Some(line) = s.line.take()
        && s.redraw
        && !s.paused
    {
        err(&erase(&line));
    }
    restore(s);
}

/// Non-canonical mode without echo, signals kept. False when stdin is no terminal.
fn raw_mode(s: &mut Shared) -> bool {
    use nix::sys::termios::{LocalFlags, SetArg, SpecialCharacterIndices, tcgetattr, tcsetattr};
    if s.saved.is_some() {
        return true;
    }
    let stdin = std::io::stdin();
    let Ok(saved) = tcgetattr(stdin.as_fd()) else {
        return false;
    };
    let mut t = saved.clone();
    t.local_flags.remove(LocalFlags::ICANON | LocalFlags::ECHO);
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    if tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &t).is_err() {
        return false;
    }
    s.saved = Some(saved);
    true
}

fn restore(s: &mut Shared) {
    use nix::sys::termios::{SetArg, tcsetattr};
    if let Some(saved) = s.saved.take() {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &saved);
    }
}

/// Reads keys for one question until it is answered or withdrawn.
struct Reader<'a> {
    shared: &'a Mutex<Shared>,
    generation: u64,
    q: &'a Question,
}

/// What the reader is waiting for.
enum Mode {
    Choice,
    /// Typing the reason for this choice; `required` when it cannot be empty.
    Reason {
        choice: Choice,
        label: &'static str,
        required: bool,
        text: String,
    },
}

impl Reader<'_> {
    /// Shows `line` as the question line (when it is current), under the lock.
    fn show(&self, line: String) -> bool {
        let mut s = lock(self.shared);
        if s.generation != self.generation {
            return false;
        }
        if !s.paused {
            match s.line.as_deref() {
                Some(old) if s.redraw => err(&format!("{}{line}", erase(old))),
                // Not a terminal: what was typed is added; anything else starts a new line.
                Some(old) if line.starts_with(old) => err(&line[old.len()..]),
                _ => err(&format!("\n{line}")),
            }
        }
        s.line = Some(line);
        true
    }

    /// Prints a remark on a line of its own, then the question line again.
    fn say(&self, remark: &str, line: String) -> bool {
        let mut s = lock(self.shared);
        if s.generation != self.generation {
            return false;
        }
        if !s.paused {
            let gone = match s.line.as_deref().filter(|_| s.redraw) {
                Some(old) => erase(old),
                None => "\n".into(),
            };
            err(&format!("{gone}{remark}\n{line}"));
        }
        s.line = Some(line);
        true
    }

    /// The question is answered: its line stays with the answer, the terminal is given back.
    fn done(&self, answer: &str) -> bool {
        self.finish(answer, false)
    }

    /// The line is answered; with `more`, a reason follows and the terminal stays as it is.
    fn finish(&self, answer: &str, more: bool) -> bool {
        let mut s = lock(self.shared);
        if s.generation != self.generation {
            return false;
        }
        let line = s.line.take().unwrap_or_default();
        s.generation += 1;
        if s.paused {
            // Erased while the front end prints: the line comes back with its answer.
            err(&format!("{line}{answer}\n"));
        } else {
            // On screen, the cursor at its end.
            err(&format!("{answer}\n"));
        }
        if !more {
            restore(&mut s);
        }
        true
    }

    /// After `finish(.., true)`, the same question goes on with a new line (a reason to type).
    fn reopen(&self, line: String) -> bool {
        let mut s = lock(self.shared);
        if s.generation != self.generation + 1 || !raw_mode(&mut s) {
            return false;
        }
        s.generation = self.generation;
        if !s.paused {
            err(&line);
        }
        s.line = Some(line);
        true
    }

    fn current(&self) -> bool {
        lock(self.shared).generation == self.generation
    }

    /// Waits up to 100 ms for input; reads what is there. `None`: nothing yet; `Some(empty)`: end
    /// of input.
    fn read(&self) -> Option<Vec<u8>> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return None,
            Ok(_) => {}
            Err(_) => return Some(Vec::new()),
        }
        let mut buf = [0u8; 256];
        match nix::unistd::read(fd, &mut buf) {
            Ok(n) => Some(buf[..n].to_vec()),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => None,
            Err(_) => Some(Vec::new()),
        }
    }

    fn answer(&self) -> Option<Command> {
        let q = self.q;
        let mut mode = Mode::Choice;
        loop {
            if !self.current() {
                return None;
            }
            let Some(bytes) = self.read() else { continue };
            if bytes.is_empty() {
                if self.done("(stdin closed)") {
                    return Some(Command::Abort {
                        reason: Some("stdin closed".into()),
                    });
                }
                return None;
            }
            for key in keys(&bytes) {
                match &mut mode {
                    Mode::Choice => {
                        let Some(choice) = Choice::of(&key, &q.offered) else {
                            let named = match &key {
                                Key::Char(c) => format!("`{c}`"),
                                Key::Enter if q.offered.contains(&Choice::ConfirmIrreversible) => {
                                    "Enter (this step cannot be undone: y runs it)".into()
                                }
                                Key::Enter => "Enter".into(),
                                Key::Backspace => "Backspace".into(),
                                Key::Clear => "Ctrl-U".into(),
                                Key::Esc => "Esc".into(),
                                Key::Other(what) => what.clone(),
                            };
                            let keys: Vec<&str> = q.offered.iter().map(|c| c.key()).collect();
                            let remark = format!("{named} is not one of the choices: {}", keys.join(", "));
                            if !self.say(&remark, q.choices.clone()) {
                                return None;
                            }
                            continue;
                        };
                        let reason = match choice {
                            Choice::Skip => Some(("reason for skipping: ", true)),
                            Choice::MarkDone => Some(("why is it done? ", true)),
                            Choice::Rollback => Some(("why roll back? (Enter: no reason) ", false)),
                            _ => None,
                        };
                        if let Some((label, required)) = reason {
                            // The choice stays on the question's line; the reason gets its own.
                            if !self.finish(choice.words(), true) || !self.reopen(label.to_string()) {
                                return None;
                            }
                            mode = Mode::Reason {
                                choice,
                                label,
                                required,
                                text: String::new(),
                            };
                            continue;
                        }
                        if !self.done(choice.words()) {
                            return None;
                        }
                        return Some(match choice {
                            Choice::Confirm | Choice::ConfirmIrreversible => Command::Confirm {
                                by: None,
                                step: Some(q.at),
                            },
                            Choice::Retry => Command::Retry,
                            Choice::Acknowledge => Command::Acknowledge,
                            _ => Command::Abort {
                                reason: Some("stopped by the operator".into()),
                            },
                        });
                    }
                    Mode::Reason {
                        choice,
                        label,
                        required,
                        text,
                    } => {
                        let head = label.to_string();
                        match key {
                            Key::Char(c) => text.push(c),
                            Key::Backspace => {
                                text.pop();
                            }
                            Key::Clear => text.clear(),
                            Key::Esc => {
                                mode = Mode::Choice;
                                let back = format!("{}(back to the choices)", head);
                                if !self.say(&back, q.choices.clone()) {
                                    return None;
                                }
                                continue;
                            }
                            Key::Other(_) => {}
                            Key::Enter => {
                                let reason = text.trim().to_string();
                                if reason.is_empty() && *required {
                                    let remark = format!(
                                        "{} needs a reason (Esc goes back to the choices)",
                                        if *choice == Choice::Skip {
                                            "a skip"
                                        } else {
                                            "marking it done"
                                        }
                                    );
                                    if !self.say(&remark, head) {
                                        return None;
                                    }
                                    continue;
                                }
                                let choice = *choice;
                                // The line stays as typed: the answer is on it.
                                if !self.done("") {
                                    return None;
                                }
                                return Some(match choice {
                                    Choice::Skip => Command::Skip { reason },
                                    Choice::MarkDone => Command::MarkDone { reason },
                                    _ if reason.is_empty() => Command::Rollback,
                                    _ => Command::RollbackWithNote { note: reason },
                                });
                            }
                        }
                        if !self.show(format!("{head}{text}")) {
                            return None;
                        }
                    }
                }
            }
        }
    }
}
