//! The terminal: raw mode and the alternate screen while the UI runs, given back on every way
//! out — normal exit, a panic, a signal that ends the run — and around Ctrl-Z.

use std::io::Write;

use crossterm::cursor::{Hide, Show};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};

/// Holds the terminal in UI mode; dropping it gives the terminal back.
pub struct Guard;

fn enter() -> std::io::Result<()> {
    enable_raw_mode()?;
    crossterm::execute!(std::io::stdout(), EnterAlternateScreen, Hide)?;
    Ok(())
}

/// Mouse reports on or off: button presses and the wheel only (`?1000`), in SGR form (`?1006`);
/// never every motion, which would flood an SSH link.
pub fn mouse(on: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout();
    out.write_all(if on {
        b"\x1b[?1000h\x1b[?1006h"
    } else {
        b"\x1b[?1000l\x1b[?1006l"
    })?;
    out.flush()
}

/// Gives the terminal back. Safe to call more than once, and when the terminal is gone.
pub fn restore() {
    let _ = mouse(false);
    let _ = crossterm::execute!(std::io::stdout(), LeaveAlternateScreen, Show);
    let _ = disable_raw_mode();
    let _ = std::io::stdout().flush();
}

impl Guard {
    pub fn enter() -> std::io::Result<Guard> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enter()?;
        Ok(Guard)
    }

    /// Ctrl-Z: give the terminal back, stop until `fg`, then take it again.
    pub fn suspend(&self) -> std::io::Result<()> {
        restore();
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGTSTP);
        enter()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}
