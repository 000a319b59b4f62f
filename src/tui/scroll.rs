//! Frames that move the log by scrolling the terminal: when a frame's log pane is the last
//! frame's moved up by a few rows (new output while following), the terminal is told to scroll
//! those rows (a scrolling region, `CSI top;bottom r` + `CSI n S`) and only what is new is sent,
//! instead of every cell of the pane that changed. Over SSH this is what keeps a chatty step from
//! filling the link (see `assets/bench/follow.py`).
//!
//! A scrolling region spans whole rows: the overview and the sidebar beside the log move too, and
//! the frame's diff puts them back. So the scroll is taken only when it costs fewer cells than
//! the plain diff. Everything here compares buffers; the drawing itself stays in `ui`.

use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::Rect;
use unicode_width::UnicodeWidthStr;

/// What one scroll costs on the wire, in cells: the three escapes (about 15 bytes) and the cursor
/// moves it adds, against cells of about 3 to 10 bytes each.
const SCROLL_COST: usize = 4;

/// How far the rows of `region` moved up from `old` to `new`: the smallest `n` such that every
/// row of `new` in the region, but the last `n`, is the row `n` below it in `old` (within the
/// region's columns). Nothing when it did not move, or moved by its whole height.
pub fn moved_up(old: &Buffer, new: &Buffer, region: Rect) -> Option<u16> {
    if old.area != new.area || region.height < 2 || !old.area.contains(region.as_position()) {
        return None;
    }
    let region = region.intersection(old.area);
    let row =
        |b: &Buffer, y: u16| -> Vec<Cell> { (region.x..region.right()).map(|x| b[(x, y)].clone()).collect() };
    let old_rows: Vec<Vec<Cell>> = (region.top()..region.bottom()).map(|y| row(old, y)).collect();
    let new_rows: Vec<Vec<Cell>> = (region.top()..region.bottom()).map(|y| row(new, y)).collect();
    if old_rows == new_rows {
        return None;
    }
    let h = old_rows.len();
    (1..h)
        .find(|&n| (0..h - n).all(|i| new_rows[i] == old_rows[i + n]))
        .map(|n| n as u16)
}

/// `old` with the whole rows `top..bottom` moved up by `n`, blank rows coming in at the bottom:
/// what the terminal shows once it scrolled that region.
pub fn scrolled(old: &Buffer, top: u16, bottom: u16, n: u16) -> Buffer {
    let mut out = old.clone();
    let area = old.area;
    for y in top..bottom {
        for x in area.left()..area.right() {
            out[(x, y)] = if y + n < bottom {
                old[(x, y + n)].clone()
            } else {
                Cell::default()
            };
        }
    }
    out
}

/// A cursor move (`CSI row;col H`) costs 6 to 10 bytes: a gap of up to this many unchanged
/// plain cells between two changed ones on a row is cheaper written again than jumped over.
const GAP: u16 = 6;

/// The cells a frame sends to turn `from` into `to`: the changed ones (ratatui's diff), and
/// between two of them on a row the few unchanged cells in the same style (the spaces between
/// words), so that the terminal gets text rather than a cursor move per word.
pub fn updates<'a>(from: &Buffer, to: &'a Buffer) -> Vec<(u16, u16, &'a Cell)> {
    let changed = from.diff(to);
    let mut out: Vec<(u16, u16, &'a Cell)> = Vec::with_capacity(changed.len());
    for (x, y, cell) in changed {
        if let Some(&(px, py, prev)) = out.last() {
            let next = px + (prev.symbol().width() as u16).max(1);
            let plain = |gx: u16| {
                let c = &to[(gx, y)];
                c.symbol().len() == 1
                    && c.symbol().is_ascii()
                    && c.fg == prev.fg
                    && c.bg == prev.bg
                    && c.modifier == prev.modifier
                    && c.underline_color == prev.underline_color
            };
            if py == y && x > next && x - next <= GAP && (next..x).all(plain) {
                out.extend((next..x).map(|gx| (gx, y, &to[(gx, y)])));
            }
        }
        out.push((x, y, cell));
    }
    out
}

/// Cells a frame would send to turn `from` into `to`.
fn cost(from: &Buffer, to: &Buffer) -> usize {
    updates(from, to).len()
}

/// The scroll that makes the frame from `old` to `new` cheapest, if one does: the rows to scroll
/// (whole rows, those of `region`), by how many, and what the terminal shows once scrolled.
pub fn plan(old: &Buffer, new: &Buffer, region: Rect) -> Option<(u16, u16, u16, Buffer)> {
    let n = moved_up(old, new, region)?;
    let (top, bottom) = (region.top(), region.bottom().min(old.area.bottom()));
    let after = scrolled(old, top, bottom, n);
    (cost(&after, new) + SCROLL_COST < cost(old, new)).then_some((top, bottom, n, after))
}

/// Draws one frame: `render` draws it and says where the log's lines are (if they are on
/// screen); when they moved up since the last frame, the terminal scrolls them and the frame
/// sends only the rest. `last` is the last frame drawn (`None` after the screen was cleared),
/// which is also what ratatui's previous buffer holds: the cells are sent here (`updates`, to
/// `out` — the terminal the backend writes to — or through the backend), and the buffers
/// swapped as ratatui's own `draw` does. The cursor stays hidden (the terminal guard hid it).
pub fn draw<B: Backend>(
    terminal: &mut Terminal<B>,
    last: &mut Option<Buffer>,
    scroll_regions: bool,
    out: Option<&mut dyn std::io::Write>,
    render: impl FnOnce(&mut ratatui::Frame) -> Option<Rect>,
) -> std::io::Result<()> {
    let fail = |e: B::Error| std::io::Error::other(e.to_string());
    terminal.autoresize().map_err(fail)?;
    let mut frame = terminal.get_frame();
    let region = render(&mut frame);
    let new = terminal.current_buffer_mut().clone();
    let planned = match (last.as_ref(), region) {
        (Some(old), Some(r)) if scroll_regions => plan(old, &new, r),
        _ => None,
    };
    let cells = match (&planned, last.as_ref()) {
        (Some((top, bottom, n, after)), _) => {
            terminal
                .backend_mut()
                .scroll_region_up(*top..*bottom, *n)
                .map_err(fail)?;
            Some(updates(after, &new))
        }
        // The last frame is what ratatui diffs against too (same size: no resize since).
        (None, Some(old)) if old.area == new.area => Some(updates(old, &new)),
        (None, _) => None,
    };
    match (cells, out) {
        (Some(cells), Some(out)) => emit(out, &cells, new.area)?,
        (Some(cells), None) => terminal.backend_mut().draw(cells.into_iter()).map_err(fail)?,
        (None, _) => terminal.flush().map_err(fail)?,
    }
    terminal.swap_buffers();
    terminal.backend_mut().flush().map_err(fail)?;
    *last = Some(new);
    Ok(())
}

/// Writes `cells` (in rows, left to right, as a diff lists them) to the terminal: ratatui's own
/// backend does the same, but moves the cursor with a full `CSI row;col H` every time; here a
/// move along the row is `CSI n C` and the start of the next row is `CR LF`, and the style is
/// reset once at the end (`SGR 0`) only when it is not the default.
pub fn emit(mut w: &mut dyn std::io::Write, cells: &[(u16, u16, &Cell)], area: Rect) -> std::io::Result<()> {
    use crossterm::queue;
    use crossterm::style::{
        Attribute, Colors, SetAttribute, SetBackgroundColor, SetColors, SetForegroundColor, SetUnderlineColor,
    };
    use ratatui::backend::IntoCrossterm;
    use ratatui::style::{Color, Modifier};

    let mut at: Option<(u16, u16)> = None;
    let (mut fg, mut bg, mut ul) = (Color::Reset, Color::Reset, Color::Reset);
    let mut modifier = Modifier::empty();
    for &(x, y, cell) in cells {
        match at {
            Some((ax, ay)) if ax == x && ay == y => {}
            Some((ax, ay)) if ay == y && x > ax => match x - ax {
                1 => w.write_all(b"\x1b[C")?,
                n => write!(w, "\x1b[{n}C")?,
            },
            Some((_, ay)) if ay + 1 == y && x == area.x && y < area.bottom() => w.write_all(b"\r\n")?,
            _ => queue!(&mut w, crossterm::cursor::MoveTo(x, y))?,
        }
        if cell.modifier != modifier {
            if !(modifier - cell.modifier).is_empty() {
                // Something is taken away: start again from plain, colours included.
                w.write_all(b"\x1b[0m")?;
                modifier = Modifier::empty();
                (fg, bg, ul) = (Color::Reset, Color::Reset, Color::Reset);
            }
            let added = cell.modifier - modifier;
            for (m, a) in [
                (Modifier::BOLD, Attribute::Bold),
                (Modifier::DIM, Attribute::Dim),
                (Modifier::ITALIC, Attribute::Italic),
                (Modifier::UNDERLINED, Attribute::Underlined),
                (Modifier::SLOW_BLINK, Attribute::SlowBlink),
                (Modifier::RAPID_BLINK, Attribute::RapidBlink),
                (Modifier::REVERSED, Attribute::Reverse),
                (Modifier::HIDDEN, Attribute::Hidden),
                (Modifier::CROSSED_OUT, Attribute::CrossedOut),
            ] {
                if added.contains(m) {
                    queue!(&mut w, SetAttribute(a))?;
                }
            }
            modifier = cell.modifier;
        }
        // One colour at a time when only one changes: `CSI 39m` rather than `CSI 39;49m`; one
        // of the sixteen terminal colours by its own code, `CSI 90m` rather than `CSI 38;5;8m`.
        match (cell.fg != fg, cell.bg != bg) {
            (true, true) => match (sgr16(cell.fg), sgr16(cell.bg)) {
                (Some(f), Some(b)) => write!(w, "\x1b[{f};{}m", b + 10)?,
                _ => queue!(
                    &mut w,
                    SetColors(Colors::new(cell.fg.into_crossterm(), cell.bg.into_crossterm()))
                )?,
            },
            (true, false) => match sgr16(cell.fg) {
                Some(f) => write!(w, "\x1b[{f}m")?,
                None => queue!(&mut w, SetForegroundColor(cell.fg.into_crossterm()))?,
            },
            (false, true) => match sgr16(cell.bg) {
                Some(b) => write!(w, "\x1b[{}m", b + 10)?,
                None => queue!(&mut w, SetBackgroundColor(cell.bg.into_crossterm()))?,
            },
            (false, false) => {}
        }
        (fg, bg) = (cell.fg, cell.bg);
        if cell.underline_color != ul {
            queue!(&mut w, SetUnderlineColor(cell.underline_color.into_crossterm()))?;
            ul = cell.underline_color;
        }
        w.write_all(cell.symbol().as_bytes())?;
        at = Some((x + (cell.symbol().width() as u16).max(1), y));
    }
    if !modifier.is_empty() || fg != Color::Reset || bg != Color::Reset || ul != Color::Reset {
        w.write_all(b"\x1b[0m")?;
    }
    Ok(())
}

/// The foreground code of one of the sixteen terminal colours (and of the default), as every
/// terminal knows it: `30`–`37`, `90`–`97`, `39`; the background's is ten more. The same
/// colours crossterm would write as `38;5;N`, in half the bytes.
fn sgr16(c: ratatui::style::Color) -> Option<u8> {
    use ratatui::style::Color;
    Some(match c {
        Color::Reset => 39,
        Color::Black => 30,
        Color::Red => 31,
        Color::Green => 32,
        Color::Yellow => 33,
        Color::Blue => 34,
        Color::Magenta => 35,
        Color::Cyan => 36,
        Color::Gray => 37,
        Color::DarkGray => 90,
        Color::LightRed => 91,
        Color::LightGreen => 92,
        Color::LightYellow => 93,
        Color::LightBlue => 94,
        Color::LightMagenta => 95,
        Color::LightCyan => 96,
        Color::White => 97,
        Color::Indexed(i @ 0..=7) => 30 + i,
        Color::Indexed(i @ 8..=15) => 82 + i,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::text::Line;
    use ratatui::widgets::Paragraph;

    fn lines(from: usize, area: Rect) -> impl FnOnce(&mut ratatui::Frame) -> Option<Rect> {
        move |f: &mut ratatui::Frame| {
            let text: Vec<Line> = (from..from + area.height as usize)
                .map(|i| {
                    let words = ["deploying", "pod ready", "GET /api 200", "cache miss", "retrying"];
                    Line::from(format!("{i:03} {} ({})", words[i % 5], i * 7919 % 1000))
                })
                .collect();
            f.render_widget(Paragraph::new(text), area);
            f.render_widget(Paragraph::new("side"), Rect::new(36, 0, 4, 1));
            Some(area)
        }
    }

    #[test]
    fn a_log_moved_up_is_scrolled_and_the_screen_ends_up_the_same() {
        let region = Rect::new(0, 1, 34, 8);
        let mut terminal = Terminal::new(TestBackend::new(40, 10)).expect("terminal");
        let mut last = None;
        draw(&mut terminal, &mut last, true, None, lines(0, region)).expect("draw");
        let before = terminal.backend().buffer().clone();
        // Three new lines: the pane moved up by three rows.
        draw(&mut terminal, &mut last, true, None, lines(3, region)).expect("draw");
        let old = before;
        let new = last.clone().expect("a frame");
        assert_eq!(moved_up(&old, &new, region), Some(3));
        // The test backend scrolls its buffer as a terminal would: what is on it is the frame.
        assert_eq!(terminal.backend().buffer(), &new);
        let plain = cost(&old, &new);
        let (_, _, _, after) = plan(&old, &new, region).expect("a scroll");
        assert!(
            cost(&after, &new) * 2 < plain,
            "{} vs {plain}",
            cost(&after, &new)
        );
    }

    #[test]
    fn the_spaces_between_words_are_written_rather_than_jumped_over() {
        let area = Rect::new(0, 0, 30, 1);
        let mut old = Buffer::empty(area);
        let mut new = Buffer::empty(area);
        old.set_string(0, 0, "aaa bbb ccc", ratatui::style::Style::default());
        new.set_string(0, 0, "xxx yyy zzz", ratatui::style::Style::default());
        let cells: String = updates(&old, &new).iter().map(|(_, _, c)| c.symbol()).collect();
        assert_eq!(cells, "xxx yyy zzz");
        // A long gap is still jumped over.
        new.set_string(0, 0, "aaa bbb ccc", ratatui::style::Style::default());
        new.set_string(20, 0, "q", ratatui::style::Style::default());
        old.set_string(0, 0, "x", ratatui::style::Style::default());
        let at: Vec<u16> = updates(&old, &new).iter().map(|(x, _, _)| *x).collect();
        assert_eq!(at, [0, 20]);
    }

    #[test]
    fn the_sixteen_colours_are_written_by_their_own_codes() {
        use ratatui::style::{Color, Style};
        let area = Rect::new(0, 0, 10, 1);
        let mut b = Buffer::empty(area);
        b.set_string(0, 0, "ab", Style::default().fg(Color::DarkGray));
        b.set_string(2, 0, "c", Style::default());
        b.set_string(3, 0, "d", Style::default().fg(Color::Yellow).bg(Color::Blue));
        b.set_string(4, 0, "e", Style::default().fg(Color::Rgb(1, 2, 3)));
        let cells: Vec<(u16, u16, &Cell)> = (0..5).map(|x| (x, 0, &b[(x, 0)])).collect();
        let mut out = Vec::new();
        emit(&mut out, &cells, area).expect("emit");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "\x1b[1;1H\x1b[90mab\x1b[39mc\x1b[33;44md\x1b[38;2;1;2;3;49me\x1b[0m"
        );
    }

    #[test]
    fn a_log_that_did_not_move_is_not_scrolled() {
        let region = Rect::new(0, 1, 34, 8);
        let mut terminal = Terminal::new(TestBackend::new(40, 10)).expect("terminal");
        let mut last = None;
        draw(&mut terminal, &mut last, true, None, lines(0, region)).expect("draw");
        let old = last.clone().expect("a frame");
        // Another log altogether (another step selected): nothing to scroll.
        draw(&mut terminal, &mut last, true, None, lines(100, region)).expect("draw");
        let new = last.clone().expect("a frame");
        assert_eq!(moved_up(&old, &new, region), None);
        assert_eq!(moved_up(&old, &old, region), None);
        assert_eq!(terminal.backend().buffer(), &new);
    }
}
