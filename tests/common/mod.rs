//! Helpers shared by the integration tests: runbooks written into a temporary folder, the real
//! binary run headless against a temporary state folder, journals read back, processes checked,
//! the engine driven through the library, a tiny HTTP server, and (`tmux`) a terminal to drive.
#![allow(dead_code)]

pub mod prometheus;
pub mod tmux;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command as ProcCommand, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runbook::engine::{Command, Mode, StepRef, Update, Wait};
use runbook::journal::{Event, Outcome, Record, StepFinished};
use runbook::session::{self, Request};
use serde_json::Value;
use tempfile::TempDir;

/// The `runbook` binary cargo built for these tests: every test that runs the binary starts it
/// from here.
pub fn runbook_bin() -> &'static Path {
    assert_cmd::cargo::cargo_bin!("runbook")
}

/// `runbook ARGS...` run to its end in the crate's folder (so fixture paths print the same
/// everywhere), without colour; a run that hangs fails the test after two minutes.
pub fn runbook(args: &[&str]) -> Output {
    assert_cmd::Command::new(runbook_bin())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(120))
        .output()
        .expect("the runbook binary runs")
}

/// Output bytes as text (invalid UTF-8 replaced).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A runbook for a test, built table by table: `[runbook]` and its title, phases and their steps
/// (each step with its own lines, such as `run = "true"`), a rollback procedure, and anything
/// else as written (`raw`). Phases and steps after `rollback` belong to the rollback procedure.
pub struct RunbookToml {
    text: String,
    rollback: bool,
}

impl RunbookToml {
    pub fn new(title: &str) -> RunbookToml {
        RunbookToml {
            text: format!("[runbook]\ntitle = {}\n", toml_string(title)),
            rollback: false,
        }
    }

    /// A table (or keys) as written, e.g. `[vars]` or `[[trigger]]`.
    pub fn raw(mut self, toml: &str) -> RunbookToml {
        self.text.push('\n');
        self.text.push_str(toml.trim_matches('\n'));
        self.text.push('\n');
        self
    }

    pub fn phase(mut self, id: &str, title: &str) -> RunbookToml {
        let table = if self.rollback { "rollback.phase" } else { "phase" };
        self.text.push_str(&format!(
            "\n[[{table}]]\nid = {}\ntitle = {}\n",
            toml_string(id),
            toml_string(title)
        ));
        self
    }

    /// A step of the last phase; `lines` are its other keys (`run = "true"`, `watch = "15m"`).
    pub fn step(mut self, id: &str, title: &str, lines: &str) -> RunbookToml {
        let table = if self.rollback {
            "rollback.phase.step"
        } else {
            "phase.step"
        };
        self.text.push_str(&format!(
            "\n[[{table}]]\nid = {}\ntitle = {}\n{}\n",
            toml_string(id),
            toml_string(title),
            lines.trim_matches('\n')
        ));
        self
    }

    /// `[rollback]`: the phases and steps that follow are its procedure.
    pub fn rollback(mut self, title: &str) -> RunbookToml {
        self.text
            .push_str(&format!("\n[rollback]\ntitle = {}\n", toml_string(title)));
        self.rollback = true;
        self
    }

    pub fn build(self) -> String {
        self.text
    }
}

/// A TOML basic string.
pub fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The database and bastions in network namespaces of the test's own, links that can be cut.
pub mod netns;
/// A real PostgreSQL, for the shared store's tests.
pub mod postgres;

/// Bastion hosts (a host name, a state dir and a Unix user each), for the shared store's tests.
pub mod hosts;
/// The store tests' `runbook` processes, their run folders and journals, a shared runbook.
pub mod runs;

/// A temporary folder holding runbooks, files the steps write, and the state folder.
pub struct Fixture {
    pub dir: TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::Builder::new()
                .prefix("runbook-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A file in the fixture folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name` in the fixture folder and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.file(name);
        std::fs::write(&p, text).expect("write fixture file");
        p
    }

    /// The state folder passed as `--state-dir`.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Reads a file the steps wrote, as text ("" when it does not exist).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_default()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    /// Every run folder under the state folder.
    pub fn run_dirs(&self) -> Vec<PathBuf> {
        run_dirs(&self.state())
    }

    /// The one run folder (panics unless there is exactly one).
    pub fn run_dir(&self) -> PathBuf {
        let dirs = self.run_dirs();
        assert_eq!(dirs.len(), 1, "expected exactly one run folder, found {dirs:?}");
        dirs.into_iter().next().unwrap()
    }

    /// The journal of the one run, as raw JSON values (the wire format of SPEC §4).
    pub fn journal(&self) -> Vec<Value> {
        journal_json(&self.run_dir().join("journal.jsonl"))
    }

    /// `runbook run FILE --headless --state-dir STATE ARGS...`, stdin null.
    pub fn run_cli(&self, file: &Path, args: &[&str]) -> CliRun {
        self.run_cli_env(file, args, &[])
    }

    pub fn run_cli_env(&self, file: &Path, args: &[&str], env: &[(&str, &str)]) -> CliRun {
        let started = Instant::now();
        let mut cmd = self.cli_command(file, args, env);
        let child = cmd.spawn().expect("spawn runbook");
        let output = wait_output(child, Duration::from_secs(30));
        CliRun::new(output, started.elapsed())
    }

    /// The command `run_cli` runs, to spawn it yourself.
    pub fn cli_command(&self, file: &Path, args: &[&str], env: &[(&str, &str)]) -> ProcCommand {
        let mut cmd = ProcCommand::new(runbook_bin());
        cmd.arg("run")
            .arg(file)
            .arg("--headless")
            .arg("--state-dir")
            .arg(self.state())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .current_dir(self.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// Waits for a child with a limit, reading its output meanwhile (so a chatty child never blocks).
pub fn wait_output(mut child: std::process::Child, limit: Duration) -> Output {
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("runbook did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// What the binary did.
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_bytes: Vec<u8>,
    pub elapsed: Duration,
}

impl CliRun {
    pub fn new(o: Output, elapsed: Duration) -> CliRun {
        CliRun {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            stdout_bytes: o.stdout,
            elapsed,
        }
    }

    /// Asserts the exit status, showing the run's output when it differs.
    pub fn expect_code(&self, code: i32) -> &CliRun {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit status\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("internal error"),
            "runbook panicked:\n{}",
            self.stderr
        );
        self
    }
}

/// Run folders under `STATE/runs`, sorted.
pub fn run_dirs(state: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(state.join("runs")) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// A journal read as JSON values, one per line; every line must parse.
pub fn journal_json(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("journal line {l:?}: {e}")))
        .collect()
}

/// The `event` name of each journal entry.
pub fn event_names(j: &[Value]) -> Vec<String> {
    j.iter()
        .map(|e| e["event"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Entries of one kind.
pub fn events<'a>(j: &'a [Value], name: &str) -> Vec<&'a Value> {
    j.iter().filter(|e| e["event"] == name).collect()
}

/// The one entry of a kind (panics unless there is exactly one).
pub fn event<'a>(j: &'a [Value], name: &str) -> &'a Value {
    let v = events(j, name);
    assert_eq!(v.len(), 1, "expected one `{name}` event in {j:#?}");
    v[0]
}

/// `step_finished` entries of `phase/step`, in order.
pub fn finished<'a>(j: &'a [Value], name: &str) -> Vec<&'a Value> {
    j.iter()
        .filter(|e| e["event"] == "step_finished" && step_name(e) == name)
        .collect()
}

/// The last `step_finished` of `phase/step`.
pub fn last_finished<'a>(j: &'a [Value], name: &str) -> &'a Value {
    finished(j, name)
        .last()
        .copied()
        .unwrap_or_else(|| panic!("no step_finished for {name} in {j:#?}"))
}

pub fn step_name(e: &Value) -> String {
    format!(
        "{}/{}",
        e["phase"].as_str().unwrap_or(""),
        e["step"].as_str().unwrap_or("")
    )
}

/// `(event, phase/step, status)` for step events, in journal order: a compact picture of a run.
pub fn step_trace(j: &[Value]) -> Vec<String> {
    j.iter()
        .filter_map(|e| match e["event"].as_str()? {
            "step_started" => Some(format!("start {}#{}", step_name(e), e["attempt"])),
            "step_finished" => Some(format!(
                "{} {}#{}",
                e["status"].as_str().unwrap_or("?"),
                step_name(e),
                e["attempt"]
            )),
            _ => None,
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn is_rfc3339_utc_millis(ts: &str) -> bool {
    let b = ts.as_bytes();
    if b.len() != 24 {
        return false;
    }
    let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];
    let fixed = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ];
    digits.iter().all(|&i| b[i].is_ascii_digit())
        && fixed.iter().all(|&(i, c)| b[i] == c)
        && humantime::parse_rfc3339(ts).is_ok()
}

/// Milliseconds between two journal timestamps.
pub fn ms_between(a: &str, b: &str) -> i128 {
    let a = humantime::parse_rfc3339(a).expect("timestamp");
    let b = humantime::parse_rfc3339(b).expect("timestamp");
    match b.duration_since(a) {
        Ok(d) => d.as_millis() as i128,
        Err(e) => -(e.duration().as_millis() as i128),
    }
}

/// Whether a process is gone: no such process, or a zombie nobody reaped yet (it runs nothing).
pub fn process_gone(pid: i32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    match kill(Pid::from_raw(pid), None) {
        Err(Errno::ESRCH) => true,
        _ => match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => {
                // pid (comm) STATE ...; comm may contain spaces, so look after the last ')'.
                let state = stat.rsplit(')').next().unwrap_or("").trim_start();
                state.starts_with('Z') || state.starts_with('X')
            }
        },
    }
}

/// Waits (briefly) for a process to be gone; a SIGKILLed orphan may take a moment to be reaped.
pub fn wait_gone(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if process_gone(pid) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids written one per line by a step.
pub fn read_pids(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("bad pid {s:?} in {}", path.display()))
        })
        .collect()
}

/// Kills leftover test processes so that a failing assertion does not leave them behind.
pub fn kill_pids(pids: &[i32]) {
    for &p in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
    }
}

impl Fixture {
    /// `runbook resume ARGS... --headless --state-dir STATE`, stdin null, in the fixture folder.
    pub fn resume_command(&self, args: &[&str]) -> ProcCommand {
        let mut cmd = ProcCommand::new(runbook_bin());
        cmd.arg("resume")
            .args(args)
            .arg("--headless")
            .arg("--state-dir")
            .arg(self.state())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .current_dir(self.path());
        cmd
    }

    /// `runbook resume ARGS...` run to its end.
    pub fn resume(&self, args: &[&str]) -> CliRun {
        let started = Instant::now();
        let child = self.resume_command(args).spawn().expect("spawn runbook resume");
        CliRun::new(wait_output(child, Duration::from_secs(60)), started.elapsed())
    }

    /// `runbook run FILE --headless --state-dir STATE ARGS...` started in the background.
    pub fn spawn_run(&self, file: &Path, args: &[&str]) -> std::process::Child {
        self.cli_command(file, args, &[])
            .spawn()
            .expect("spawn runbook run")
    }
}

/// A journal read while it may be written: lines that do not parse (yet) are left out.
pub fn journal_now(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A run folder's journal, read while it may be written (see `journal_now`).
pub fn run_journal(run_dir: &Path) -> Vec<Value> {
    journal_now(&run_dir.join("journal.jsonl"))
}

/// Every step_started with its name and attempt (`phase/step#N`), in journal order.
pub fn started(j: &[Value]) -> Vec<String> {
    j.iter()
        .filter(|e| e["event"] == "step_started")
        .map(|e| format!("{}#{}", step_name(e), e["attempt"]))
        .collect()
}

/// Polls until `cond` holds, up to `limit`.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Driving the engine through the library, the way a front end does.

/// Everything a front end saw of one run.
#[derive(Debug)]
pub struct Driven {
    pub records: Vec<Record>,
    pub output: Vec<(StepRef, Vec<u8>)>,
    pub waits: Vec<(StepRef, Wait)>,
    pub messages: Vec<String>,
    pub outcome: Outcome,
    pub run_dir: PathBuf,
    pub elapsed: Duration,
}

impl Driven {
    /// The journal on disk, as JSON values.
    pub fn journal(&self) -> Vec<Value> {
        journal_json(&self.run_dir.join("journal.jsonl"))
    }

    /// Every `step_finished` of `phase/step`.
    pub fn finished(&self, name: &str) -> Vec<&StepFinished> {
        self.records
            .iter()
            .filter_map(|r| match &r.event {
                Event::StepFinished(f) if format!("{}/{}", f.phase, f.step) == name => Some(&**f),
                _ => None,
            })
            .collect()
    }

    pub fn last_finished(&self, name: &str) -> &StepFinished {
        self.finished(name)
            .last()
            .copied()
            .unwrap_or_else(|| panic!("no step_finished for {name} in {:#?}", self.records))
    }

    /// Output of the step at `at`, all chunks together.
    pub fn output_of(&self, at: StepRef) -> Vec<u8> {
        self.output
            .iter()
            .filter(|(s, _)| *s == at)
            .flat_map(|(_, b)| b.iter().copied())
            .collect()
    }

    pub fn log_of(&self, f: &StepFinished) -> Vec<u8> {
        let rel = f.log.as_deref().expect("step_finished has a log");
        std::fs::read(self.run_dir.join(rel)).expect("read the step's log")
    }
}

/// A forward step's place.
pub fn at(phase: usize, step: usize) -> StepRef {
    StepRef {
        rollback: false,
        phase,
        step,
    }
}

pub fn request(file: &Path, state: &Path, vars: &[(&str, &str)], yes: bool) -> Request {
    Request {
        file: file.to_path_buf(),
        vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        yes,
        state_dir: Some(state.to_path_buf()),
        mode: Mode::Run,
        rehearsal: None,
        prometheus: None,
        simulate_metrics: false,
        on_fire: runbook::engine::OnFire::RollBack,
        ask_irreversible: false,
        resume: None,
        force: false,
    }
}

/// How `drive_checked` checks the run it drove against its journal on disk.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The journal equals the events the front end was given, and no wait went unanswered.
    Exact,
    /// Runs with simulated metrics: the journal is compared event by event, not float for float
    /// (the reader does not read every float back to the same bits), and a wait the test leaves
    /// unanswered just aborts the run.
    EventNames,
}

/// Starts a session and runs it to the end. `react` sees every update and returns the commands to
/// send in answer. The journal on disk must equal the events the front end was given.
pub async fn drive(req: Request, react: impl FnMut(&Update) -> Vec<Command>) -> Driven {
    drive_checked(req, react, Check::Exact).await
}

/// `drive`, with the check of the journal chosen by the caller.
pub async fn drive_checked(
    req: Request,
    mut react: impl FnMut(&Update) -> Vec<Command>,
    check: Check,
) -> Driven {
    let started = Instant::now();
    let mut s = match session::start(req) {
        Ok(s) => s,
        Err(e) => panic!("session did not start: {e}"),
    };
    let run_dir = s.run_dir.clone();
    let mut d = Driven {
        records: Vec::new(),
        output: Vec::new(),
        waits: Vec::new(),
        messages: Vec::new(),
        outcome: Outcome::Failed,
        run_dir,
        elapsed: Duration::ZERO,
    };
    let mut unanswered = Vec::new();
    let body = async {
        while let Some(u) = s.updates.recv().await {
            let mut answer = react(&u);
            if let (Update::Waiting { step, why }, true) = (&u, answer.is_empty()) {
                // The test did not expect this wait: stop the run instead of hanging, and fail below.
                unanswered.push((*step, why.clone()));
                answer.push(Command::Abort {
                    reason: Some("test: unexpected wait".into()),
                });
            }
            for c in answer {
                s.commands.send(c).await.expect("engine takes commands");
            }
            match u {
                Update::Event(r) => d.records.push(r),
                Update::Output { step, chunk } => d.output.push((step, chunk.bytes)),
                Update::Waiting { step, why } => d.waits.push((step, why)),
                Update::Message(m) => d.messages.push(m),
                // No store in these runs.
                Update::Store(_) => {}
                Update::Team(t) => d.messages.push(format!("{t:?}")),
            }
        }
        (&mut s.engine).await.expect("engine task")
    };
    let result = tokio::time::timeout(Duration::from_secs(30), body).await;
    d.outcome = match result {
        Ok(o) => o,
        Err(_) => panic!(
            "the run did not end within 30 s; events so far: {:#?}",
            std::fs::read_to_string(d.run_dir.join("journal.jsonl")).unwrap_or_default()
        ),
    };
    d.elapsed = started.elapsed();
    if check == Check::EventNames {
        let on_disk = journal_json(&d.run_dir.join("journal.jsonl"));
        let sent: Vec<String> = d
            .records
            .iter()
            .map(|r| {
                serde_json::to_value(r).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            event_names(&on_disk),
            sent,
            "the journal on disk has the events sent"
        );
        return d;
    }
    assert!(
        unanswered.is_empty(),
        "the run waited where the test expected no wait: {unanswered:?}\nevents: {:#?}",
        d.records
    );
    let on_disk = runbook::journal::read(&d.run_dir.join("journal.jsonl"))
        .expect("read journal")
        .0;
    // Resuming, the journal begins with the earlier sessions.
    let on_disk = &on_disk[on_disk.len().saturating_sub(d.records.len())..];
    assert_eq!(
        on_disk, d.records,
        "the journal on disk differs from the events sent to the front end"
    );
    d
}

/// Answers every wait by aborting (what headless does without a terminal).
pub fn abort_on_wait(u: &Update) -> Vec<Command> {
    match u {
        Update::Waiting { .. } => vec![Command::Abort {
            reason: Some("test".into()),
        }],
        _ => vec![],
    }
}

/// Whether `u` is the `step_started` of `phase/step`.
pub fn is_started(u: &Update, name: &str) -> bool {
    matches!(u, Update::Event(Record { event: Event::StepStarted { phase, step, .. }, .. })
        if format!("{phase}/{step}") == name)
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP server: it records every request and answers as told.

/// How the test server answers a request.
#[derive(Clone)]
pub enum Reply {
    /// Status, body.
    Fixed(u16, &'static str),
    /// Reads the request and never answers (holds the connection for a while).
    Hang,
    /// Status and body, after a while (a slow receiver).
    After(Duration, u16, &'static str),
}

/// One request as the test server read it, when it arrived.
#[derive(Debug, Clone)]
pub struct Req {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// A server on 127.0.0.1:0 that records every request as it arrives and answers it as told.
pub struct TestServer {
    pub port: u16,
    seen: Arc<Mutex<Vec<Req>>>,
}

impl TestServer {
    /// Fixed replies by exact path; 404 for anything else.
    pub fn start(routes: Vec<(&'static str, Reply)>) -> TestServer {
        TestServer::answering(move |path| {
            routes
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, r)| r.clone())
                .unwrap_or(Reply::Fixed(404, "not found"))
        })
    }

    /// Each request answered with `reply(its path)`.
    pub fn answering(reply: impl Fn(&str) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test server");
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Req>>> = Arc::default();
        let (s, reply) = (seen.clone(), Arc::new(reply));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (s, reply) = (s.clone(), reply.clone());
                std::thread::spawn(move || serve(conn, &s, &*reply));
            }
        });
        TestServer { port, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests so far whose path starts with `prefix`, in the order they arrived.
    pub fn requests(&self, prefix: &str) -> Vec<Req> {
        let all = self.seen.lock().unwrap();
        all.iter()
            .filter(|r| r.path.starts_with(prefix))
            .cloned()
            .collect()
    }
}

fn serve(conn: TcpStream, seen: &Mutex<Vec<Req>>, reply: &dyn Fn(&str) -> Reply) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone the connection"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    seen.lock().unwrap().push(Req {
        at: Instant::now(),
        method,
        path: path.clone(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let (status, text) = match reply(&path) {
        Reply::Hang => {
            std::thread::sleep(Duration::from_secs(10));
            return;
        }
        Reply::After(wait, status, text) => {
            std::thread::sleep(wait);
            (status, text)
        }
        Reply::Fixed(status, text) => (status, text),
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = conn.flush();
}

/// A local port nothing listens on right now (bound on :0, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
