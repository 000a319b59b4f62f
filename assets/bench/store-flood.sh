#!/usr/bin/env bash
# What the shared store costs a chatty step: wall time of a run whose one step is `seq 2000000`
# (2M lines, about 15 MB of log), without a store and with `--store` on a local PostgreSQL that
# this script starts (initdb in a temporary folder; as root, run as the system user runbook-pg).
#
# Usage: assets/bench/store-flood.sh [RUNS]      (default: 10 runs of each)
# Run from the repository root after `cargo build --release`. Needs hyperfine and Debian's
# postgresql package. The store's copy runs in the background: the run does not wait for it,
# except for at most 15 s at the very end to hand over what is left (measured here too).
set -euo pipefail

RUNS=${1:-10}
BIN=$(realpath "${BIN:-target/release/runbook}")
[ -x "$BIN" ] || { echo "store-flood.sh: $BIN is missing; run cargo build --release first" >&2; exit 2; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
command -v hyperfine >/dev/null || { echo "store-flood.sh: needs hyperfine" >&2; exit 2; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/rb-bench-store-XXXXXX")
chmod 711 "$DIR"
mkdir "$DIR/pg"
echo bench-pw >"$DIR/pg/pw"
AS=()
if [ "$(id -u)" = 0 ]; then
  id runbook-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin runbook-pg
  chown -R runbook-pg "$DIR/pg"
  AS=(runuser -u runbook-pg --)
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
stop() { (cd "$DIR/pg" && "${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg/data" -m immediate stop >/dev/null 2>&1) || true; rm -rf "$DIR"; }
trap stop EXIT
(cd "$DIR/pg" && "${AS[@]}" "$PGBIN/initdb" -D "$DIR/pg/data" -A scram-sha-256 -U rb --pwfile="$DIR/pg/pw" >/dev/null)
(cd "$DIR/pg" && "${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/log" -w \
  -o "-p $PORT -k $DIR/pg/data -c listen_addresses=127.0.0.1" start >/dev/null)
PGPASSWORD=bench-pw "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U rb -d postgres -qc "CREATE DATABASE runbook"
STORE="postgres://rb:bench-pw@127.0.0.1:$PORT/runbook?sslmode=disable"

cat >"$DIR/flood.toml" <<'TOML'
[runbook]
title = "Flood"
[[phase]]
title = "Flood"
[[phase.step]]
title = "Two million lines"
run = "seq 2000000"
TOML

cd "$DIR"
hyperfine --warmup 1 --runs "$RUNS" \
  -n "no store" "$BIN run flood.toml --headless --state-dir $DIR/state-local >/dev/null" \
  -n "with store (local PostgreSQL)" "$BIN run flood.toml --headless --state-dir $DIR/state-store --store '$STORE' >/dev/null"

# Everything of the last run is in the store.
last=$(ls "$DIR/state-store/runs" | sort | tail -1)
PGPASSWORD=bench-pw "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U rb -d runbook -At -c \
  "SELECT 'store has ' || sum(length(data)) || ' log bytes of ' || '$last' FROM log_chunks WHERE run_id = '$last'"
echo "local log: $(stat -c %s "$DIR/state-store/runs/$last"/logs/*.log) bytes"
