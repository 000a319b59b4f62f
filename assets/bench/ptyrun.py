"""A program in a pseudo-terminal, for the terminal UI benchmarks (tui.py, resume.py).

`Pty(argv)` forks the program into a new session on a pty of COLS x ROWS (set on the slave before
exec, so the program never sees another size), with TERM=xterm-256color LANG=C.UTF-8. A thread reads
everything the program writes and keeps it with the time each chunk arrived, so that a figure can
be taken after the fact ("when did this text first appear?"). `close()` kills the process group.

`TmuxServer(prefix)` is a tmux server on a socket of its own, for the figures read off a real
terminal (attach.py, tui.py); `close()` kills it and removes its socket file.

Standard library only. Linux only (/proc).
"""
import bisect, fcntl, os, pty, re, signal, struct, subprocess, termios, threading, time

COLS, ROWS = 120, 36
CLK_TCK = os.sysconf("SC_CLK_TCK")
BSU = b"\x1b[?2026h"   # BeginSynchronizedUpdate: one per frame the UI draws
ESU = b"\x1b[?2026l"
# Between two visible characters of a text, the UI may put escape sequences (colours, a cursor move
# over a cell that did not change) and leave out unchanged spaces.
_GAP = rb"(?:\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-B]| )*"


def text_pattern(text):
    """A regex over raw terminal output matching `text`, escape sequences and skipped spaces allowed
    between its characters."""
    chars = [re.escape(c.encode()) for c in text if c != " "]
    return re.compile(_GAP.join(chars))


class Pty:
    def __init__(self, argv, cwd=None, env=None, cols=COLS, rows=ROWS):
        self.chunks = []            # (perf_counter, end offset in self.buf)
        self.buf = bytearray()
        self.cond = threading.Condition()
        self.eof = False
        e = dict(os.environ)
        e.update({"TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
        e.pop("NO_COLOR", None)
        if env:
            e.update(env)
        self.t_spawn = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                if cwd:
                    os.chdir(cwd)
                os.execvpe(argv[0], argv, e)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.status = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except OSError:
                data = b""
            now = time.perf_counter()
            with self.cond:
                if not data:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.buf += data
                self.chunks.append((now, len(self.buf)))
                self.cond.notify_all()

    # ── what was written ──────────────────────────────────────────────────────────────────────
    def size(self):
        with self.cond:
            return len(self.buf)

    def time_of(self, offset):
        """When the byte at `offset` (exclusive end) arrived."""
        with self.cond:
            ends = [c[1] for c in self.chunks]
            i = bisect.bisect_left(ends, offset)
            return self.chunks[min(i, len(self.chunks) - 1)][0]

    def wait_for(self, pattern, start=0, timeout=10.0):
        """Waits until `pattern` (bytes regex) matches output at or after `start`; returns
        (arrival time of the chunk that completed the match, end offset), or None on timeout/EOF."""
        if isinstance(pattern, (bytes, str)):
            pattern = re.compile(re.escape(pattern if isinstance(pattern, bytes) else pattern.encode()))
        deadline = time.perf_counter() + timeout
        scanned = start
        with self.cond:
            while True:
                # Re-scan from a little before what was already seen: a match may straddle chunks.
                lo = max(start, scanned - 4096)
                m = pattern.search(self.buf, lo)
                if m and m.start() >= start:
                    end = m.end()
                    ends = [c[1] for c in self.chunks]
                    i = bisect.bisect_left(ends, end)
                    return self.chunks[i][0], end
                scanned = len(self.buf)
                left = deadline - time.perf_counter()
                if left <= 0 or self.eof:
                    return None
                self.cond.wait(min(left, 0.05))

    def hangup(self):
        """The terminal goes away: closes the master side (the kernel hangs the session up)."""
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.fd = -1

    def write(self, data):
        os.write(self.fd, data)

    # ── the process ───────────────────────────────────────────────────────────────────────────
    def cpu_ticks(self):
        """utime + stime of the process (all its threads), in clock ticks."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def cpu_ns(self):
        """CPU time of the live threads in ns (schedstat), finer than clock ticks."""
        total = 0
        for t in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass
        return total

    def status_kib(self, field):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return None

    def alive(self):
        if self.status is not None:
            return False
        pid, st = os.waitpid(self.pid, os.WNOHANG)
        if pid:
            self.status = st
            return False
        return True

    def wait_exit(self, timeout=10.0):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if not self.alive():
                return self.status
            time.sleep(0.02)
        return None

    def close(self, grace=2.0):
        """Ends the program: SIGTERM (it interrupts its step and leaves), then SIGKILL to every
        process still in its session (the program, its process group, and the process groups of
        the steps it started), and reaps it. Idempotent."""
        if getattr(self, "closed", False):
            return
        self.closed = True
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.wait_exit(grace)
        for pid in session_members(self.pid) | ({self.pid} if self.alive() else set()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.wait_exit(5)
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
        self.reader.join(2)


def session_members(sid):
    """Processes whose session is `sid` (pty.fork makes the child a session leader)."""
    out = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            out.add(int(d))
    return out


def count_frames(buf, start=0, end=None):
    return buf.count(BSU, start, len(buf) if end is None else end)


def provenance(binary):
    """Which build is measured: HEAD, the binary's time, and whether src/ changed after it."""
    import subprocess, time as _t
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        head, dirty = "?", ""
    built = os.path.getmtime(binary)
    newest = max((os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk("src") for f in fs), default=0)
    return (f"HEAD {head or '?'}{' (src/ modified)' if dirty else ''}; binary built "
            f"{_t.strftime('%H:%M:%S', _t.localtime(built))}"
            f"{'; WARNING: src/ is newer than the binary, run cargo build --release' if newest > built else ''}")


class TmuxServer:
    """A tmux server on its own socket (`tmux -L NAME -f /dev/null`): nothing of the user's tmux is
    read or touched. Nothing runs on it until a session is made with `tmux("new-session", ...)`."""

    def __init__(self, prefix):
        self.sock = f"{prefix}-{os.getpid()}-{time.monotonic_ns()}"

    def tmux(self, *args, check=False):
        """`tmux ARGS` on this server; its stdout (with check=True, a failure raises)."""
        return subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", *args], check=check,
                              capture_output=True, text=True).stdout

    def screen(self):
        """The visible screen of the current pane, as text."""
        return self.tmux("capture-pane", "-p")

    def close(self):
        """Kills the server and removes its socket file (kill-server can leave it behind)."""
        self.tmux("kill-server")
        try:
            os.unlink(os.path.join(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}", self.sock))
        except OSError:
            pass
