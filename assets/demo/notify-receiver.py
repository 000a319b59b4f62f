#!/usr/bin/env python3
"""The demo's notification receiver: stands in for Slack and the status page on 127.0.0.1.

    notify-receiver.py PORT LOG

Answers every request with 200 and appends it to LOG as one line: the time, the method, the path
and the body. Prints "ready" once it listens. It never outlives the process that started it
(with-receiver.sh): it exits as soon as its parent is gone.
"""
import http.server
import os
import sys
import threading
import time


def main():
    port, log = int(sys.argv[1]), sys.argv[2]
    parent = os.getppid()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def handle_one(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            line = "%s %s %s %s\n" % (time.strftime("%H:%M:%S"), self.command, self.path, " ".join(body.split()))
            with lock, open(log, "a", encoding="utf-8") as f:
                f.write(line)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_POST = do_PUT = do_PATCH = handle_one

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    while os.getppid() == parent:
        time.sleep(0.5)
    server.shutdown()


if __name__ == "__main__":
    main()
