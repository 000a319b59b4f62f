//! Searching the step's log from the keyboard: a search typed in its box, then the next match up
//! or down, around the ends of the log. Which lines match is `ui::log`'s.

use crate::tui::state::App;
use crate::tui::ui;

/// Searches the log for `text`: the newest match at or above the bottom of the view first (a log
/// is read from its end), then Ctrl-P and Ctrl-N go up and down.
pub(super) fn search(app: &mut App, text: &str) {
    app.search_at = None;
    if text.is_empty() {
        app.search = None;
        return;
    }
    app.search = Some(text.to_string());
    next_match(app, true);
}

/// Goes to the next match down (or up), around the end of the log when there is none further.
pub(super) fn next_match(app: &mut App, up: bool) {
    let Some(query) = app.search.clone() else {
        app.note("no search: / searches the log");
        return;
    };
    let hits = ui::log::matching_lines(app);
    let Some(len) = app.shown_log().map(|l| l.len()) else {
        app.note(format!("\"{query}\" not found: this step has no output"));
        return;
    };
    if hits.is_empty() {
        app.note(format!("\"{query}\" not found in this log"));
        return;
    }
    // From the match last gone to, or (a new search) from just below the view.
    let from = app.search_at.unwrap_or(len - app.log_scroll.min(len));
    let found = if up {
        hits.iter().rev().find(|&&i| i < from).copied()
    } else {
        // A new search starts below the view; a next match is below the last one.
        let first = from + usize::from(app.search_at.is_some());
        hits.iter().find(|&&i| i >= first).copied()
    };
    let line = match found {
        Some(i) => i,
        None => {
            app.note(if up {
                "search went past the start of the log: on from its end"
            } else {
                "search went past the end of the log: on from its start"
            });
            if up { hits[hits.len() - 1] } else { hits[0] }
        }
    };
    app.search_at = Some(line);
    app.follow = false;
    ui::log::show_line(app, line);
}
