#!/usr/bin/env bash
# Start/stop the private PostgreSQL/PostGIS cluster and Redis used by `make demo` / `make test`.
# Skipped for a service whose URL is given in the environment (DATABASE_URL, REDIS_URL).
# Writes var/local.env, which gridmgmt/settings.py reads, so `manage.py` needs no environment: the URLs and the
# development values DEBUG=true and a generated SECRET_KEY (never use this file in production).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
VAR="$ROOT/var"
HASH=$(printf '%s' "$ROOT" | sha1sum | cut -c1-8)
# Unix sockets have a ~107-byte path limit, so they live in a short per-checkout directory.
SOCK="/tmp/gridmgmt-$HASH"
PGBIN=/usr/lib/postgresql/15/bin
ENVFILE="$VAR/local.env"
mkdir -p "$VAR"

# initdb refuses root, so the cluster runs as `postgres`; its data directory must be reachable by it.
pgdata_dir() {
  if runuser -u postgres -- test -x "$VAR" 2>/dev/null; then echo "$VAR/pgdata"; else echo "/var/lib/gridmgmt/$HASH/pgdata"; fi
}

pg_start() {
  local data; data=$(pgdata_dir)
  mkdir -p "$SOCK" && chown postgres:postgres "$SOCK" && chmod 0755 "$SOCK"
  if [ ! -s "$data/PG_VERSION" ]; then
    echo "==> initdb $data"
    mkdir -p "$data" && chown -R postgres:postgres "$(dirname "$data")" && chmod 0700 "$data"
    runuser -u postgres -- "$PGBIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >> "$data/postgresql.conf" <<CONF
# gridmgmt private development/test cluster (production: point DATABASE_URL at a real server)
listen_addresses = ''
unix_socket_directories = '$SOCK'
max_connections = 200
shared_buffers = 512MB
work_mem = 32MB
maintenance_work_mem = 256MB
jit = off                   # JIT compile time dominated small spatial joins
fsync = off                 # throw-away cluster: speed over durability
synchronous_commit = off
full_page_writes = off
timezone = 'Asia/Shanghai'
CONF
  fi
  if ! runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    echo "==> starting PostgreSQL (socket $SOCK)"
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -l "$data/../postgresql.log" -w -t 60 \
      -o "-k $SOCK" start >/dev/null
  fi
  local psql=(runuser -u postgres -- psql -h "$SOCK" -U postgres -d postgres -qtAX -v ON_ERROR_STOP=1)
  "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='gridmgmt'" | grep -q 1 ||
    "${psql[@]}" -c "CREATE ROLE gridmgmt LOGIN SUPERUSER"
  "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='gridmgmt'" | grep -q 1 ||
    "${psql[@]}" -c "CREATE DATABASE gridmgmt OWNER gridmgmt"
  runuser -u postgres -- psql -h "$SOCK" -U postgres -d gridmgmt -qtAX -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
  echo "DATABASE_URL=postgres://gridmgmt@$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$SOCK")/gridmgmt" >> "$ENVFILE.new"
}

pg_stop() {
  local data; data=$(pgdata_dir)
  if [ -s "$data/PG_VERSION" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    echo "==> stopping PostgreSQL"; runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  fi
}

redis_start() {
  mkdir -p "$VAR/redis" "$SOCK"
  if ! redis-cli -s "$SOCK/redis.sock" ping >/dev/null 2>&1; then
    echo "==> starting Redis (socket $SOCK/redis.sock)"
    redis-server --port 0 --unixsocket "$SOCK/redis.sock" --unixsocketperm 777 --daemonize yes \
      --pidfile "$VAR/redis/redis.pid" --dir "$VAR/redis" --logfile "$VAR/redis/redis.log" \
      --save "" --appendonly no --maxclients 10000
    for _ in $(seq 50); do redis-cli -s "$SOCK/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  echo "REDIS_URL=unix://$SOCK/redis.sock" >> "$ENVFILE.new"
}

redis_stop() {
  if redis-cli -s "$SOCK/redis.sock" ping >/dev/null 2>&1; then
    echo "==> stopping Redis"; redis-cli -s "$SOCK/redis.sock" shutdown nosave >/dev/null 2>&1 || true
  fi
}

# A hot standby of the private cluster for trying DATABASE_REPLICA_URL by hand (README, "Scale-out"):
# pg_basebackup -R into var/, its own socket directory. The tests make their own (tests/pgcluster.py).
replica_start() {
  local data; data="$(dirname "$(pgdata_dir)")/pgreplica"
  mkdir -p "$SOCK/replica" && chown postgres:postgres "$SOCK/replica"
  if [ ! -s "$data/PG_VERSION" ]; then
    echo "==> pg_basebackup -R into $data"
    runuser -u postgres -- "$PGBIN/pg_basebackup" -h "$SOCK" -U postgres -D "$data" -R -X stream -c fast --no-sync
    echo "unix_socket_directories = '$SOCK/replica'" >> "$data/postgresql.conf"
  fi
  if ! runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -l "$data/../postgresql-replica.log" -w -t 60 \
      -o "-k $SOCK/replica" start >/dev/null
  fi
  echo "DATABASE_REPLICA_URL=postgres://gridmgmt@$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1],safe=""))' "$SOCK/replica")/gridmgmt"
}

replica_stop() {
  local data; data="$(dirname "$(pgdata_dir)")/pgreplica"
  if [ -s "$data/PG_VERSION" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    echo "==> stopping the replica"; runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  fi
}

case "${1:-start}" in
  start)
    rm -f "$ENVFILE.new"; : > "$ENVFILE.new"
    # Development values (settings.py defaults to production): DEBUG on, and a random SECRET_KEY made once per
    # checkout and kept across runs (sessions survive a restart).
    key=$( (sed -n 's/^SECRET_KEY=//p' "$ENVFILE" 2>/dev/null || true) | tail -n 1)
    [ -n "$key" ] || key=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')
    printf 'DEBUG=true\nSECRET_KEY=%s\n' "$key" >> "$ENVFILE.new"
    if [ -z "${DATABASE_URL:-}" ]; then pg_start; fi
    if [ -z "${REDIS_URL:-}" ]; then redis_start; fi
    mv "$ENVFILE.new" "$ENVFILE"
    ;;
  stop)
    replica_stop; pg_stop; redis_stop ;;
  replica-start) replica_start ;;
  replica-stop) replica_stop ;;
  *) echo "usage: $0 start|stop|replica-start|replica-stop" >&2; exit 2 ;;
esac
