# Sourced by the store's benchmarks: a local PostgreSQL of the script's own (Debian's postgresql
# package; initdb in a temporary folder, on a free port of 127.0.0.1; as root, run as the system
# user runbook-pg), stopped and removed when the script exits. Sets DIR (the scratch folder),
# PGBIN, STORE (its URL for --store) and the function `sql` (psql -At on the store's database).
set -euo pipefail

PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
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
stop_pg() { (cd "$DIR/pg" && "${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg/data" -m immediate stop >/dev/null 2>&1) || true; rm -rf "$DIR"; }
trap stop_pg EXIT
(cd "$DIR/pg" && "${AS[@]}" "$PGBIN/initdb" -D "$DIR/pg/data" -A scram-sha-256 -U rb --pwfile="$DIR/pg/pw" >/dev/null)
(cd "$DIR/pg" && "${AS[@]}" "$PGBIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/log" -w \
  -o "-p $PORT -k $DIR/pg/data -c listen_addresses=127.0.0.1" start >/dev/null)
PGPASSWORD=bench-pw "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U rb -d postgres -qc "CREATE DATABASE runbook"
STORE="postgres://rb:bench-pw@127.0.0.1:$PORT/runbook?sslmode=disable"
sql() { PGPASSWORD=bench-pw "$PGBIN/psql" -h 127.0.0.1 -p "$PORT" -U rb -d runbook -At -c "$1"; }
