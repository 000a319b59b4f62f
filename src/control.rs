//! What is said on a run's control socket (`RUN_DIR/control.sock`): JSON lines, one request and one
//! response per connection.
//!
//! ```text
//! → {"op":"hello"}
//! ← {"ok":true,"message":"alice@bastion drives this run (pid 4242)","driver":{...}}
//! → {"op":"note","text":"db looks fine from here"}
//! → {"op":"approve","step":"app-deploy/canary"}        (or just the step id: "canary")
//! → {"op":"takeover","reason":"alice's shift ended"}
//! ← {"ok":false,"error":"you drive this run: ..."}
//! ```
//!
//! Who asks is never a field of the request: the driver reads the peer's Unix user from the
//! socket (SO_PEERCRED) and describes where the request came from (`Origin`) from `/proc`. The
//! same protocol is meant to travel over the shared store later: nothing in it is local but the
//! origin's pid and tty.

use serde::{Deserialize, Serialize};

/// The longest request line the driver reads.
pub const MAX_REQUEST: usize = 64 * 1024;

/// A request to the driver of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Who drives the run, and what waits for an approval.
    Hello,
    /// A note for the journal, recorded with the asker's name.
    Note { text: String },
    /// Approve a step that waits for approvals: its id, or `phase/step`.
    Approve { step: String },
    /// Ask the driver to hand the run over to the asker.
    Takeover { reason: String },
}

impl Request {
    pub fn op(&self) -> &'static str {
        match self {
            Request::Hello => "hello",
            Request::Note { .. } => "note",
            Request::Approve { .. } => "approve",
            Request::Takeover { .. } => "takeover",
        }
    }
}

/// The driver's answer: `{"ok":true,"message":...}` or `{"ok":false,"error":...}`, each fit to
/// show a user as it is. `hello` also carries `driver`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverInfo>,
}

impl Response {
    pub fn ok(message: impl Into<String>) -> Response {
        Response {
            ok: true,
            message: Some(message.into()),
            ..Default::default()
        }
    }

    pub fn refused(error: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(error.into()),
            ..Default::default()
        }
    }

    /// What to show the user: the message, or the error.
    pub fn text(&self) -> &str {
        self.message.as_deref().or(self.error.as_deref()).unwrap_or("")
    }
}

/// Who drives a run, and what it waits for (the answer to `hello`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DriverInfo {
    pub operator: String,
    pub host: String,
    pub pid: u32,
    /// The runbook's id and title.
    pub runbook: String,
    pub title: String,
    /// "run", "rehearse" or "resume".
    pub mode: String,
    /// Steps waiting for approvals now (at most one today: steps run one at a time).
    #[serde(default)]
    pub waiting: Vec<ApprovalWaiting>,
    /// A hand-over the driver's operator is being asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takeover_asked_by: Option<String>,
}

/// A step that waits for approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ApprovalWaiting {
    /// `phase/step`.
    pub step: String,
    pub title: String,
    pub rollback: bool,
    /// How many approvals it needs in all.
    pub needed: u32,
    /// Who approved it so far.
    pub given: Vec<String>,
    /// Who may approve it: the step's `approvers` without the driver's user (and those who already
    /// did); `None`: any operator but the driver.
    pub may_approve: Option<Vec<String>>,
}

impl ApprovalWaiting {
    /// How many more approvals it waits for.
    pub fn missing(&self) -> u32 {
        self.needed.saturating_sub(self.given.len() as u32)
    }

    /// "waiting for 1 approval (alice, bob may approve)", as the driver's screen shows it.
    pub fn describe(&self) -> String {
        let n = self.missing();
        let plural = if n == 1 { "" } else { "s" };
        let who = match &self.may_approve {
            None => "any operator but the driver may approve".to_string(),
            Some(list) if list.is_empty() => "nobody left who may approve".to_string(),
            Some(list) => format!("{} may approve", list.join(", ")),
        };
        let given = if self.given.is_empty() {
            String::new()
        } else {
            format!("; approved by {}", self.given.join(", "))
        };
        format!("waiting for {n} approval{plural} ({who}){given}")
    }
}

/// Who sent a request, as the kernel and `/proc` tell the driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Peer {
    pub uid: u32,
    /// The Unix user's name (`uid<N>` when it has none).
    pub user: String,
    pub origin: Origin,
}

/// Where a request came from: the asking process, its terminal, its SSH connection. What the
/// driver cannot read (another user's environment) is left out, never guessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Origin {
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// `pts/3`: the controlling terminal of the asking process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<String>,
    /// The asking process's `SSH_CONNECTION` ("client-ip client-port server-ip server-port"), when
    /// the driver may read its environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
    /// The request came through the shared store (another host): the store role that asked,
    /// the one thing the store vouches for. `host` and the user are what the asker reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_role: Option<String>,
}

impl Origin {
    /// Masks secrets in its texts (the journal's last line of defence; every field named).
    pub fn mask(&mut self, m: &impl Fn(&mut String), mo: &impl Fn(&mut Option<String>)) {
        let Origin {
            host,
            pid: _,
            tty,
            ssh,
            store_role,
        } = self;
        m(host);
        mo(tty);
        mo(ssh);
        mo(store_role);
    }

    /// "pts/3 on bastion, pid 4242, ssh from 10.0.0.7".
    pub fn describe(&self) -> String {
        let mut s = match &self.tty {
            Some(t) => format!("{t} on {}", self.host),
            None => self.host.clone(),
        };
        if let Some(pid) = self.pid {
            s.push_str(&format!(", pid {pid}"));
        }
        if let Some(ssh) = &self.ssh
            && let Some(ip) = ssh.split_whitespace().next()
        {
            s.push_str(&format!(", ssh from {ip}"));
        }
        if let Some(role) = &self.store_role {
            s.push_str(&format!(", via the shared store as role {role}"));
        }
        s
    }
}

/// A request as the engine receives it: who asked (from the kernel), what, and where the answer
/// goes. The engine answers every one exactly once (an unanswered one is refused when dropped).
#[derive(Debug, Clone)]
pub struct Asked {
    pub peer: Peer,
    pub request: Request,
    pub reply: Reply,
}

/// Where the answer to a request goes. Cloneable (commands are), answered once.
#[derive(Clone)]
pub struct Reply(std::sync::Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<Response>>>>);

impl Reply {
    pub fn new() -> (Reply, tokio::sync::oneshot::Receiver<Response>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Reply(std::sync::Arc::new(std::sync::Mutex::new(Some(tx)))), rx)
    }

    /// Sends the answer (the first one counts).
    pub fn send(&self, response: Response) {
        if let Some(tx) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(response);
        }
    }

    /// The asker hung up (or was answered already): nobody waits for an answer.
    pub fn is_closed(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(|tx| tx.is_closed())
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reply")
    }
}

impl PartialEq for Asked {
    fn eq(&self, other: &Asked) -> bool {
        self.peer == other.peer
            && self.request == other.request
            && std::sync::Arc::ptr_eq(&self.reply.0, &other.reply.0)
    }
}

/// Where a process is: this host, its controlling terminal (from `/proc/PID/stat`, readable by
/// everyone) and its `SSH_CONNECTION` (from `/proc/PID/environ`, readable only by its own user
/// and root: left out otherwise).
pub fn origin(pid: Option<u32>) -> Origin {
    let mut o = Origin {
        host: crate::identity::host(),
        pid,
        ..Default::default()
    };
    let Some(pid) = pid else { return o };
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        && let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..])
        && let Some(tty_nr) = rest.split_whitespace().nth(4).and_then(|f| f.parse::<u32>().ok())
    {
        o.tty = tty_name(tty_nr);
    }
    if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
        o.ssh = env
            .split(|&b| b == 0)
            .find_map(|kv| kv.strip_prefix(b"SSH_CONNECTION="))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .filter(|v| !v.is_empty());
    }
    o
}

/// A terminal's name from its device number (`tty_nr` in `/proc/PID/stat`); `None` for none.
fn tty_name(tty_nr: u32) -> Option<String> {
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some(match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => format!("tty {major}:{minor}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminals_are_named_from_their_device_numbers() {
        assert_eq!(tty_name(0), None);
        assert_eq!(tty_name((136 << 8) | 3).as_deref(), Some("pts/3"));
        assert_eq!(tty_name((137 << 8) | 1).as_deref(), Some("pts/257"));
        assert_eq!(tty_name((4 << 8) | 2).as_deref(), Some("tty2"));
    }

    #[test]
    fn this_process_has_an_origin() {
        let o = origin(Some(std::process::id()));
        assert_eq!(o.pid, Some(std::process::id()));
        assert!(!o.host.is_empty());
    }

    #[test]
    fn requests_are_tagged_by_op() {
        let r: Request = serde_json::from_str(r#"{"op":"approve","step":"deploy/canary"}"#).unwrap();
        assert_eq!(
            r,
            Request::Approve {
                step: "deploy/canary".into()
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::Hello).unwrap(),
            r#"{"op":"hello"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"approve","step":"x","as":"root"}"#).is_ok());
        assert!(serde_json::from_str::<Request>(r#"{"op":"drop_tables"}"#).is_err());
    }

    #[test]
    fn responses_carry_a_message_or_an_error() {
        let ok = serde_json::to_string(&Response::ok("approved")).unwrap();
        assert_eq!(ok, r#"{"ok":true,"message":"approved"}"#);
        let no = serde_json::to_string(&Response::refused("not you")).unwrap();
        assert_eq!(no, r#"{"ok":false,"error":"not you"}"#);
    }

    #[test]
    fn a_waiting_step_says_who_may_approve() {
        let w = ApprovalWaiting {
            step: "deploy/canary".into(),
            needed: 1,
            may_approve: Some(vec!["alice".into(), "bob".into()]),
            ..Default::default()
        };
        assert_eq!(w.describe(), "waiting for 1 approval (alice, bob may approve)");
        let w = ApprovalWaiting {
            needed: 2,
            given: vec!["carol".into()],
            ..w
        };
        assert_eq!(
            w.describe(),
            "waiting for 1 approval (alice, bob may approve); approved by carol"
        );
    }
}
