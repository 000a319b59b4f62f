//! Following a log, and what the screen says while a run waits or rolls back.
//!
//! What following sends to the terminal: the whole screen drawn the way the program draws it
//! (`tui::scroll::draw`, the frame's cells written as escapes), for the checkout fixture with its
//! metrics and triggers on screen, while a step prints lines 60 to 100 bytes long. A frame that
//! only brings new lines must cost at most twice the bytes of those lines, at 120×36 and at
//! 80×24: the log's rows hold nothing else, so the terminal scrolls them and only the new lines
//! are written. (`assets/bench/follow.py` measures the same on the real binary over time.)
//!
//! Then the reading fixes: a waiting step's pane says what it waits for and the key; a watch's
//! time left is rounded up; the rollback says who called it and why.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use runbook::engine::{Chunk, Mode, StepRef, Update, Wait};
use runbook::journal::{Event, Record};
use runbook::metrics::SourceKind;
use runbook::tui::state::{App, StepState};
use runbook::tui::ui;
use runbook::tui::ui::theme::Theme;

const T0: u64 = 1_764_190_800;

fn checkout_app() -> App {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tui/checkout.toml");
    let rb = runbook::runbook::load(&path, &[]).expect("the UI fixture runbook loads");
    let mut app = App::new(
        Arc::new(rb),
        Mode::Run,
        &[SourceKind::Simulated, SourceKind::Simulated],
        "/tmp/run".into(),
    );
    let ts = |s: u64| {
        humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + s)).to_string()
    };
    app.apply(Update::Event(Record {
        ts: ts(0),
        event: Event::StepStarted {
            phase: "canary".into(),
            step: "deploy".into(),
            attempt: 1,
            rollback: false,
        },
    }));
    for s in 1..40 {
        let values = [("error_rate", 0.002 + s as f64 * 1e-5), ("p95_latency", 0.18)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Some(v)))
            .collect();
        app.apply(Update::Event(Record {
            ts: ts(s * 5),
            event: Event::MetricsSampled {
                values,
                errors: Default::default(),
            },
        }));
    }
    app
}

/// Line `i` of a steady log, as `assets/bench/follow.py` writes them: 60 to 100 bytes, a few
/// kinds of message in turn.
fn line(i: u64) -> String {
    match (i.wrapping_mul(2_654_435_761) >> 11) % 5 {
        0 => format!(
            "{i:06} INFO checkout-7f9c: GET /api/cart/{} 200 in {}ms",
            i * 7919 % 100_000,
            3 + i % 53
        ),
        1 => format!(
            "{i:06} DEBUG pool: {} idle, {} busy connections to db-primary:5432",
            i % 17,
            i % 9
        ),
        2 => format!(
            "{i:06} INFO rollout: pod checkout-{:x} ready ({}/40), waiting for readiness probes",
            i * 2_654_435_761 % (1 << 24),
            i % 40
        ),
        3 => format!(
            "{i:06} WARN cache: miss ratio {:.3} above 0.2 for region eu-west-1",
            (i % 100) as f64 / 250.0
        ),
        _ => format!(
            "{i:06} INFO http: POST /api/orders {} bytes from 10.{}.{}.{}",
            200 + i % 3000,
            i % 256,
            i * 3 % 256,
            i * 7 % 256
        ),
    }
}

/// Lines `from..to` of the log, one second apart; returns their bytes (newlines included).
fn print(app: &mut App, from: u64, to: u64) -> usize {
    let mut bytes = 0;
    for i in from..to {
        let text = format!("{}\n", line(i));
        bytes += text.len();
        app.apply(Update::Output {
            step: StepRef {
                rollback: false,
                phase: 1,
                step: 0,
            },
            chunk: Chunk {
                at: SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + 200 + i / 20),
                bytes: text.into_bytes(),
            },
        });
    }
    bytes
}

/// One frame as the program draws it: what it writes to the terminal, and the frame.
fn frame(terminal: &mut Terminal<TestBackend>, last: &mut Option<Buffer>, app: &App) -> Vec<u8> {
    let theme = Theme {
        color: true,
        ascii: false,
    };
    let now = app.started + Duration::from_secs(260);
    let mut out = Vec::new();
    runbook::tui::scroll::draw(terminal, last, true, Some(&mut out), |f| {
        ui::draw(f, app, &theme, now);
        ui::log_lines(app, f.area(), &theme)
    })
    .expect("draw");
    out
}

fn follow(cols: u16, rows: u16) {
    let mut app = checkout_app();
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).expect("terminal");
    let mut last = None;
    print(&mut app, 0, 40);
    frame(&mut terminal, &mut last, &app);
    let mut sent = 0;
    let mut lines = 0;
    // Five lines a frame (20 lines a second at 4 frames a second), twenty frames.
    for k in 0..20 {
        let from = 40 + k * 5;
        lines += print(&mut app, from, from + 5);
        sent += frame(&mut terminal, &mut last, &app).len();
    }
    let screen: String = {
        let b = last.as_ref().expect("a frame");
        (0..b.area.height)
            .map(|y| (0..b.area.width).map(|x| b[(x, y)].symbol()).collect::<String>() + "\n")
            .collect()
    };
    // The newest line is on screen whole, and the metrics and triggers are still there.
    assert!(screen.contains(&line(139)), "{screen}");
    assert!(screen.contains("error-rate"), "{screen}");
    assert!(
        sent <= 2 * lines,
        "{cols}×{rows}: {sent} bytes sent for {lines} bytes of lines ({:.2}×)",
        sent as f64 / lines as f64
    );
}

#[test]
fn following_at_120x36_sends_at_most_twice_the_lines() {
    follow(120, 36);
}

#[test]
fn following_at_80x24_sends_at_most_twice_the_lines() {
    follow(80, 24);
}

#[test]
fn at_120x36_the_log_spans_the_whole_width_below_the_other_panes() {
    let app = checkout_app();
    let area = ratatui::layout::Rect::new(0, 0, 120, 36);
    let a = ui::layout(&app, area);
    let log = a.log.expect("a log pane");
    assert_eq!((log.x, log.width), (0, 120));
    for pane in [a.overview, a.steps, a.sidebar] {
        let p = pane.expect("the pane is on screen");
        assert!(p.bottom() <= log.y, "{p:?} above the log at {log:?}");
    }
}

/// The whole screen at `cols`×`rows`, as text.
fn screen(app: &App, cols: u16, rows: u16) -> String {
    let theme = Theme {
        color: false,
        ascii: false,
    };
    let mut terminal = Terminal::new(TestBackend::new(cols, rows)).expect("terminal");
    terminal
        .draw(|f| ui::draw(f, app, &theme, app.started + Duration::from_secs(260)))
        .expect("draw");
    let b = terminal.backend().buffer();
    (0..b.area.height)
        .map(|y| (0..b.area.width).map(|x| b[(x, y)].symbol()).collect::<String>() + "\n")
        .collect()
}

#[test]
fn a_sidebar_too_short_for_its_triggers_counts_those_it_leaves_out() {
    let mut app = checkout_app();
    for k in 0..12 {
        let mut t = app.triggers[1].clone();
        t.id = format!("extra-{k:02}");
        app.triggers.push(t);
    }
    let s = screen(&app, 120, 36);
    let shown = app
        .triggers
        .iter()
        .filter(|t| s.contains(&format!("│{} ", t.id)))
        .count();
    let more: usize = s
        .split_once('+')
        .and_then(|(_, r)| r.split(' ').next()?.parse().ok())
        .expect("a `+N triggers (m)` line");
    assert!(more > 0 && shown > 0, "{s}");
    assert_eq!(shown + more, app.triggers.len(), "{s}");
    assert!(s.contains(&format!("+{more} triggers (m)")), "{s}");
}

#[test]
fn the_phase_on_screen_stays_in_view_in_a_long_overview() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut toml = String::from("[runbook]\ntitle = \"Many phases\"\n");
    for p in 0..30 {
        toml.push_str(&format!(
            "\n[[phase]]\nid = \"p{p:02}\"\ntitle = \"Phase number {p:02}\"\n\n[[phase.step]]\ntitle = \"Step\"\nrun = \"true\"\n"
        ));
    }
    let path = dir.path().join("many.toml");
    std::fs::write(&path, toml).expect("write");
    let rb = runbook::runbook::load(&path, &[]).expect("loads");
    let mut app = App::new(Arc::new(rb), Mode::Run, &[], "/tmp/run".into());
    // The overview is the first 24 columns.
    let overview = |app: &App| -> String {
        screen(app, 120, 36)
            .lines()
            .map(|l| l.chars().take(24).collect::<String>() + "\n")
            .collect()
    };
    let s = overview(&app);
    assert!(s.contains("Phase number 00"), "{s}");
    app.selected.phase = 29;
    let s = overview(&app);
    assert!(s.contains("Phase number 29"), "{s}");
    assert!(!s.contains("Phase number 00"), "{s}");
}

fn event(app: &mut App, s: u64, event: Event) {
    let ts =
        humantime::format_rfc3339_millis(SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + s)).to_string();
    app.apply(Update::Event(Record { ts, event }));
}

#[test]
fn a_waiting_manual_step_says_what_it_waits_for_and_the_key() {
    let mut app = checkout_app();
    app.selected = StepRef {
        rollback: false,
        phase: 0,
        step: 0,
    };
    app.follow = false;
    app.apply(Update::Waiting {
        step: app.selected,
        why: Wait::GoAhead { irreversible: false },
    });
    for (cols, rows) in [(80, 24), (120, 36)] {
        let s = screen(&app, cols, rows);
        let pane = s.split("Log:").nth(1).expect("the log pane");
        assert!(
            pane.contains("Waiting for you to do this step by hand, then Enter"),
            "{s}"
        );
        assert!(pane.contains("To do: Check in #deploys"), "{s}");
        assert!(!pane.contains("│waiting"), "{s}");
    }
}

#[test]
fn a_watch_shows_its_time_left_rounded_up() {
    let mut app = checkout_app();
    event(
        &mut app,
        300,
        Event::StepStarted {
            phase: "canary".into(),
            step: "watch".into(),
            attempt: 1,
            rollback: false,
        },
    );
    let at = StepRef {
        rollback: false,
        phase: 1,
        step: 1,
    };
    app.selected = at;
    let StepState::Running { since, .. } = app.view(at).state else {
        panic!("the watch runs: {:?}", app.view(at).state);
    };
    let theme = Theme {
        color: false,
        ascii: false,
    };
    let text = |now| {
        let mut terminal = Terminal::new(TestBackend::new(120, 36)).expect("terminal");
        terminal.draw(|f| ui::draw(f, &app, &theme, now)).expect("draw");
        let b = terminal.backend().buffer().clone();
        (0..b.area.height)
            .map(|y| (0..b.area.width).map(|x| b[(x, y)].symbol()).collect::<String>() + "\n")
            .collect::<String>()
    };
    // A third of a second in: 15:00 left, not 14:59.
    let s = text(since + Duration::from_millis(300));
    assert!(s.contains("watching, 15:00 left"), "{s}");
    assert!(s.contains("0:00 of 15:00 gone, 15:00 left"), "{s}");
    assert!(!s.contains("14:59"), "{s}");
    // A second and a half in: 14:59 left, and what is gone and left adds up to the watch.
    let s = text(since + Duration::from_millis(1500));
    assert!(s.contains("0:01 of 15:00 gone, 14:59 left"), "{s}");
}

#[test]
fn the_rollback_says_who_called_it_and_why() {
    let mut app = checkout_app();
    event(
        &mut app,
        300,
        Event::RollbackStarted {
            reason: "operator".into(),
            operator: Some("alice".into()),
            note: Some("errors climbing on the canary".into()),
        },
    );
    let s = screen(&app, 80, 24);
    assert!(
        s.contains("ROLLING BACK · called by alice: errors climbing on the canary"),
        "{s}"
    );
    assert!(
        s.contains("rollback started: called by alice: errors climbing"),
        "{s}"
    );
    // A trigger's rollback names the trigger, and who pressed the key when someone did.
    let mut app = checkout_app();
    event(
        &mut app,
        300,
        Event::RollbackStarted {
            reason: "trigger:error-rate".into(),
            operator: Some("bob".into()),
            note: None,
        },
    );
    let s = screen(&app, 120, 36);
    assert!(s.contains("trigger error-rate fired, called by bob"), "{s}");
}
