//! The terminal UI without a terminal: whole-screen snapshots (insta) of the states an operator
//! meets — a manual step waiting, a step running with its live log, a trigger firing, the
//! rollback dialog, the help, the end of the run — at 120×36 and 80×24, and every key of SPEC §5
//! (and the extras) as a pure function of the state (`on_key`).
//!
//! State is built the way the engine builds it: by feeding `Update`s (journal records, output,
//! waits) in the order the engine sends them, for tests/fixtures/tui/checkout.toml. Clocks are
//! pinned so that every frame is the same on every run: `now` is `app.started + 12:34`, and the
//! running step and pending triggers are given a start time relative to `app.started`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use runbook::engine::{Chunk, Command, Mode, StepRef, Update, Wait};
use runbook::journal::{Event, Outcome, Record, RollbackStatus, StepFinished, StepStatus};
use runbook::metrics::SourceKind;
use runbook::runbook::Runbook;
use runbook::tui::dialog::Dialog;
use runbook::tui::keys::{Effect, on_key};
use runbook::tui::state::{App, Focus, Pane, StepState, TriggerState};
use runbook::tui::ui;
use runbook::tui::ui::theme::Theme;

// ---------------------------------------------------------------------------------------------
// Building the state
// ---------------------------------------------------------------------------------------------

/// 2025-11-26T21:00:00Z: the wall clock of the run (log lines show it as 21:mm:ss).
const T0: u64 = 1_764_190_800;
/// Where the run is recorded, as the finished banner and the quit dialog show it.
const RUN_DIR: &str = "/home/alice/.local/state/runbook/runs/20251126T210000Z-checkout";

const PREFLIGHT: usize = 0;
const CANARY: usize = 1;

fn at(phase: usize, step: usize) -> StepRef {
    StepRef {
        rollback: false,
        phase,
        step,
    }
}

fn rollback_at(phase: usize, step: usize) -> StepRef {
    StepRef {
        rollback: true,
        phase,
        step,
    }
}

fn fixture() -> Arc<Runbook> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tui/checkout.toml");
    let mut rb = runbook::runbook::load(&path, &[]).expect("the UI fixture runbook loads");
    // As an operator gives it (relative): the screen is the same wherever the repository is.
    rb.file = "tests/fixtures/tui/checkout.toml".into();
    Arc::new(rb)
}

/// A fresh screen for the fixture, with simulated metrics (no `[metrics] url`).
fn new_app() -> App {
    new_app_with(Mode::Run, &[SourceKind::Simulated, SourceKind::Simulated])
}

fn new_app_with(mode: Mode, sources: &[SourceKind]) -> App {
    let mut app = App::new(fixture(), mode, sources, RUN_DIR.to_string());
    app.operator = "alice".into();
    app.host = "bastion".into();
    app
}

/// The journal's timestamp of second `s` of the run.
fn ts(s: u64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + s);
    humantime::format_rfc3339_millis(t).to_string()
}

fn ev(app: &mut App, s: u64, event: Event) {
    app.apply(Update::Event(Record { ts: ts(s), event }));
}

fn run_started(app: &mut App) {
    let vars = BTreeMap::from([("release".to_string(), "v2.14.0".to_string())]);
    ev(
        app,
        0,
        Event::RunStarted {
            runbook: "checkout".into(),
            title: "Checkout service rollout".into(),
            file: "tests/fixtures/tui/checkout.toml".into(),
            sha256: "994b1638b50c".into(),
            operator: "alice".into(),
            host: "bastion".into(),
            mode: "run".into(),
            vars,
            pid: 4242,
            plan: None,
        },
    );
}

fn step_started(app: &mut App, s: u64, phase: &str, step: &str, rollback: bool) {
    ev(
        app,
        s,
        Event::StepStarted {
            phase: phase.into(),
            step: step.into(),
            attempt: 1,
            rollback,
        },
    );
}

fn step_finished(app: &mut App, s: u64, fin: StepFinished) {
    ev(app, s, Event::StepFinished(Box::new(fin)));
}

/// A command step that ended with `code`.
fn command_finished(app: &mut App, s: u64, phase: &str, step: &str, rollback: bool, took_ms: u64, code: i32) {
    let prefix = if rollback { "rollback--" } else { "" };
    step_finished(
        app,
        s,
        StepFinished {
            phase: phase.into(),
            step: step.into(),
            attempt: 1,
            rollback,
            status: if code == 0 {
                StepStatus::Succeeded
            } else {
                StepStatus::Failed
            },
            duration_ms: took_ms,
            exit_code: Some(code),
            log: Some(format!("logs/{prefix}{phase}--{step}--1.log")),
            ..Default::default()
        },
    );
}

/// One poll of both metrics.
fn sampled(app: &mut App, s: u64, error_rate: f64, p95: f64) {
    let values = BTreeMap::from([
        ("error_rate".to_string(), Some(error_rate)),
        ("p95_latency".to_string(), Some(p95)),
    ]);
    ev(
        app,
        s,
        Event::MetricsSampled {
            values,
            errors: BTreeMap::new(),
        },
    );
}

/// A line of output from `step` at second `s` of the run.
fn output(app: &mut App, step: StepRef, s: u64, text: &str) {
    app.apply(Update::Output {
        step,
        chunk: Chunk {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + s),
            bytes: format!("{text}\n").into_bytes(),
        },
    });
}

fn waiting(app: &mut App, step: StepRef, why: Wait) {
    app.apply(Update::Waiting { step, why });
}

/// Healthy metrics every 5 s over the first `until` seconds (sparkline history).
fn healthy_samples(app: &mut App, from: u64, until: u64) {
    let mut s = from;
    let mut i = 0u32;
    while s < until {
        let wobble = f64::from(i % 5) * 0.0002;
        sampled(app, s, 0.0019 + wobble, 0.170 + f64::from(i % 4) * 0.006);
        s += 5;
        i += 1;
    }
}

/// The step in flight started 0:54 before `now`, pending triggers 1:00 before, remarks are
/// stamped at `now`: whatever the wall clock did while the state was built, the frame is the same.
fn pin_clocks(app: &mut App) {
    let since = app.started + Duration::from_secs(700);
    for phase in app.steps.iter_mut().chain(app.rollback_steps.iter_mut()) {
        for v in phase {
            if let StepState::Running { since: s, .. } = &mut v.state {
                *s = since;
            }
        }
    }
    // Remarks are stamped with the wall clock: show them at the frame's time, 21:12:34.
    for (at, _) in &mut app.messages {
        *at = SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + 754);
    }
    let trig = app.started + Duration::from_secs(694);
    for t in &mut app.triggers {
        if t.since.is_some() {
            t.since = Some(trig);
        }
    }
}

/// (a) The run has started; the first step is manual and waits for the operator.
fn state_waiting_manual() -> App {
    let mut app = new_app();
    run_started(&mut app);
    healthy_samples(&mut app, 1, 60);
    step_started(&mut app, 2, "preflight", "freeze-lifted", false);
    waiting(&mut app, at(PREFLIGHT, 0), Wait::GoAhead { irreversible: false });
    pin_clocks(&mut app);
    app
}

/// (b) Preflight done; the canary deploy (a `confirm = true` step) was given its go-ahead and is
/// running, writing its log.
fn state_running() -> App {
    let mut app = new_app();
    run_started(&mut app);
    healthy_samples(&mut app, 1, 300);
    step_started(&mut app, 2, "preflight", "freeze-lifted", false);
    waiting(&mut app, at(PREFLIGHT, 0), Wait::GoAhead { irreversible: false });
    step_finished(
        &mut app,
        95,
        StepFinished {
            phase: "preflight".into(),
            step: "freeze-lifted".into(),
            attempt: 1,
            status: StepStatus::Confirmed,
            duration_ms: 93_000,
            by: Some("alice".into()),
            metrics: Some(BTreeMap::from([
                ("error_rate".to_string(), Some(0.0021)),
                ("p95_latency".to_string(), Some(0.176)),
            ])),
            ..Default::default()
        },
    );
    step_started(&mut app, 95, "preflight", "backup", false);
    let backup = at(PREFLIGHT, 1);
    output(
        &mut app,
        backup,
        96,
        "pg_dump: dumping contents of table \"public.orders\"",
    );
    output(
        &mut app,
        backup,
        131,
        "backup checkout-20251126T2101Z.dump: 2.3 GiB, sha256 ok",
    );
    command_finished(&mut app, 132, "preflight", "backup", false, 37_412, 0);
    waiting(&mut app, at(CANARY, 0), Wait::GoAhead { irreversible: false });
    step_started(&mut app, 700, "canary", "deploy", false);
    let deploy = at(CANARY, 0);
    let lines = [
        "==> deploying checkout v2.14.0 to 10% of instances (3 of 30)",
        "checkout-7f9c4-abcde: pulling registry.example.com/checkout:v2.14.0",
        "checkout-7f9c4-abcde: image pulled in 4.2s",
        "checkout-7f9c4-abcde: started; waiting for readiness",
        "checkout-7f9c4-fghij: pulling registry.example.com/checkout:v2.14.0",
        "checkout-7f9c4-fghij: started; waiting for readiness",
        "WARN checkout-7f9c4-abcde: readiness probe failed once (HTTP 503 from /healthz after 1.2s), retrying in 2s \
         before the instance is taken out of the rotation",
        "checkout-7f9c4-abcde: ready (2/3)",
        "checkout-7f9c4-klmno: pulling registry.example.com/checkout:v2.14.0",
        "checkout-7f9c4-klmno: started; waiting for readiness",
    ];
    for (i, l) in lines.iter().enumerate() {
        output(&mut app, deploy, 702 + 5 * i as u64, l);
    }
    pin_clocks(&mut app);
    app
}

/// (c) The canary is in; during the watch the error rate climbs, the trigger goes pending, then
/// fires: the watch fails and the run holds, waiting for the operator.
fn state_trigger_firing() -> App {
    let mut app = state_running();
    command_finished(&mut app, 760, "canary", "deploy", false, 60_104, 0);
    step_started(&mut app, 760, "canary", "watch", false);
    let mut s = 765;
    for (err, p95) in [
        (0.004, 0.19),
        (0.007, 0.21),
        (0.011, 0.24),
        (0.013, 0.26),
        (0.0142, 0.31),
    ] {
        sampled(&mut app, s, err, p95);
        if err > 0.01 && s < 780 {
            ev(
                &mut app,
                s,
                Event::TriggerPending {
                    trigger: "error-rate".into(),
                    value: Some(err),
                },
            );
        }
        s += 5;
    }
    ev(
        &mut app,
        s,
        Event::TriggerFired {
            trigger: "error-rate".into(),
            value: Some(0.0142),
            reason: None,
            labels: None,
        },
    );
    step_finished(
        &mut app,
        s,
        StepFinished {
            phase: "canary".into(),
            step: "watch".into(),
            attempt: 1,
            status: StepStatus::Failed,
            duration_ms: (s - 760) * 1000,
            error: Some("trigger error-rate fired during the watch".into()),
            ..Default::default()
        },
    );
    waiting(
        &mut app,
        at(CANARY, 1),
        Wait::Failed {
            status: StepStatus::Failed,
            error: None,
        },
    );
    pin_clocks(&mut app);
    app
}

/// The operator acknowledged the firing trigger (journaled as the engine does).
fn acknowledged(app: &mut App) {
    ev(
        app,
        800,
        Event::TriggerAcknowledged {
            trigger: "error-rate".into(),
            value: Some(0.0142),
            operator: Some("alice".into()),
        },
    );
}

/// (f) Everything passed: the watch ran its 15 minutes and the run finished.
fn state_finished() -> App {
    let mut app = state_running();
    command_finished(&mut app, 760, "canary", "deploy", false, 60_104, 0);
    step_started(&mut app, 760, "canary", "watch", false);
    healthy_samples(&mut app, 765, 1660);
    step_finished(
        &mut app,
        1660,
        StepFinished {
            phase: "canary".into(),
            step: "watch".into(),
            attempt: 1,
            status: StepStatus::Succeeded,
            duration_ms: 900_000,
            ..Default::default()
        },
    );
    ev(
        &mut app,
        1660,
        Event::RunFinished {
            outcome: Outcome::Succeeded,
            exit_code: 0,
            reason: None,
        },
    );
    pin_clocks(&mut app);
    app
}

/// (f') The trigger fired, the operator rolled back, the rollback procedure finished.
fn state_rolled_back() -> App {
    let mut app = state_trigger_firing();
    ev(
        &mut app,
        800,
        Event::RollbackStarted {
            reason: "trigger:error-rate".into(),
            operator: Some("alice".into()),
            note: None,
        },
    );
    step_started(&mut app, 800, "immediate", "traffic", true);
    let traffic = rollback_at(0, 0);
    output(
        &mut app,
        traffic,
        801,
        "==> routing 100% of traffic to checkout v2.13.2",
    );
    output(&mut app, traffic, 806, "done: 0 instances on v2.14.0");
    command_finished(&mut app, 807, "immediate", "traffic", true, 6_950, 0);
    ev(
        &mut app,
        807,
        Event::RollbackFinished {
            status: RollbackStatus::Succeeded,
        },
    );
    ev(
        &mut app,
        807,
        Event::RunFinished {
            outcome: Outcome::RolledBack,
            exit_code: 3,
            reason: None,
        },
    );
    pin_clocks(&mut app);
    app
}

// ---------------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------------

/// Frames are drawn one at a time.
static DRAWING: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    DRAWING.lock().unwrap_or_else(|e| e.into_inner())
}

const PLAIN: Theme = Theme {
    color: false,
    ascii: false,
};

/// The whole screen as text: one line per row, trailing spaces trimmed.
fn screen(app: &App, w: u16, h: u16, theme: Theme) -> String {
    let _guard = lock();
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    let now = app.started + Duration::from_secs(754);
    terminal.draw(|f| ui::draw(f, app, &theme, now)).expect("draw");
    let buffer = terminal.backend().buffer();
    let width = buffer.area.width as usize;
    let mut out = String::new();
    for row in buffer.content().chunks(width) {
        let mut line = String::new();
        let mut skip = 0usize;
        for cell in row {
            let sym = cell.symbol();
            if skip == 0 {
                line.push_str(sym);
            }
            let cw = unicode_width::UnicodeWidthStr::width(sym).max(1);
            skip = skip.max(cw).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The whole screen at 120×36 (clocks pinned first: keys may have added remarks).
fn wide(app: &mut App) -> String {
    pin_clocks(app);
    screen(app, 120, 36, PLAIN)
}

/// The whole screen at 80×24.
fn narrow(app: &mut App) -> String {
    pin_clocks(app);
    screen(app, 80, 24, PLAIN)
}

fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    on_key(app, KeyEvent::new(code, KeyModifiers::NONE))
}

fn ch(app: &mut App, c: char) -> Vec<Effect> {
    let mods = if c.is_ascii_uppercase() || "?!".contains(c) {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    on_key(app, KeyEvent::new(KeyCode::Char(c), mods))
}

fn ctrl(app: &mut App, c: char) -> Vec<Effect> {
    on_key(app, KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        assert_eq!(ch(app, c), vec![], "typing {c:?} into a text box sends nothing");
    }
}

fn send(c: Command) -> Vec<Effect> {
    vec![Effect::Send(c)]
}

/// The go-ahead for the step at `step`, naming it (as the UI sends it).
fn confirm(step: StepRef) -> Vec<Effect> {
    send(Command::Confirm {
        by: None,
        step: Some(step),
    })
}

/// What the dialog on top is, in words (Dialog has no Debug).
fn top(app: &App) -> Option<String> {
    app.dialogs.last().map(|d| match d {
        Dialog::Help { .. } => "help".into(),
        Dialog::Rollback => "rollback".into(),
        Dialog::Quit => "quit".into(),
        Dialog::EndWatch(_) => "end-watch".into(),
        Dialog::Irreversible(at) => format!("irreversible {}/{}", at.phase, at.step),
        Dialog::Text { purpose, area } => {
            // The purpose without the step it was opened for: `Skip`, `Note`, `Raise("x")`.
            let purpose = format!("{purpose:?}");
            let purpose = match purpose.split_once("(StepRef") {
                Some((name, _)) => name.to_string(),
                None => purpose,
            };
            format!("text {purpose}: {:?}", area.lines().join("\n"))
        }
        Dialog::PickTrigger { selected } => format!("pick-trigger {selected}"),
        Dialog::Handover { by, .. } => format!("handover to {by}"),
        Dialog::Watcher(ask) => format!("watcher {ask:?}"),
    })
}

fn last_message(app: &App) -> String {
    app.messages.back().map(|(_, m)| m.clone()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------------

#[test]
fn a_waiting_on_a_manual_step() {
    let mut app = state_waiting_manual();
    insta::assert_snapshot!("a_waiting_manual_120x36", wide(&mut app));
    insta::assert_snapshot!("a_waiting_manual_80x24", narrow(&mut app));
}

#[test]
fn b_running_with_a_live_log() {
    let mut app = state_running();
    insta::assert_snapshot!("b_running_120x36", wide(&mut app));
    insta::assert_snapshot!("b_running_80x24", narrow(&mut app));
}

/// Preflight: the manual step confirmed, the backup (a plain `run` step) running.
fn state_backup_running() -> App {
    let mut app = new_app();
    run_started(&mut app);
    healthy_samples(&mut app, 1, 140);
    step_started(&mut app, 2, "preflight", "freeze-lifted", false);
    waiting(&mut app, at(PREFLIGHT, 0), Wait::GoAhead { irreversible: false });
    step_finished(
        &mut app,
        95,
        StepFinished {
            phase: "preflight".into(),
            step: "freeze-lifted".into(),
            attempt: 1,
            status: StepStatus::Confirmed,
            duration_ms: 93_000,
            by: Some("alice".into()),
            ..Default::default()
        },
    );
    step_started(&mut app, 95, "preflight", "backup", false);
    output(
        &mut app,
        at(PREFLIGHT, 1),
        96,
        "pg_dump: dumping contents of table \"public.orders\"",
    );
    pin_clocks(&mut app);
    app
}

#[test]
fn b_running_a_plain_run_step() {
    let mut app = state_backup_running();
    let wide = wide(&mut app);
    assert!(wide.contains("running 0:54"), "the step's clock:\n{wide}");
    insta::assert_snapshot!("b_running_backup_120x36", wide);
    insta::assert_snapshot!("b_running_backup_80x24", narrow(&mut app));
}

#[test]
fn c_trigger_firing() {
    let mut app = state_trigger_firing();
    insta::assert_snapshot!("c_trigger_firing_120x36", wide(&mut app));
    insta::assert_snapshot!("c_trigger_firing_80x24", narrow(&mut app));
}

#[test]
fn c_trigger_firing_ascii() {
    let app = state_trigger_firing();
    let theme = Theme {
        color: false,
        ascii: true,
    };
    let text = screen(&app, 120, 36, theme);
    // Borders, state glyphs, sparklines and ellipses fall back to ASCII.
    for c in ['┌', '│', '─', '✔', '✘', '▶', '◆', '▁', '█', '…'] {
        assert!(!text.contains(c), "{c:?} in the ASCII theme:\n{text}");
    }
    insta::assert_snapshot!("c_trigger_firing_ascii_120x36", text);
}

#[test]
fn d_rollback_dialog() {
    let mut app = state_running();
    assert_eq!(ch(&mut app, 'R'), vec![]);
    insta::assert_snapshot!("d_rollback_dialog_120x36", wide(&mut app));
    insta::assert_snapshot!("d_rollback_dialog_80x24", narrow(&mut app));
}

#[test]
fn d_rollback_dialog_while_a_trigger_fires() {
    let mut app = state_trigger_firing();
    assert_eq!(ch(&mut app, 'R'), vec![]);
    insta::assert_snapshot!("d_rollback_dialog_firing_120x36", wide(&mut app));
}

#[test]
fn e_help() {
    let mut app = state_waiting_manual();
    assert_eq!(ch(&mut app, '?'), vec![]);
    insta::assert_snapshot!("e_help_120x36", wide(&mut app));
    insta::assert_snapshot!("e_help_80x24", narrow(&mut app));
    // At 80×24 the help is taller than the screen: it scrolls, and every key is reachable.
    let first = narrow(&mut app);
    assert!(first.contains("lines 1-"), "{first}");
    assert_eq!(press(&mut app, KeyCode::End), vec![]);
    assert_eq!(
        top(&app).as_deref(),
        Some("help"),
        "End scrolls the help, it does not close it"
    );
    let last = narrow(&mut app);
    assert!(last.contains("Ctrl-Z"), "{last}");
    assert!(!first.contains("Ctrl-Z"), "{first}");
    insta::assert_snapshot!("e_help_end_80x24", last);
    assert_eq!(press(&mut app, KeyCode::PageUp), vec![]);
    assert_eq!(press(&mut app, KeyCode::Home), vec![]);
    assert_eq!(narrow(&mut app), first, "Home goes back to the top");
    assert_eq!(press(&mut app, KeyCode::Char('x')), vec![]);
    assert!(app.dialogs.is_empty(), "any other key closes it");
}

#[test]
fn f_run_finished() {
    let mut app = state_finished();
    insta::assert_snapshot!("f_finished_120x36", wide(&mut app));
    insta::assert_snapshot!("f_finished_80x24", narrow(&mut app));
}

#[test]
fn f_run_rolled_back() {
    let mut app = state_rolled_back();
    insta::assert_snapshot!("f_rolled_back_120x36", wide(&mut app));
    insta::assert_snapshot!("f_rolled_back_80x24", narrow(&mut app));
}

#[test]
fn quit_dialog_while_a_step_runs() {
    let mut app = state_running();
    assert_eq!(ch(&mut app, 'q'), vec![]);
    insta::assert_snapshot!("quit_dialog_80x24", narrow(&mut app));
}

#[test]
fn skip_box_with_a_reason_typed() {
    let mut app = state_waiting_manual();
    ch(&mut app, 's');
    typed(&mut app, "freeze lifted in the change calendar");
    insta::assert_snapshot!("skip_box_80x24", narrow(&mut app));
}

#[test]
fn frames_are_the_same_every_time() {
    // The same state draws the same frame (the snapshots depend on it).
    let mut app = state_trigger_firing();
    assert_eq!(wide(&mut app), wide(&mut app));
    assert_eq!(narrow(&mut app), narrow(&mut app));
}

// ---------------------------------------------------------------------------------------------
// Keys (SPEC §5 and the extras)
// ---------------------------------------------------------------------------------------------

#[test]
fn enter_confirms_the_waiting_manual_step() {
    let mut app = state_waiting_manual();
    assert_eq!(press(&mut app, KeyCode::Enter), confirm(at(PREFLIGHT, 0)));
    assert!(app.dialogs.is_empty());
}

#[test]
fn enter_lets_a_confirm_step_run() {
    let mut app = state_running();
    // Back to the moment the deploy waited for its go-ahead.
    waiting(&mut app, at(CANARY, 0), Wait::GoAhead { irreversible: false });
    assert_eq!(press(&mut app, KeyCode::Enter), confirm(at(CANARY, 0)));
}

#[test]
fn enter_while_a_command_runs_does_nothing() {
    let mut app = state_running();
    assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
    assert!(app.dialogs.is_empty());
}

/// The canary is in and the watch is running.
fn state_watching() -> App {
    let mut app = state_running();
    command_finished(&mut app, 760, "canary", "deploy", false, 60_104, 0);
    step_started(&mut app, 760, "canary", "watch", false);
    app
}

#[test]
fn enter_on_a_running_watch_asks_then_y_ends_it() {
    let mut app = state_watching();
    assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
    assert_eq!(top(&app).as_deref(), Some("end-watch"));
    // Anything but y/n/Esc keeps the question.
    assert_eq!(ch(&mut app, 'x'), vec![]);
    assert_eq!(top(&app).as_deref(), Some("end-watch"));
    assert_eq!(ch(&mut app, 'y'), confirm(at(CANARY, 1)));
    assert!(app.dialogs.is_empty());
}

#[test]
fn end_watch_n_or_esc_keeps_watching() {
    for key in [KeyCode::Char('n'), KeyCode::Esc] {
        let mut app = state_watching();
        press(&mut app, KeyCode::Enter);
        assert_eq!(press(&mut app, key), vec![], "{key:?}");
        assert!(app.dialogs.is_empty(), "{key:?} closes the question");
    }
}

#[test]
fn end_watch_dialog_snapshot() {
    let mut app = state_watching();
    pin_clocks(&mut app);
    press(&mut app, KeyCode::Enter);
    insta::assert_snapshot!("end_watch_80x24", narrow(&mut app));
}

#[test]
fn s_asks_for_a_reason_then_skips() {
    let mut app = state_waiting_manual();
    assert_eq!(ch(&mut app, 's'), vec![]);
    assert_eq!(top(&app).as_deref(), Some("text Skip: \"\""));
    // An empty reason is not a reason: the box stays open.
    assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
    assert_eq!(top(&app).as_deref(), Some("text Skip: \"\""));
    typed(&mut app, "  ");
    assert_eq!(press(&mut app, KeyCode::Enter), vec![], "blanks are no reason");
    assert!(top(&app).is_some());
    press(&mut app, KeyCode::Backspace);
    press(&mut app, KeyCode::Backspace);
    // Keys that mean something elsewhere are text here.
    typed(&mut app, "done by hand: R y q");
    assert_eq!(top(&app).as_deref(), Some("text Skip: \"done by hand: R y q\""));
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        send(Command::Skip {
            reason: "done by hand: R y q".into()
        })
    );
    assert!(app.dialogs.is_empty());
}

#[test]
fn s_then_esc_skips_nothing() {
    let mut app = state_waiting_manual();
    ch(&mut app, 's');
    typed(&mut app, "half a reas");
    assert_eq!(press(&mut app, KeyCode::Esc), vec![]);
    assert!(app.dialogs.is_empty());
}

#[test]
fn s_skips_a_failed_step_too() {
    let mut app = state_trigger_firing();
    assert_eq!(ch(&mut app, 's'), vec![]);
    assert_eq!(top(&app).as_deref(), Some("text Skip: \"\""));
    typed(&mut app, "false alarm");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        send(Command::Skip {
            reason: "false alarm".into()
        })
    );
}

#[test]
fn s_with_nothing_to_skip_only_says_so() {
    let mut app = state_running();
    assert_eq!(ch(&mut app, 's'), vec![]);
    assert!(app.dialogs.is_empty());
    assert!(
        last_message(&app).contains("nothing to skip"),
        "{}",
        last_message(&app)
    );
}

#[test]
fn r_retries_a_failed_step() {
    let mut app = state_trigger_firing();
    // While the trigger fires, a retry is no go-ahead: it is refused, saying what to do first.
    assert_eq!(ch(&mut app, 'r'), vec![]);
    assert!(
        last_message(&app).contains("a (acknowledge) or R first"),
        "{}",
        last_message(&app)
    );
    acknowledged(&mut app);
    assert_eq!(ch(&mut app, 'r'), send(Command::Retry));
}

#[test]
fn r_otherwise_only_notes() {
    for mut app in [state_waiting_manual(), state_running(), state_finished()] {
        assert_eq!(ch(&mut app, 'r'), vec![]);
        assert!(app.dialogs.is_empty());
        assert!(
            last_message(&app).contains("nothing to retry"),
            "{}",
            last_message(&app)
        );
    }
}

#[test]
fn n_opens_a_note_box_and_enter_saves_it() {
    let mut app = state_running();
    assert_eq!(ch(&mut app, 'n'), vec![]);
    assert_eq!(top(&app).as_deref(), Some("text Note: \"\""));
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![],
        "an empty note is not saved"
    );
    assert!(top(&app).is_some());
    typed(&mut app, "payments team saw a 503 blip at 21:12");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        send(Command::Note {
            text: "payments team saw a 503 blip at 21:12".into()
        })
    );
    assert!(app.dialogs.is_empty());
}

#[test]
fn shift_r_then_y_rolls_back() {
    let mut app = state_running();
    assert_eq!(ch(&mut app, 'R'), vec![]);
    assert_eq!(top(&app).as_deref(), Some("rollback"));
    assert_eq!(ch(&mut app, 'y'), send(Command::Rollback));
    assert!(app.dialogs.is_empty());
}

#[test]
fn shift_r_then_w_says_why_and_enter_rolls_back_with_it() {
    let mut app = state_running();
    ch(&mut app, 'R');
    assert_eq!(ch(&mut app, 'w'), vec![]);
    // Esc goes back to the rollback dialog, which still asks.
    assert_eq!(press(&mut app, KeyCode::Esc), vec![]);
    assert_eq!(top(&app).as_deref(), Some("rollback"));
    ch(&mut app, 'w');
    typed(&mut app, "p99 doubled");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        send(Command::RollbackWithNote {
            note: "p99 doubled".into()
        })
    );
    assert!(app.dialogs.is_empty());
    // Nothing typed: a plain rollback.
    let mut app = state_running();
    ch(&mut app, 'R');
    ch(&mut app, 'w');
    assert_eq!(press(&mut app, KeyCode::Enter), send(Command::Rollback));
}

#[test]
fn shift_r_then_capital_y_rolls_back() {
    let mut app = state_running();
    ch(&mut app, 'R');
    assert_eq!(ch(&mut app, 'Y'), send(Command::Rollback));
}

#[test]
fn shift_r_then_n_or_esc_sends_nothing() {
    for key in [KeyCode::Char('n'), KeyCode::Char('N'), KeyCode::Esc] {
        let mut app = state_running();
        ch(&mut app, 'R');
        assert_eq!(press(&mut app, key), vec![], "{key:?}");
        assert!(app.dialogs.is_empty(), "{key:?} closes the rollback dialog");
    }
}

#[test]
fn the_rollback_dialog_ignores_other_keys() {
    let mut app = state_running();
    ch(&mut app, 'R');
    // Enter, a second R, q: none of them rolls back or leaves the question.
    for key in [
        KeyCode::Enter,
        KeyCode::Char('R'),
        KeyCode::Char('q'),
        KeyCode::Char('a'),
    ] {
        assert_eq!(press(&mut app, key), vec![], "{key:?}");
        assert_eq!(top(&app).as_deref(), Some("rollback"), "{key:?}");
    }
}

#[test]
fn shift_r_when_the_rollback_already_runs_only_notes() {
    let mut app = state_rolled_back();
    assert_eq!(ch(&mut app, 'R'), vec![]);
    assert!(app.dialogs.is_empty());
    assert!(last_message(&app).contains("cannot be started now"));
}

#[test]
fn a_acknowledges_a_firing_trigger() {
    let mut app = state_trigger_firing();
    assert_eq!(ch(&mut app, 'a'), send(Command::Acknowledge));
}

#[test]
fn a_with_no_trigger_firing_only_notes() {
    let mut app = state_running();
    assert_eq!(ch(&mut app, 'a'), vec![]);
    assert_eq!(last_message(&app), "no trigger is firing");
}

#[test]
fn a_after_the_acknowledgement_has_nothing_left() {
    let mut app = state_trigger_firing();
    ev(
        &mut app,
        800,
        Event::TriggerAcknowledged {
            trigger: "error-rate".into(),
            value: Some(0.0142),
            operator: Some("alice".into()),
        },
    );
    assert!(app.firing().is_empty());
    assert_eq!(ch(&mut app, 'a'), vec![]);
}

#[test]
fn question_mark_opens_the_help_and_any_key_closes_it() {
    for key in [
        KeyCode::Char('x'),
        KeyCode::Esc,
        KeyCode::Enter,
        KeyCode::Char('?'),
        // Keys that act elsewhere only close the help.
        KeyCode::Char('q'),
        KeyCode::Char('R'),
        KeyCode::Char('y'),
    ] {
        let mut app = state_waiting_manual();
        assert_eq!(ch(&mut app, '?'), vec![]);
        assert_eq!(top(&app).as_deref(), Some("help"));
        assert_eq!(
            press(&mut app, key),
            vec![],
            "{key:?} closes the help and does nothing else"
        );
        assert!(app.dialogs.is_empty(), "{key:?}");
    }
}

#[test]
fn q_while_running_asks_and_y_aborts() {
    let mut app = state_running();
    assert_eq!(ch(&mut app, 'q'), vec![]);
    assert_eq!(top(&app).as_deref(), Some("quit"));
    assert!(!app.quit_when_done);
    assert_eq!(
        ch(&mut app, 'y'),
        send(Command::Abort {
            reason: Some("quit by alice".into())
        })
    );
    assert!(app.quit_when_done);
    assert!(app.dialogs.is_empty());
}

#[test]
fn q_while_waiting_asks_too() {
    let mut app = state_waiting_manual();
    assert_eq!(ch(&mut app, 'q'), vec![]);
    assert_eq!(top(&app).as_deref(), Some("quit"));
}

#[test]
fn q_then_n_or_esc_stays() {
    for key in [KeyCode::Char('n'), KeyCode::Esc] {
        let mut app = state_running();
        ch(&mut app, 'q');
        assert_eq!(press(&mut app, key), vec![], "{key:?}");
        assert!(app.dialogs.is_empty());
        assert!(!app.quit_when_done);
    }
}

#[test]
fn q_after_the_run_finished_quits_at_once() {
    let mut app = state_finished();
    assert_eq!(ch(&mut app, 'q'), vec![Effect::Quit]);
    assert!(app.dialogs.is_empty());
    let mut app = state_rolled_back();
    assert_eq!(ch(&mut app, 'q'), vec![Effect::Quit]);
}

#[test]
fn ctrl_c_asks_like_q() {
    let mut app = state_running();
    assert_eq!(ctrl(&mut app, 'c'), vec![]);
    assert_eq!(top(&app).as_deref(), Some("quit"));
    assert_eq!(
        ch(&mut app, 'y'),
        send(Command::Abort {
            reason: Some("quit by alice".into())
        })
    );
    let mut app = state_finished();
    assert_eq!(ctrl(&mut app, 'c'), vec![Effect::Quit]);
}

#[test]
fn t_picks_a_trigger_and_raises_it_with_a_reason() {
    let mut app = state_running();
    assert_eq!(ch(&mut app, 't'), vec![]);
    assert_eq!(top(&app).as_deref(), Some("pick-trigger 0"));
    press(&mut app, KeyCode::Down);
    assert_eq!(top(&app).as_deref(), Some("pick-trigger 1"));
    press(&mut app, KeyCode::Down);
    assert_eq!(
        top(&app).as_deref(),
        Some("pick-trigger 1"),
        "stops at the last trigger"
    );
    ch(&mut app, 'k');
    assert_eq!(top(&app).as_deref(), Some("pick-trigger 0"));
    ch(&mut app, 'j');
    assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
    assert_eq!(top(&app).as_deref(), Some("text Raise(\"latency\"): \"\""));
    assert_eq!(press(&mut app, KeyCode::Enter), vec![], "a reason is needed");
    typed(&mut app, "checkout p95 at 2s on the status page");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        send(Command::RaiseTrigger {
            trigger: "latency".into(),
            reason: "checkout p95 at 2s on the status page".into()
        })
    );
    assert!(app.dialogs.is_empty());
}

#[test]
fn t_then_esc_raises_nothing() {
    let mut app = state_running();
    ch(&mut app, 't');
    assert_eq!(press(&mut app, KeyCode::Esc), vec![]);
    assert!(app.dialogs.is_empty());
}

#[test]
fn pick_trigger_snapshot() {
    let mut app = state_running();
    ch(&mut app, 't');
    press(&mut app, KeyCode::Down);
    insta::assert_snapshot!("pick_trigger_80x24", narrow(&mut app));
}

#[test]
fn bang_injects_a_fault_into_simulated_metrics() {
    let mut app = state_running();
    assert_eq!(ch(&mut app, '!'), send(Command::InjectFault));
}

#[test]
fn bang_with_real_metrics_only_notes() {
    let mut app = new_app_with(Mode::Run, &[SourceKind::Prometheus, SourceKind::Command]);
    assert_eq!(ch(&mut app, '!'), vec![]);
    assert!(last_message(&app).contains("no metric is simulated"));
    // A rehearsal is practice whatever the sources.
    let mut app = new_app_with(Mode::Rehearse, &[SourceKind::Prometheus, SourceKind::Prometheus]);
    assert_eq!(ch(&mut app, '!'), send(Command::InjectFault));
}

#[test]
fn arrows_and_jk_move_the_selected_step() {
    let mut app = state_waiting_manual();
    assert_eq!(app.selected, at(PREFLIGHT, 0));
    assert!(app.follow);
    press(&mut app, KeyCode::Down);
    assert_eq!(app.selected, at(PREFLIGHT, 1));
    assert!(!app.follow, "moving the selection stops following the run");
    press(&mut app, KeyCode::Down);
    assert_eq!(app.selected, at(PREFLIGHT, 1), "stays on the last step");
    press(&mut app, KeyCode::Up);
    assert_eq!(app.selected, at(PREFLIGHT, 0));
    press(&mut app, KeyCode::Up);
    assert_eq!(app.selected, at(PREFLIGHT, 0), "stays on the first step");
    ch(&mut app, 'j');
    assert_eq!(app.selected, at(PREFLIGHT, 1));
    ch(&mut app, 'k');
    assert_eq!(app.selected, at(PREFLIGHT, 0));
    // Nothing was sent, and the manual step still waits for Enter.
    assert_eq!(press(&mut app, KeyCode::Enter), confirm(at(PREFLIGHT, 0)));
}

#[test]
fn left_right_and_hl_move_between_phases_then_into_the_rollback() {
    let mut app = state_waiting_manual();
    press(&mut app, KeyCode::Right);
    assert_eq!(app.selected, at(CANARY, 0));
    ch(&mut app, 'l');
    assert_eq!(
        app.selected,
        rollback_at(0, 0),
        "the rollback's phases follow the forward ones"
    );
    ch(&mut app, 'l');
    assert_eq!(app.selected, rollback_at(0, 0), "stays on the last phase");
    ch(&mut app, 'h');
    assert_eq!(app.selected, at(CANARY, 0));
    press(&mut app, KeyCode::Left);
    press(&mut app, KeyCode::Left);
    assert_eq!(app.selected, at(PREFLIGHT, 0));
    assert!(!app.follow);
}

#[test]
fn end_or_f_follows_the_run_again() {
    for key in [KeyCode::End, KeyCode::Char('f')] {
        let mut app = state_running();
        press(&mut app, KeyCode::Left);
        press(&mut app, KeyCode::PageUp);
        assert_eq!(app.selected, at(PREFLIGHT, 0));
        press(&mut app, key);
        assert!(app.follow, "{key:?}");
        assert_eq!(app.selected, at(CANARY, 0), "{key:?}");
        assert_eq!(app.log_scroll, 0, "{key:?}");
    }
}

#[test]
fn the_selection_follows_the_run_until_moved() {
    let mut app = state_waiting_manual();
    press(&mut app, KeyCode::Down);
    step_finished(
        &mut app,
        95,
        StepFinished {
            phase: "preflight".into(),
            step: "freeze-lifted".into(),
            attempt: 1,
            status: StepStatus::Confirmed,
            duration_ms: 93_000,
            by: Some("alice".into()),
            ..Default::default()
        },
    );
    step_started(&mut app, 95, "preflight", "backup", false);
    step_started(&mut app, 140, "canary", "deploy", false);
    assert_eq!(app.selected, at(PREFLIGHT, 1), "the operator's choice is kept");
    assert_eq!(app.current, Some(at(CANARY, 0)));
}

#[test]
fn selecting_another_step_shows_its_log() {
    let mut app = state_running();
    press(&mut app, KeyCode::Left);
    press(&mut app, KeyCode::Down);
    assert_eq!(app.selected, at(PREFLIGHT, 1));
    insta::assert_snapshot!("selected_finished_step_120x36", wide(&mut app));
}

/// The canary deploy has written 60 more lines (every tenth an error), on an 80×24 terminal.
fn state_long_log() -> App {
    let mut app = state_running();
    app.screen = (80, 24);
    for i in 0..60u64 {
        let text = if i % 10 == 3 {
            format!("line {i:02} ERROR instance {i} failed its probe")
        } else {
            format!("line {i:02} ok")
        };
        output(&mut app, at(CANARY, 0), 730 + i / 4, &text);
    }
    pin_clocks(&mut app);
    app
}

/// The log lines on screen (without their times), top to bottom.
fn log_lines(app: &mut App) -> Vec<String> {
    narrow(app)
        .lines()
        .filter_map(|l| l.strip_prefix("│21:"))
        .map(|l| l[6..].trim_end_matches('│').trim().to_string())
        .collect()
}

#[test]
fn tab_switches_the_focus_between_steps_and_log() {
    let mut app = state_long_log();
    assert_eq!(app.focus, Focus::Steps);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Log);
    // In the log, up/down scroll it instead of moving the selection.
    let before = app.selected;
    press(&mut app, KeyCode::Up);
    ch(&mut app, 'k');
    assert_eq!(app.log_scroll, 2);
    press(&mut app, KeyCode::Down);
    assert_eq!(app.log_scroll, 1);
    ch(&mut app, 'j');
    ch(&mut app, 'j');
    assert_eq!(app.log_scroll, 0, "never below the end");
    assert_eq!(app.selected, before);
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.focus, Focus::Steps);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Steps);
}

#[test]
fn a_page_is_a_screenful_and_home_then_pgdn_moves_again() {
    let mut app = state_long_log();
    let end = log_lines(&mut app);
    assert_eq!(end.last().map(String::as_str), Some("line 59 ok"));
    let page = end.len();
    assert!(page >= 8, "{page} lines on screen");
    press(&mut app, KeyCode::PageUp);
    let up = log_lines(&mut app);
    // The line that was at the top is now just below the screen: a whole screenful moved.
    assert_eq!(up.len(), page);
    let idx = |l: &str| l[5..7].parse::<usize>().unwrap();
    assert_eq!(idx(up.last().unwrap()) + 1, idx(&end[0]), "{up:?} then {end:?}");
    press(&mut app, KeyCode::PageDown);
    assert_eq!(log_lines(&mut app), end);
    // Home: the start of the log (the lines written before); then PgDn and ↓ move at once.
    press(&mut app, KeyCode::Home);
    let home = narrow(&mut app);
    assert!(home.contains("==> deploying checkout"), "{home}");
    let first = app.log_scroll;
    press(&mut app, KeyCode::PageDown);
    assert!(app.log_scroll < first, "PgDn after Home moves");
    let after_pgdn = app.log_scroll;
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Down);
    assert_eq!(app.log_scroll, after_pgdn - 1, "↓ after Home moves");
    // g and G: the start, the end.
    ch(&mut app, 'g');
    assert_eq!(app.log_scroll, first);
    ch(&mut app, 'G');
    assert_eq!(app.log_scroll, 0);
}

#[test]
fn scrolled_up_the_log_stays_put_while_output_arrives() {
    let mut app = state_long_log();
    press(&mut app, KeyCode::PageUp);
    let before = log_lines(&mut app);
    output(&mut app, at(CANARY, 0), 760, "line 60 ok");
    assert_eq!(log_lines(&mut app), before);
}

#[test]
fn w_toggles_wrapping_and_arrows_scroll_sideways() {
    let mut app = state_running();
    assert!(app.wrap, "long lines wrap by default");
    let wrapped = narrow(&mut app);
    assert!(wrapped.contains("before the instance is taken"), "{wrapped}");
    let wrapped_wide = wide(&mut app);
    assert!(wrapped_wide.contains("before the instance is"), "{wrapped_wide}");
    insta::assert_snapshot!("log_wrapped_120x36", wrapped_wide);
    ch(&mut app, 'w');
    assert!(!app.wrap);
    let cut = narrow(&mut app);
    assert!(
        cut.contains("readiness probe failed once (HTTP 503 fro…"),
        "{cut}"
    );
    insta::assert_snapshot!("log_unwrapped_80x24", cut);
    let cut_wide = wide(&mut app);
    assert!(!cut_wide.contains("before the instance is taken"), "{cut_wide}");
    insta::assert_snapshot!("log_unwrapped_120x36", cut_wide);
    // In the log, → scrolls sideways by half the width; ← back.
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Right);
    assert_eq!(app.log_hscroll, 34);
    ch(&mut app, 'l');
    press(&mut app, KeyCode::Right);
    let side = narrow(&mut app);
    assert!(side.contains("taken out of the rotation"), "{side}");
    assert!(side.contains("col 103"), "{side}");
    insta::assert_snapshot!("log_sideways_80x24", side);
    press(&mut app, KeyCode::Left);
    ch(&mut app, 'h');
    press(&mut app, KeyCode::Left);
    assert_eq!(app.log_hscroll, 0);
    // Wrapped again, ← → have nothing to scroll and say so.
    ch(&mut app, 'w');
    press(&mut app, KeyCode::Right);
    assert_eq!(app.log_hscroll, 0);
    assert!(last_message(&app).contains("w cuts them"));
}

#[test]
fn z_zooms_the_focused_pane_and_esc_comes_back() {
    let mut app = state_running();
    press(&mut app, KeyCode::Tab);
    ch(&mut app, 'z');
    assert_eq!(app.zoom, Some(Pane::Log));
    let zoomed = narrow(&mut app);
    assert!(!zoomed.contains("Error rate "), "the strip gives way: {zoomed}");
    assert!(zoomed.contains("full log: /home/alice/"), "{zoomed}");
    insta::assert_snapshot!("log_zoomed_80x24", zoomed);
    insta::assert_snapshot!("log_zoomed_120x36", wide(&mut app));
    // Tab gives the whole screen to the steps.
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.zoom, Some(Pane::Steps));
    insta::assert_snapshot!("steps_zoomed_80x24", narrow(&mut app));
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.zoom, None);
}

#[test]
fn tabs_are_expanded_and_a_progress_line_shows_its_last_state() {
    let mut app = state_running();
    let deploy = at(CANARY, 0);
    app.apply(Update::Output {
        step: deploy,
        chunk: Chunk {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + 740),
            bytes: b"name\tstate\nprogress 10%\rprogress 50%\rprogress 100%\r\nupload 3%\rupload 7%".to_vec(),
        },
    });
    let s = narrow(&mut app);
    assert!(s.contains("name    state"), "{s}");
    assert!(s.contains("│21:12:20 progress 100%"), "{s}");
    assert!(!s.contains("progress 10%"), "{s}");
    // The unfinished line shows as it stands now.
    assert!(s.contains("│21:12:20 upload 7%"), "{s}");
}

#[test]
fn slash_searches_the_log_smart_case_with_count_and_next_previous() {
    let mut app = state_long_log();
    assert_eq!(ch(&mut app, '/'), vec![]);
    assert_eq!(top(&app).as_deref(), Some("text Search: \"\""));
    typed(&mut app, "error");
    assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
    assert!(app.dialogs.is_empty());
    assert_eq!(app.search.as_deref(), Some("error"));
    // Lower case matches any case; the newest match first, counted, highlighted, on screen.
    let s = narrow(&mut app);
    assert!(s.contains("/error: 6/6"), "{s}");
    assert!(s.contains("line 53 ERROR"), "{s}");
    insta::assert_snapshot!("search_80x24", s);
    // Ctrl-P: the previous match (up); Ctrl-N: the next (down).
    ctrl(&mut app, 'p');
    let s = narrow(&mut app);
    assert!(s.contains("/error: 5/6") && s.contains("line 43 ERROR"), "{s}");
    ctrl(&mut app, 'n');
    assert!(narrow(&mut app).contains("/error: 6/6"));
    // Past the last match it goes round to the first, and says so.
    ctrl(&mut app, 'n');
    let s = narrow(&mut app);
    assert!(s.contains("/error: 1/6") && s.contains("line 03 ERROR"), "{s}");
    assert!(last_message(&app).contains("past the end"));
    ch(&mut app, '/');
    assert_eq!(top(&app).as_deref(), Some("text Search: \"error\""));
    // Ctrl-U clears the box.
    ctrl(&mut app, 'u');
    assert_eq!(top(&app).as_deref(), Some("text Search: \"\""));
    // A capital letter: exact case.
    typed(&mut app, "Error");
    press(&mut app, KeyCode::Enter);
    assert!(narrow(&mut app).contains("/Error: no match"));
    assert!(last_message(&app).contains("not found"));
    // n is still the note key.
    ch(&mut app, 'n');
    assert_eq!(top(&app).as_deref(), Some("text Note: \"\""));
    press(&mut app, KeyCode::Esc);
    // Esc clears the search.
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.search, None);
}

#[test]
fn slash_with_an_empty_text_clears_the_search() {
    let mut app = state_running();
    ch(&mut app, '/');
    typed(&mut app, "ready");
    press(&mut app, KeyCode::Enter);
    assert!(app.search.is_some());
    ch(&mut app, '/');
    for _ in 0.."ready".len() {
        press(&mut app, KeyCode::Backspace);
    }
    assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
    assert_eq!(app.search, None);
    assert!(app.dialogs.is_empty());
}

#[test]
fn ctrl_z_suspends_even_over_a_dialog() {
    let mut app = state_running();
    assert_eq!(ctrl(&mut app, 'z'), vec![Effect::Suspend]);
    ch(&mut app, 'R');
    assert_eq!(ctrl(&mut app, 'z'), vec![Effect::Suspend]);
    assert_eq!(
        top(&app).as_deref(),
        Some("rollback"),
        "the dialog is still there after fg"
    );
}

#[test]
fn unknown_keys_do_nothing_and_draw_nothing() {
    let mut app = state_running();
    app.dirty = false;
    assert_eq!(ch(&mut app, 'x'), vec![]);
    assert_eq!(press(&mut app, KeyCode::F(5)), vec![]);
    assert!(!app.dirty, "an unknown key costs no frame");
    assert!(app.dialogs.is_empty());
}

#[test]
fn dialogs_take_keys_before_the_screen() {
    // A note box over a waiting step: Enter saves the note, it does not confirm the step.
    let mut app = state_waiting_manual();
    ch(&mut app, 'n');
    typed(&mut app, "q");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        send(Command::Note { text: "q".into() })
    );
    // The step still waits.
    assert_eq!(press(&mut app, KeyCode::Enter), confirm(at(PREFLIGHT, 0)));
}

#[test]
fn the_key_hints_match_the_state() {
    let hints = |app: &App| -> Vec<&str> {
        runbook::tui::bindings::hints(app)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(
        hints(&state_waiting_manual()),
        ["Enter", "s", "R", "n", "?", "q", "z"]
    );
    assert_eq!(hints(&state_running()), ["R", "n", "?", "q", "/", "z"]);
    // A watch prints nothing: `/` is not offered (nothing to search).
    assert_eq!(hints(&state_watching()), ["Enter", "R", "n", "?", "q", "z"]);
    // The failed watch has no output: nothing to search. While the trigger fires, r is refused,
    // so it is not offered; it is once the trigger is acknowledged.
    assert_eq!(
        hints(&state_trigger_firing()),
        ["s", "a", "R", "n", "?", "q", "z"]
    );
    let mut app = state_trigger_firing();
    acknowledged(&mut app);
    assert_eq!(hints(&app), ["r", "s", "R", "n", "?", "q", "z"]);
    // `q` is drawn last whatever its place here.
    assert_eq!(hints(&state_finished()), ["?", "q", "z"]);
}

#[test]
fn the_finished_run_keeps_its_phases_readable() {
    // After a rollback, the forward phase that failed, as the operator pages back to it.
    let mut app = state_rolled_back();
    press(&mut app, KeyCode::Left);
    assert_eq!(app.selected, at(CANARY, 0));
    insta::assert_snapshot!("f_rolled_back_canary_phase_120x36", wide(&mut app));
}

// ---------------------------------------------------------------------------------------------
// Resuming: a step that was in flight when an earlier session stopped
// ---------------------------------------------------------------------------------------------

fn state_resumed_interrupted() -> App {
    let mut app = new_app_with(Mode::Resume, &[SourceKind::Simulated, SourceKind::Simulated]);
    run_started(&mut app);
    healthy_samples(&mut app, 1, 60);
    step_started(&mut app, 2, "preflight", "freeze-lifted", false);
    step_finished(
        &mut app,
        20,
        StepFinished {
            phase: "preflight".into(),
            step: "freeze-lifted".into(),
            attempt: 1,
            status: StepStatus::Confirmed,
            duration_ms: 18_000,
            by: Some("alice".into()),
            ..Default::default()
        },
    );
    step_started(&mut app, 20, "preflight", "backup", false);
    waiting(&mut app, at(PREFLIGHT, 1), Wait::Interrupted);
    pin_clocks(&mut app);
    app
}

#[test]
fn resumed_interrupted_step_snapshot() {
    let mut app = state_resumed_interrupted();
    insta::assert_snapshot!("resume_interrupted_80x24", narrow(&mut app));
}

#[test]
fn resumed_interrupted_step_r_runs_it_again() {
    let mut app = state_resumed_interrupted();
    assert_eq!(ch(&mut app, 'r'), send(Command::Retry));
}

#[test]
fn resumed_interrupted_step_d_asks_why_then_marks_it_done() {
    let mut app = state_resumed_interrupted();
    assert_eq!(ch(&mut app, 'd'), vec![]);
    assert_eq!(top(&app).as_deref(), Some("text MarkDone: \"\""));
    assert_eq!(press(&mut app, KeyCode::Enter), vec![], "a reason is needed");
    typed(&mut app, "backup file is there, checked by hand");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        send(Command::MarkDone {
            reason: "backup file is there, checked by hand".into()
        })
    );
}

#[test]
fn resumed_interrupted_step_s_skips_it() {
    let mut app = state_resumed_interrupted();
    ch(&mut app, 's');
    typed(&mut app, "not needed today");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        send(Command::Skip {
            reason: "not needed today".into()
        })
    );
}

#[test]
fn d_elsewhere_only_notes() {
    let mut app = state_running();
    assert_eq!(ch(&mut app, 'd'), vec![]);
    assert!(app.dialogs.is_empty());
    assert!(last_message(&app).contains("marks done"));
}

// ---------------------------------------------------------------------------------------------
// Regressions: problems these snapshots showed once (fixed in 0c4a937), pinned by assertion.
// ---------------------------------------------------------------------------------------------

#[test]
fn fixed_a_confirm_step_shows_as_running_once_started() {
    let mut app = state_running();
    assert_eq!(app.running(), Some(at(CANARY, 0)), "the deploy is in flight");
    let text = wide(&mut app);
    assert!(!text.contains("waiting for go-ahead"), "{text}");
}

#[test]
fn fixed_the_rollback_dialog_names_the_confirm_step_in_flight() {
    let mut app = state_running();
    ch(&mut app, 'R');
    let text = wide(&mut app);
    assert!(
        text.contains("Cancels the step in flight: canary/deploy"),
        "{text}"
    );
}

#[test]
fn fixed_a_failed_step_shows_why() {
    let mut app = state_trigger_firing();
    let text = wide(&mut app);
    assert!(text.contains("fired during the watch"), "{text}");
}

#[test]
fn fixed_remarks_are_shown() {
    let mut app = state_running();
    ch(&mut app, 'r');
    let text = narrow(&mut app);
    assert!(text.contains("nothing to retry"), "{text}");
}

#[test]
fn fixed_the_hints_line_fits_80_columns() {
    let mut app = state_trigger_firing();
    let text = narrow(&mut app);
    let hints = text.lines().nth(23).unwrap_or_default();
    assert!(hints.ends_with("quit"), "{hints:?}");
}

#[test]
fn fixed_the_manual_instruction_is_shown_in_full() {
    let mut app = state_waiting_manual();
    let text = wide(&mut app);
    assert!(text.contains("procedure open."), "{text}");
}

#[test]
fn fixed_the_ascii_theme_is_all_ascii() {
    let app = state_trigger_firing();
    let theme = Theme {
        color: false,
        ascii: true,
    };
    let text = screen(&app, 120, 36, theme);
    let odd: std::collections::BTreeSet<char> = text.chars().filter(|c| !c.is_ascii()).collect();
    assert!(odd.is_empty(), "non-ASCII: {odd:?}\n{text}");
}

#[test]
fn fixed_scrolling_a_short_log_says_nothing_moved() {
    let mut app = state_running();
    press(&mut app, KeyCode::PageUp);
    let text = narrow(&mut app);
    assert!(!text.contains("scrolled up 10 lines"), "{text}");
}

/// (f'') The operator rolled back during the canary deploy: the deploy and the watch after it
/// were cancelled (as the engine journals them), the rollback procedure ran.
fn state_rolled_back_by_operator() -> App {
    let mut app = state_running();
    ev(
        &mut app,
        760,
        Event::RollbackStarted {
            reason: "operator".into(),
            operator: Some("alice".into()),
            note: None,
        },
    );
    for (step, attempt, took) in [("deploy", 1, 60_000), ("watch", 0, 0)] {
        step_finished(
            &mut app,
            760,
            StepFinished {
                phase: "canary".into(),
                step: step.into(),
                attempt,
                status: StepStatus::Cancelled,
                duration_ms: took,
                ..Default::default()
            },
        );
    }
    step_started(&mut app, 761, "immediate", "traffic", true);
    output(
        &mut app,
        rollback_at(0, 0),
        762,
        "==> routing 100% of traffic to checkout v2.13.2",
    );
    command_finished(&mut app, 768, "immediate", "traffic", true, 6_950, 0);
    ev(
        &mut app,
        768,
        Event::RollbackFinished {
            status: RollbackStatus::Succeeded,
        },
    );
    ev(
        &mut app,
        768,
        Event::RunFinished {
            outcome: Outcome::RolledBack,
            exit_code: 3,
            reason: None,
        },
    );
    app
}

#[test]
fn f_run_rolled_back_by_the_operator() {
    let mut app = state_rolled_back_by_operator();
    insta::assert_snapshot!("f_rolled_back_by_operator_120x36", wide(&mut app));
    press(&mut app, KeyCode::Left);
    insta::assert_snapshot!("f_rolled_back_by_operator_canary_80x24", narrow(&mut app));
}

// ---------------------------------------------------------------------------------------------
// Keys act on what the operator sees (SPEC §5)
// ---------------------------------------------------------------------------------------------

/// The deploy (phase 2) waits for its go-ahead; the operator looks at phase 1.
fn state_deploy_waiting_phase_1_on_screen() -> App {
    let mut app = state_running();
    waiting(&mut app, at(CANARY, 0), Wait::GoAhead { irreversible: false });
    press(&mut app, KeyCode::Left);
    assert_eq!(app.selected.phase, PREFLIGHT);
    app
}

#[test]
fn enter_with_another_phase_on_screen_first_brings_the_waiting_step_into_view() {
    let mut app = state_deploy_waiting_phase_1_on_screen();
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![],
        "the first Enter confirms nothing"
    );
    assert_eq!(app.selected, at(CANARY, 0), "it shows the waiting step");
    assert!(
        last_message(&app).contains("canary/deploy") && last_message(&app).contains("Enter again"),
        "{}",
        last_message(&app)
    );
    assert!(
        narrow(&mut app).contains("./deploy.sh --canary 10"),
        "its command is on screen"
    );
    assert_eq!(press(&mut app, KeyCode::Enter), confirm(at(CANARY, 0)));
}

#[test]
fn s_r_and_d_also_act_only_on_a_waiting_step_on_screen() {
    let mut app = state_deploy_waiting_phase_1_on_screen();
    assert_eq!(ch(&mut app, 's'), vec![]);
    assert!(
        app.dialogs.is_empty(),
        "no skip box for a step that is not on screen"
    );
    assert_eq!(app.selected, at(CANARY, 0));
    ch(&mut app, 's');
    assert_eq!(top(&app).as_deref(), Some("text Skip: \"\""));

    // A failed step, with another step selected: r first selects it.
    let mut app = state_trigger_firing();
    acknowledged(&mut app);
    press(&mut app, KeyCode::Up);
    assert_ne!(app.selected, at(CANARY, 1));
    assert_eq!(ch(&mut app, 'r'), vec![]);
    assert_eq!(app.selected, at(CANARY, 1));
    assert_eq!(ch(&mut app, 'r'), send(Command::Retry));

    // An interrupted step on resume: d first selects it.
    let mut app = state_running();
    waiting(&mut app, at(PREFLIGHT, 1), Wait::Interrupted);
    press(&mut app, KeyCode::Right);
    assert_eq!(ch(&mut app, 'd'), vec![]);
    assert!(app.dialogs.is_empty());
    ch(&mut app, 'd');
    assert_eq!(top(&app).as_deref(), Some("text MarkDone: \"\""));
}

#[test]
fn enter_while_a_trigger_fires_starts_nothing_and_says_why() {
    let mut app = state_running();
    waiting(&mut app, at(CANARY, 0), Wait::GoAhead { irreversible: false });
    ev(
        &mut app,
        790,
        Event::TriggerFired {
            trigger: "latency".into(),
            value: Some(0.7),
            reason: None,
            labels: None,
        },
    );
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![],
        "no go-ahead to keep for later"
    );
    assert!(
        last_message(&app).contains("a (acknowledge) or R first"),
        "{}",
        last_message(&app)
    );
    // The acknowledgement itself starts nothing either: it is only the acknowledgement.
    assert_eq!(ch(&mut app, 'a'), send(Command::Acknowledge));
    ev(
        &mut app,
        791,
        Event::TriggerAcknowledged {
            trigger: "latency".into(),
            value: Some(0.7),
            operator: Some("alice".into()),
        },
    );
    assert_eq!(press(&mut app, KeyCode::Enter), confirm(at(CANARY, 0)));
}

#[test]
fn a_dialog_answered_after_its_step_moved_on_starts_nothing() {
    // The end-watch question is open; the watch passes by itself and the next step waits.
    let mut app = state_watching();
    press(&mut app, KeyCode::Enter);
    assert_eq!(top(&app).as_deref(), Some("end-watch"));
    command_finished(&mut app, 800, "canary", "watch", false, 900_000, 0);
    waiting(&mut app, at(PREFLIGHT, 1), Wait::GoAhead { irreversible: false });
    assert_eq!(ch(&mut app, 'y'), vec![], "y was meant for the watch");
    assert!(
        last_message(&app).contains("no longer running"),
        "{}",
        last_message(&app)
    );

    // A skip box opened for one step, answered once another waits.
    let mut app = state_waiting_manual();
    ch(&mut app, 's');
    typed(&mut app, "checked by hand");
    waiting(&mut app, at(PREFLIGHT, 1), Wait::GoAhead { irreversible: false });
    assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
    assert!(
        last_message(&app).contains("no longer waits"),
        "{}",
        last_message(&app)
    );
}

#[test]
fn an_empty_skip_reason_says_a_reason_is_required() {
    let mut app = state_waiting_manual();
    ch(&mut app, 's');
    assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
    assert!(top(&app).is_some(), "the box stays open");
    assert!(
        last_message(&app).contains("a skip needs a reason"),
        "{}",
        last_message(&app)
    );
    insta::assert_snapshot!("skip_without_a_reason_80x24", narrow(&mut app));
}

/// The deploy is irreversible here, and waits for its go-ahead.
fn state_irreversible_waiting() -> App {
    let mut app = state_running();
    waiting(&mut app, at(CANARY, 0), Wait::GoAhead { irreversible: true });
    app
}

#[test]
fn an_irreversible_step_starts_only_on_y_in_a_confirmation_that_names_it() {
    let mut app = state_irreversible_waiting();
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![],
        "Enter alone never starts it"
    );
    assert_eq!(top(&app).as_deref(), Some("irreversible 1/0"));
    let shown = narrow(&mut app);
    assert!(shown.contains("canary/deploy"), "{shown}");
    assert!(shown.contains("rollback procedure cannot undo it"), "{shown}");
    insta::assert_snapshot!("irreversible_80x24", shown);
    // A second Enter (typed ahead) does not answer it either.
    assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
    assert_eq!(top(&app).as_deref(), Some("irreversible 1/0"));
    assert_eq!(ch(&mut app, 'y'), confirm(at(CANARY, 0)));
    assert!(app.dialogs.is_empty());

    let mut app = state_irreversible_waiting();
    press(&mut app, KeyCode::Enter);
    assert_eq!(press(&mut app, KeyCode::Esc), vec![]);
    assert!(app.dialogs.is_empty());
}

/// The error-rate trigger rolls back by itself two minutes after it fired (a minute ago).
fn state_auto_rollback_counting() -> App {
    let mut app = state_trigger_firing();
    let mut rb = (*app.rb).clone();
    rb.triggers[0].auto_rollback = Some(Duration::from_secs(120));
    app.rb = Arc::new(rb);
    app
}

#[test]
fn auto_rollback_counts_down_on_screen_with_the_key_that_stops_it() {
    let mut app = state_auto_rollback_counting();
    let shown = narrow(&mut app);
    assert!(shown.contains("ROLLS BACK BY ITSELF IN 1:00"), "{shown}");
    assert!(shown.contains("a: acknowledge (stops it)"), "{shown}");
    assert!(shown.contains("AUTO ROLLBACK IN 1:00"), "{shown}");
    insta::assert_snapshot!("auto_rollback_80x24", shown);
    insta::assert_snapshot!("auto_rollback_120x36", wide(&mut app));
    acknowledged(&mut app);
    assert!(
        !narrow(&mut app).contains("BY ITSELF"),
        "acknowledged: no countdown"
    );
}

#[test]
fn a_running_watch_says_when_it_passes_by_itself_and_what_stops_it() {
    let mut app = state_watching();
    let shown = narrow(&mut app);
    assert!(shown.contains("WATCH passes by itself in 14:06"), "{shown}");
    assert!(shown.contains("Enter, y: pass it now"), "{shown}");
    assert!(shown.contains("R: roll back instead"), "{shown}");
}

/// The rollback runs; its step waits for the operator's go-ahead.
fn state_rollback_step_waiting() -> App {
    let mut app = state_trigger_firing();
    ev(
        &mut app,
        800,
        Event::RollbackStarted {
            reason: "trigger:error-rate".into(),
            operator: Some("alice".into()),
            note: None,
        },
    );
    waiting(&mut app, rollback_at(0, 0), Wait::GoAhead { irreversible: false });
    app
}

#[test]
fn a_rollback_step_waiting_says_so_and_quitting_then_says_exit_4() {
    let mut app = state_rollback_step_waiting();
    let shown = narrow(&mut app);
    assert!(shown.contains("ROLLBACK WAITS FOR YOU"), "{shown}");
    assert!(
        shown.contains("ROLLBACK STEP WAITS FOR YOU · Enter: go ahead"),
        "{shown}"
    );
    ch(&mut app, 'q');
    let shown = narrow(&mut app);
    assert!(shown.contains("exit 4"), "{shown}");
    assert!(!shown.contains("exit 1"), "{shown}");
    insta::assert_snapshot!("quit_during_rollback_80x24", shown);
}

#[test]
fn resuming_shows_no_countdown_from_the_last_session() {
    // The last session stopped with the trigger firing; the engine watches it afresh.
    let mut app = state_auto_rollback_counting();
    assert!(app.auto_rollback().is_some());
    ev(
        &mut app,
        300,
        Event::RunStarted {
            runbook: "checkout".into(),
            title: "Checkout service rollout".into(),
            file: "tests/fixtures/tui/checkout.toml".into(),
            sha256: "994b1638b50c".into(),
            operator: "alice".into(),
            host: "bastion".into(),
            mode: "resume".into(),
            vars: BTreeMap::new(),
            pid: 4343,
            plan: None,
        },
    );
    assert!(app.auto_rollback().is_none());
    assert!(!narrow(&mut app).contains("BY ITSELF"));
    assert_eq!(app.triggers[0].state, TriggerState::NotYetSampled);
}

#[test]
fn an_irreversible_step_reached_opens_its_confirmation_by_itself_unless_a_dialog_is_open() {
    // Reached with no dialog open: the confirmation is on screen at once, naming it.
    let mut app = state_running();
    waiting(&mut app, at(CANARY, 0), Wait::GoAhead { irreversible: true });
    assert_eq!(top(&app).as_deref(), Some("irreversible 1/0"));
    assert!(narrow(&mut app).contains("rollback procedure cannot undo it"));
    // A key typed ahead does not answer it; only y does.
    assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
    assert_eq!(ch(&mut app, 'y'), confirm(at(CANARY, 0)));

    // Reached while the operator types a note: the note keeps the keys (a "y" in it is text),
    // and the step waits for Enter, which then opens the confirmation.
    let mut app = state_running();
    ch(&mut app, 'n');
    waiting(&mut app, at(CANARY, 0), Wait::GoAhead { irreversible: true });
    assert_eq!(top(&app).as_deref(), Some("text Note: \"\""));
    assert_eq!(ch(&mut app, 'y'), vec![]);
    assert_eq!(top(&app).as_deref(), Some("text Note: \"y\""));
    press(&mut app, KeyCode::Esc);
    assert!(app.dialogs.is_empty());
    assert_eq!(press(&mut app, KeyCode::Enter), vec![]);
    assert_eq!(top(&app).as_deref(), Some("irreversible 1/0"));
}

// ---------------------------------------------------------------------------------------------
// Reading a run: crowded triggers, earlier attempts, a resumed step's log
// ---------------------------------------------------------------------------------------------

#[test]
fn the_80x24_strip_never_hides_a_trigger_without_saying_so() {
    let mut app = state_running();
    for id in [
        "queue-depth-ratio-above-normal",
        "checkout-critical-flows",
        "payment-errors",
    ] {
        let mut t = app.triggers[1].clone();
        t.id = id.into();
        t.title = format!("{id}, in full words");
        app.triggers.push(t);
    }
    let s = narrow(&mut app);
    let line = s
        .lines()
        .find(|l| l.starts_with("Triggers:"))
        .expect("the triggers line");
    assert!(line.contains("more (m)"), "{line}");
    assert!(!line.contains('…'), "no id is cut: {line}");
    insta::assert_snapshot!("crowded_strip_80x24", s);
    // At 120×36 the sidebar lists every trigger, each id whole.
    let side = wide(&mut app);
    assert!(
        side.contains("queue-depth-ratio-above-"),
        "broken after a dash: {side}"
    );
    for t in &app.triggers {
        let last = t.id.rsplit('-').next().unwrap_or(&t.id);
        assert!(side.contains(last), "{} in {side}", t.id);
    }
    insta::assert_snapshot!("crowded_sidebar_120x36", side);
    // m: all of them, with their titles, on the whole screen.
    ch(&mut app, 'm');
    let s = narrow(&mut app);
    for t in &app.triggers {
        assert!(s.contains(&t.id), "{} on {s}", t.id);
    }
    assert!(s.contains("payment-errors, in full words"), "{s}");
    insta::assert_snapshot!("metrics_zoomed_80x24", s);
    insta::assert_snapshot!("metrics_zoomed_120x36", wide(&mut app));
    ch(&mut app, 'm');
    assert_eq!(app.zoom, None);
}

#[test]
fn a_long_title_is_read_in_full_in_the_detail_line() {
    let mut app = state_trigger_firing();
    let s = narrow(&mut app);
    // The failed watch's title is cut in its row (its keys take the room), whole under the list.
    assert!(
        s.contains("Monitor error rates for 15 mi… failed: r retry"),
        "{s}"
    );
    assert!(s.contains("│Monitor error rates for 15 minutes "), "{s}");
    insta::assert_snapshot!("detail_full_title_80x24", s);
    let s = wide(&mut app);
    assert!(s.contains("Monitor error rates for 15 minutes"), "{s}");
    insta::assert_snapshot!("detail_full_title_120x36", s);
}

/// The backup failed once ("transient network blip") and runs again.
fn state_retried() -> App {
    let mut app = state_backup_running();
    let backup = at(PREFLIGHT, 1);
    output(&mut app, backup, 100, "error: transient network blip");
    command_finished(&mut app, 101, "preflight", "backup", false, 5_000, 1);
    waiting(
        &mut app,
        backup,
        Wait::Failed {
            status: StepStatus::Failed,
            error: None,
        },
    );
    ev(
        &mut app,
        110,
        Event::StepStarted {
            phase: "preflight".into(),
            step: "backup".into(),
            attempt: 2,
            rollback: false,
        },
    );
    output(&mut app, backup, 111, "pg_dump: second try");
    pin_clocks(&mut app);
    app
}

#[test]
fn brackets_show_an_earlier_attempt_after_a_retry() {
    let mut app = state_retried();
    let s = narrow(&mut app);
    assert!(s.contains("attempt 2/2"), "{s}");
    assert!(!s.contains("transient network blip"), "{s}");
    ch(&mut app, '[');
    assert_eq!(app.shown_attempt(), 1);
    let s = narrow(&mut app);
    assert!(s.contains("attempt 1/2"), "{s}");
    assert!(s.contains("error: transient network blip"), "{s}");
    assert!(s.contains("— failed after 5s (exit 1)"), "{s}");
    insta::assert_snapshot!("earlier_attempt_80x24", s);
    // Kept from this session: nothing to read from the disk.
    assert_eq!(app.wanted_log(), None);
    ch(&mut app, ']');
    assert_eq!(app.shown_attempt(), 2);
    assert!(narrow(&mut app).contains("pg_dump: second try"));
}

#[test]
fn a_resumed_interrupted_step_asks_for_its_log_and_shows_it() {
    let mut app = state_resumed_interrupted();
    assert_eq!(app.selected, at(PREFLIGHT, 1));
    // The event loop reads this file from the run folder and hands it over.
    let (step, attempt, path) = app.wanted_log().expect("the interrupted attempt's log is wanted");
    assert_eq!(
        (step, attempt, path.as_str()),
        (at(PREFLIGHT, 1), 1, "logs/preflight--backup--1.log")
    );
    app.log_loaded(
        step,
        attempt,
        Ok(b"pg_dump: dumping contents of table \"public.orders\"\n".to_vec()),
    );
    assert_eq!(app.wanted_log(), None);
    let s = narrow(&mut app);
    assert!(s.contains("pg_dump: dumping contents"), "{s}");
    assert!(!s.contains("│waiting"), "{s}");
    insta::assert_snapshot!("resume_interrupted_log_80x24", s);
    // A file that is not there says so, in the log pane.
    let mut app = state_resumed_interrupted();
    app.log_loaded(
        step,
        attempt,
        Err("no log: logs/preflight--backup--1.log does not exist".into()),
    );
    assert!(narrow(&mut app).contains("does not exist"));
}

/// The key table is the one source of keys: no key is bound twice and each is handled as the
/// table says; every hint offered in any state is a binding of the table, and pressing it there
/// does something; the help shows every binding.
#[test]
fn the_key_table_hints_and_help_agree() {
    use runbook::tui::bindings::{TABLE, action, hints};
    let mut seen = Vec::new();
    for b in TABLE {
        assert!(!b.label.is_empty() && !b.help.is_empty());
        for (k, a) in b.keys {
            assert!(!seen.contains(k), "{k:?} is bound twice");
            seen.push(*k);
            let mods = if k.ctrl {
                KeyModifiers::CONTROL
            } else {
                KeyModifiers::NONE
            };
            assert_eq!(action(KeyEvent::new(k.code, mods)), Some(*a), "{k:?}");
        }
    }

    // The help lists every binding, with its text (on a screen tall enough to hold it all).
    let mut app = state_waiting_manual();
    ch(&mut app, '?');
    pin_clocks(&mut app);
    let help = screen(&app, 120, 60, PLAIN);
    for b in TABLE {
        let first_words: String = b.help.chars().take(40).collect();
        assert!(
            help.contains(&format!("{}  {first_words}", b.label)),
            "{}\n{help}",
            b.label
        );
    }

    let acknowledged_state = || {
        let mut app = state_trigger_firing();
        acknowledged(&mut app);
        app
    };
    let searched = || {
        let mut app = state_long_log();
        ch(&mut app, '/');
        typed(&mut app, "line");
        press(&mut app, KeyCode::Enter);
        app
    };
    let zoomed = || {
        let mut app = state_running();
        ch(&mut app, 'z');
        app
    };
    type Build = Box<dyn Fn() -> App>;
    let states: Vec<(&str, Build)> = vec![
        ("waiting manual", Box::new(state_waiting_manual)),
        ("running", Box::new(state_running)),
        ("watching", Box::new(state_watching)),
        ("trigger firing", Box::new(state_trigger_firing)),
        ("acknowledged", Box::new(acknowledged_state)),
        ("finished", Box::new(state_finished)),
        ("rolled back", Box::new(state_rolled_back)),
        ("resumed interrupted", Box::new(state_resumed_interrupted)),
        ("retried", Box::new(state_retried)),
        (
            "waiting in another phase",
            Box::new(state_deploy_waiting_phase_1_on_screen),
        ),
        ("rollback step waiting", Box::new(state_rollback_step_waiting)),
        ("searched", Box::new(searched)),
        ("zoomed", Box::new(zoomed)),
    ];
    for (name, build) in &states {
        let mut app = build();
        app.dialogs.clear();
        let offered = hints(&app);
        assert!(!offered.is_empty(), "{name}");
        for (keys, what) in offered {
            let binding = TABLE
                .iter()
                .find(|b| b.hint.as_ref().is_some_and(|h| h.keys == keys))
                .unwrap_or_else(|| panic!("{name}: hint {keys} is not in the key table"));
            // The hint line on screen says it (when there is room: at 120 columns).
            let mut app = build();
            app.dialogs.clear();
            let before = wide(&mut app);
            let hint_line = before.lines().last().unwrap_or("");
            assert!(
                hint_line.contains(&format!(" {keys}  {what}")),
                "{name}: {hint_line}"
            );
            // Pressing it does what it offers: something is sent, a dialog opens or the screen
            // changes, and it is never refused with a remark.
            let said = app.messages.len();
            let (k, _) = binding.keys[0];
            let mods = if k.ctrl {
                KeyModifiers::CONTROL
            } else {
                KeyModifiers::NONE
            };
            let effects = on_key(&mut app, KeyEvent::new(k.code, mods));
            let after = wide(&mut app);
            assert!(
                !effects.is_empty() || !app.dialogs.is_empty() || after != before,
                "{name}: {keys} ({what}) did nothing"
            );
            let remark = last_message(&app);
            assert!(
                app.messages.len() == said || remark.contains("on screen now"),
                "{name}: {keys} ({what}) was refused: {remark}"
            );
        }
    }
}

/// `M` turns the mouse wheel on (off at start: the terminal selects text); the wheel scrolls
/// the pane under the pointer, the help when it is open, and nothing while it is off.
#[test]
fn the_mouse_wheel_scrolls_the_pane_under_it_once_turned_on() {
    use crossterm::event::{MouseEvent, MouseEventKind};
    use runbook::tui::keys::on_mouse;
    let wheel = |up: bool, column: u16, row: u16| MouseEvent {
        kind: if up {
            MouseEventKind::ScrollUp
        } else {
            MouseEventKind::ScrollDown
        },
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    let mut app = state_long_log();
    app.screen = (80, 24);
    assert!(!app.mouse, "off at start");
    assert_eq!(ch(&mut app, 'M'), vec![Effect::Mouse(true)]);
    assert!(
        last_message(&app).contains("Shift-drag"),
        "{}",
        last_message(&app)
    );
    let areas = ui::layout(&app, ratatui::layout::Rect::new(0, 0, 80, 24));
    let log = areas.log.expect("a log pane");
    let steps = areas.steps.expect("a steps pane");
    // Over the log: three lines up a notch, and back down.
    on_mouse(&mut app, wheel(true, log.x + 5, log.y + 3));
    assert_eq!(app.log_scroll, 3);
    assert_eq!(app.focus, Focus::Steps, "the wheel does not move the keyboard");
    on_mouse(&mut app, wheel(false, log.x + 5, log.y + 3));
    assert_eq!(app.log_scroll, 0);
    // Over the steps: the selection moves.
    let selected = app.selected;
    on_mouse(&mut app, wheel(false, steps.x + 5, steps.y + 1));
    assert_ne!(app.selected, selected, "the wheel over the steps selects another");
    // The help scrolls under the wheel.
    ch(&mut app, '?');
    on_mouse(&mut app, wheel(false, 40, 12));
    assert!(matches!(app.dialogs.last(), Some(Dialog::Help { scroll: 3 })));
    press(&mut app, KeyCode::Esc);
    assert_eq!(ch(&mut app, 'M'), vec![Effect::Mouse(false)]);
}

/// A phase the rollback cut short says what was cancelled, not `5/5`.
#[test]
fn a_phase_cut_short_by_the_rollback_counts_its_cancelled_steps() {
    let mut app = state_rolled_back_by_operator();
    let s = wide(&mut app);
    let canary = line_of(&s, "Canary");
    assert!(canary.contains("cancelled") || canary.contains("⊘"), "{canary}");
    assert!(!canary.contains("2/2"), "{canary}");
    // Two steps, one done and one cancelled: 1/2 and one cancelled.
    let phase = app.steps.len() - 1;
    let n = app.steps[phase].len();
    assert!(n >= 2, "the fixture's last phase has two steps");
    app.steps[phase][0].state = StepState::Done {
        status: StepStatus::Succeeded,
        took: Duration::from_secs(60),
        attempt: 1,
        note: None,
    };
    let s = wide(&mut app);
    let canary = line_of(&s, "Canary");
    assert!(canary.contains(&format!("1/{n} ⊘{}", n - 1)), "{canary}");
    assert!(canary.contains("│⊘ Canary"), "cut short, not done: {canary}");
}

fn line_of<'a>(screen: &'a str, text: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(text))
        .unwrap_or_else(|| panic!("{text:?} not on screen:\n{screen}"))
}

/// A log title too long for the pane cuts the step's name, never where the log stands.
#[test]
fn a_long_step_name_gives_way_in_the_log_title() {
    let mut rb = (*fixture()).clone();
    rb.phases[CANARY].id = "canary-deployment-of-the-checkout-service".into();
    rb.phases[CANARY].steps[0].id = "deploy-the-release-to-ten-percent-of-instances".into();
    let mut app = state_long_log();
    app.rb = Arc::new(rb);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::PageUp);
    let s = narrow(&mut app);
    let title = line_of(&s, "Log: canary-deployment");
    assert!(title.contains("(End: follow)"), "{title}");
    assert!(title.contains('…'), "the name is cut: {title}");
}
