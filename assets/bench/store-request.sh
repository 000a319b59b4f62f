#!/usr/bin/env bash
# What asking a run's driver costs, on its control socket (same host) and through the shared store
# (another host): wall time of `runbook note` against a driver that waits in a watch step, with a
# local PostgreSQL that this script starts (initdb in a temporary folder; as root, run as the
# system user runbook-pg). Through the store, each command connects, checks the schema, inserts
# its request, NOTIFYs the driver and waits (LISTEN) for the answer written in the row.
#
# Usage: assets/bench/store-request.sh [RUNS]    (default: 20 runs of each)
# Run from the repository root after `cargo build --release` (or BIN=target/debug/runbook).
# Needs hyperfine and Debian's postgresql package.
set -euo pipefail

RUNS=${1:-20}
BIN=$(realpath "${BIN:-target/release/runbook}")
[ -x "$BIN" ] || { echo "store-request.sh: $BIN is missing; run cargo build --release first" >&2; exit 2; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
command -v hyperfine >/dev/null || { echo "store-request.sh: needs hyperfine" >&2; exit 2; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/rb-bench-request-XXXXXX")
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
DRIVER=
stop() {
  [ -n "$DRIVER" ] && kill "$DRIVER" 2>/dev/null && wait "$DRIVER" 2>/dev/null
  (cd "$DIR/pg" && "${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg/data" -m immediate stop >/dev/null 2>&1) || true
  rm -rf "$DIR"
}
trap stop EXIT
(cd "$DIR/pg" && "${AS[@]}" "$PGBIN/initdb" -D "$DIR/pg/data" -A scram-sha-256 -U rb --pwfile="$DIR/pg/pw" >/dev/null)
(cd "$DIR/pg" && "${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/log" -w \
  -o "-p $PORT -k $DIR/pg/data -c listen_addresses=127.0.0.1" start >/dev/null)
PGPASSWORD=bench-pw "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U rb -d postgres -qc "CREATE DATABASE runbook"
STORE="postgres://rb:bench-pw@127.0.0.1:$PORT/runbook?sslmode=disable"

cat >"$DIR/wait.toml" <<'TOML'
[runbook]
title = "Waiting"
[[phase]]
title = "Soak"
[[phase.step]]
title = "Soak"
watch = "1h"
TOML

cd "$DIR"
"$BIN" run wait.toml --headless --state-dir "$DIR/state" --store "$STORE" >/dev/null 2>&1 </dev/null &
DRIVER=$!
for _ in $(seq 100); do
  RUN=$(ls "$DIR/state/runs" 2>/dev/null | head -1 || true)
  [ -n "$RUN" ] && [ "$(PGPASSWORD=bench-pw "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U rb -d runbook -At \
    -c "SELECT count(*) FROM leases WHERE expires_at > now()" 2>/dev/null || true)" = 1 ] && break
  sleep 0.1
done
[ -n "${RUN:-}" ] || { echo "store-request.sh: the driver did not start" >&2; exit 1; }

hyperfine --warmup 2 --runs "$RUNS" \
  -n "note on the control socket" "$BIN note $DIR/state/runs/$RUN 'bench' >/dev/null" \
  -n "note through the store" "$BIN note $RUN 'bench' --state-dir $DIR/elsewhere --store '$STORE' >/dev/null"
