//! A network of the test's own: a database host and bastions, each in a network namespace
//! (`ip netns`, as root), joined by a veth pair each to a bridge in the database's namespace, on
//! a private /24 of the test's own. A bastion's link can be cut (`ip link set … down`, on the
//! database's side, as a partition in between would) and healed. `runbook` runs on a bastion as
//! `common::hosts` starts it (a host name of its own), inside that bastion's namespace. The
//! namespaces, their links and whatever still runs in them go when the `Network` is dropped, a
//! failing test included.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The bridge in the database's namespace (its address is the /24's `.1`).
const BRIDGE: &str = "br0";

pub struct Network {
    /// The database host's namespace.
    pub db: String,
    /// `10.X.Y`: the test's /24.
    net: String,
    /// The bastions: host name, namespace, address, the veth end on the database's side.
    hosts: Vec<Host>,
}

struct Host {
    name: String,
    netns: String,
    addr: String,
    link: String,
}

/// `ip ARGS`, which must succeed.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("`ip` runs (iproute2; .ci/run installs it)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Network {
    /// A database namespace and one namespace per bastion in `names`, linked and up.
    pub fn new(names: &[&str]) -> Network {
        assert!(
            nix::unistd::Uid::effective().is_root(),
            "network namespaces need root (CI runs the tests as root)"
        );
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("rbp{pid}-{n}");
        // A /24 of the test's own: nothing outside its namespaces sees it, but two tests never
        // share one either.
        let id = (pid.wrapping_mul(31).wrapping_add(n)) % 60_000;
        let net = format!("10.{}.{}", 100 + id / 250 % 150, id % 250);
        let mut network = Network {
            db: format!("{tag}-db"),
            net,
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &network.db]);
        let db = network.db.clone();
        ip(&["-n", &db, "link", "set", "lo", "up"]);
        ip(&["-n", &db, "link", "add", BRIDGE, "type", "bridge"]);
        let bridge_addr = format!("{}/24", network.db_addr());
        ip(&["-n", &db, "addr", "add", &bridge_addr, "dev", BRIDGE]);
        ip(&["-n", &db, "link", "set", BRIDGE, "up"]);
        for (i, name) in names.iter().enumerate() {
            let host = Host {
                name: name.to_string(),
                netns: format!("{tag}-h{i}"),
                addr: format!("{}.{}", network.net, 10 + i),
                link: format!("h{i}"),
            };
            // Recorded first: whatever fails below, Drop removes it.
            network.hosts.push(host);
            let host = network.hosts.last().unwrap();
            ip(&["netns", "add", &host.netns]);
            ip(&["-n", &host.netns, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                &db,
                "link",
                "add",
                &host.link,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &host.netns,
            ]);
            ip(&["-n", &db, "link", "set", &host.link, "master", BRIDGE]);
            ip(&["-n", &db, "link", "set", &host.link, "up"]);
            let addr = format!("{}/24", host.addr);
            ip(&["-n", &host.netns, "addr", "add", &addr, "dev", "eth0"]);
            ip(&["-n", &host.netns, "link", "set", "eth0", "up"]);
        }
        network
    }

    /// The database host's address.
    pub fn db_addr(&self) -> String {
        format!("{}.1", self.net)
    }

    fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name} in this network"))
    }

    /// Cuts `name` off the network: its link on the database's side goes down.
    pub fn cut(&self, name: &str) {
        ip(&["-n", &self.db, "link", "set", &self.host(name).link, "down"]);
    }

    /// Puts `name` back on the network.
    pub fn heal(&self, name: &str) {
        let host = self.host(name);
        ip(&["-n", &self.db, "link", "set", &host.link, "up"]);
        // Addresses that failed to resolve while cut off stay failed for a while ("No route to
        // host" at the next connect): both sides forget them, and ask afresh.
        ip(&["-n", &host.netns, "neigh", "flush", "all"]);
        ip(&["-n", &self.db, "neigh", "flush", "all"]);
    }

    /// `runbook ARGS` on `host` (`common::hosts`: its host name, its config), in its namespace.
    /// The process started is `runbook` itself (`ip netns exec`, `unshare` and the shell each
    /// exec the next), so the child's pid is runbook's.
    pub fn command(&self, host: &super::hosts::Host, args: &[&str]) -> Command {
        let inner = host.command(None, args);
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.host(&host.name).netns])
            .arg(inner.get_program())
            .args(inner.get_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = inner.get_current_dir() {
            c.current_dir(dir);
        }
        c
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let mut all: Vec<&str> = self.hosts.iter().map(|h| h.netns.as_str()).collect();
        all.push(&self.db);
        for ns in all {
            // Nothing started in a namespace outlives it (a `runbook` a failed test left behind).
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}
