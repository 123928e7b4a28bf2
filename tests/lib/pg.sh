# A throwaway PostgreSQL 15 cluster for tests. Source after tap.sh:
#   . "$(dirname "$0")/lib/tap.sh"; . "$(dirname "$0")/lib/pg.sh"
#
#   pg_start DIR   initdb + start (a few seconds); registers pg_stop with on_exit. Exports:
#     PG_DIR             DIR (data in DIR/data, log in DIR/postgres.log)
#     PG_SOCKET_DIR      DIR: the Unix socket is DIR/.s.PGSQL.$PG_PORT
#     PG_PORT            also listening on 127.0.0.1:$PG_PORT
#     PG_SUPER_CONNINFO  "host=DIR port=PORT user=postgres dbname=postgres" (socket, trust)
#     PG_HUB_PASSWORD    random password of role `hub` (scram-sha-256, TCP only)
#     PG_HUB_URL         postgresql://hub:PASSWORD@127.0.0.1:PORT/jupyterhub (db owned by hub)
#   pg_stop DIR              pg_ctl -m fast stop
#   pg_psql_super SQL        run SQL as postgres over the socket; unaligned, tuples only
#   pg_psql_hub SQL          run SQL as hub over TCP with the password (from the environment)
#
# The server cannot run as root: when root, it runs as the `postgres` user
# (Debian's package creates it), which must be able to reach DIR: pg_start gives
# other users search (x, not read) permission on DIR's parents where they lack it.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# _pg_as CMD...: run as the cluster's owner (postgres when we are root).
_pg_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Let the postgres user traverse to DIR (mktemp -d makes 0700 dirs).
_pg_reach() {
  local d
  d=$(dirname "$1")
  while [ "$d" != / ]; do
    _pg_as test -x "$d" || chmod o+x "$d" || return 1
    d=$(dirname "$d")
  done
}

pg_start() {
  local dir port pw
  mkdir -p "$1" && dir=$(cd "$1" && pwd) || return 1
  if [ "$(id -u)" -eq 0 ]; then
    _pg_reach "$dir" && chown postgres: "$dir" || return 1
  fi
  chmod 700 "$dir"
  on_exit "pg_stop '$dir'"  # before starting: a half-started server is stopped too
  # A throwaway cluster: no fsync (initdb --no-sync, fsync=off) makes it start in ~2 s.
  _pg_as "$PG_BIN/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C --no-sync \
    --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  port=$(free_port)
  _pg_as "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
    -o "-k '$dir' -p $port -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" \
    start >/dev/null || { cat "$dir/postgres.log" >&2; return 1; }
  export PG_DIR=$dir PG_SOCKET_DIR=$dir PG_PORT=$port
  export PG_SUPER_CONNINFO="host=$dir port=$port user=postgres dbname=postgres"
  pw=$(_pg_random)
  # The password goes in on stdin (printf is a builtin): never on a command line.
  printf '%s\n' "\\set pw $pw" "CREATE ROLE hub LOGIN PASSWORD :'pw';" "CREATE DATABASE jupyterhub OWNER hub;" \
    | "$PG_BIN/psql" "$PG_SUPER_CONNINFO" -X -q -v ON_ERROR_STOP=1 >/dev/null || return 1
  export PG_HUB_PASSWORD=$pw
  export PG_HUB_URL="postgresql://hub:$pw@127.0.0.1:$port/jupyterhub"
}

# 32 hex characters: nothing to URL-escape in PG_HUB_URL.
_pg_random() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

pg_stop() {
  [ -f "$1/data/postmaster.pid" ] || return 0
  _pg_as "$PG_BIN/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null
}

pg_psql_super() {
  "$PG_BIN/psql" "$PG_SUPER_CONNINFO" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"
}

pg_psql_hub() {
  PGPASSWORD=$PG_HUB_PASSWORD "$PG_BIN/psql" "host=127.0.0.1 port=$PG_PORT user=hub dbname=jupyterhub" \
    -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"
}
