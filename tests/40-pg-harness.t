#!/bin/bash
# Proves tests/lib/pg.sh (a throwaway PostgreSQL 15 cluster) and what the wipe
# runbook relies on: a real JupyterHub 3.0 on PostgreSQL creates its schema as
# the role `hub`, `DROP OWNED BY current_user` removes all of it, and the hub
# recreates it on its next start. The exact object list is asserted below.
. "$(dirname "$0")/lib/tap.sh"
. "$(dirname "$0")/lib/pg.sh"
. "$(dirname "$0")/lib/hub.sh"

[ -x "$PG_BIN/initdb" ] || skip_all "PostgreSQL 15 not installed (apt-get install postgresql)"
[ -x /usr/bin/jupyterhub ] || skip_all "jupyterhub not installed"
"$PY" -c 'import psycopg2' 2>/dev/null || skip_all "python3-psycopg2 not installed"

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
# Every relation, type and function in the hub's database outside the system
# schemas: "kind name owner", sorted (arrays and row types of tables included).
objects() {
  pg_psql_hub "
    SELECT c.relkind::text || ' ' || c.relname || ' ' || pg_get_userbyid(c.relowner) FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog','information_schema','pg_toast')
    UNION ALL
    SELECT 'type-' || t.typtype::text || ' ' || t.typname || ' ' || pg_get_userbyid(t.typowner) FROM pg_type t
      JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname NOT IN ('pg_catalog','information_schema','pg_toast')
    UNION ALL
    SELECT 'function ' || p.proname || ' ' || pg_get_userbyid(p.proowner) FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog','information_schema')
    ORDER BY 1" || echo "objects: query failed"
}

# ---------------------------------------------------------------- the cluster
t0=$(date +%s%N)
pg_start "$SCRATCH/pg" || { ok 1 "pg_start"; done_testing; exit 1; }
ok 0 "pg_start ($(ms_since "$t0") ms)"
check "the Unix socket is in PG_SOCKET_DIR" test -S "$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT"
is "$(pg_psql_super 'SELECT current_user')" postgres "superuser postgres over the socket (trust)"
is "$(pg_psql_super 'SHOW listen_addresses')" 127.0.0.1 "TCP on 127.0.0.1 only"
is "$(pg_psql_super 'SHOW server_version_num' | cut -c1-2)" 15 "PostgreSQL 15"
is "$(pg_psql_hub 'SELECT current_user || current_database()')" hubjupyterhub "role hub over TCP with its password"
is "$("$PY" -c 'import psycopg2, sys; c = psycopg2.connect(sys.argv[1]); print(c.get_dsn_parameters()["host"])' "$PG_HUB_URL")" \
  127.0.0.1 "PG_HUB_URL works with psycopg2 (what the hub uses)"
! PGPASSWORD=wrong "$PG_BIN/psql" "host=127.0.0.1 port=$PG_PORT user=hub dbname=jupyterhub" -c 'SELECT 1' >/dev/null 2>&1
ok $? "a wrong password is refused"
is "$(pg_psql_super "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'hub'")" 'SCRAM-SHA-256$' \
  "hub's password is stored as scram-sha-256"
like "$(grep -v '^#' "$PG_DIR/data/pg_hba.conf" | grep -E '^host')" 'scram-sha-256' "TCP connections need scram-sha-256"
is "$(pg_psql_super "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'jupyterhub'")" hub \
  "database jupyterhub is owned by hub"
is "$(pg_psql_super "SELECT rolsuper FROM pg_roles WHERE rolname = 'hub'")" f "hub is not a superuser"
is "$(objects)" "" "the new database holds no objects of its own"

# ---------------------------------------------------------------- JupyterHub on it
t0=$(date +%s%N)
hub_start "$SCRATCH/hub" --db-url "$PG_HUB_URL" || { ok 1 "hub on PostgreSQL"; done_testing; exit 1; }
ok 0 "a real JupyterHub starts on PG_HUB_URL ($(ms_since "$t0") ms)"
hub_seed "$SCRATCH/hub" --user alice,bob --created alice=-30d --activity bob=-3d --group g=alice
ok $? "seed users; backdate created through psycopg2"
like "$(hub_api GET /users/alice)" "\"created\": \"$(date -u -d '30 days ago' +%F)T" "alice was created 30 days ago"
is "$(pg_psql_hub "SELECT string_agg(name, ',' ORDER BY name) FROM users")" alice,bob "the users are rows in PostgreSQL"
cat >"$SCRATCH/spec.json" <<'EOF'
{"generate": [{"prefix": "db", "count": 100, "last_activity": "-200d", "created": "-300d", "via": "db"}],
 "admins": ["db0099"], "groups": {"bulk": ["db0000", "db0001"]}}
EOF
hub_seed "$SCRATCH/hub" --spec "$SCRATCH/spec.json"
ok $? "seed --spec: 100 users inserted in PostgreSQL, an admin, a group"
is "$(hub_count "$SCRATCH/hub")" 102 "...the hub counts them"
u=$(hub_api GET /users/db0099)
like "$u" "\"created\": \"$(date -u -d '300 days ago' +%F)T" "...created 300 days ago"
like "$u" "\"last_activity\": \"$(date -u -d '200 days ago' +%F)T" "...last active 200 days ago"
like "$u" '"admin": true' "...db0099 is admin"

# The hub's own objects, all owned by hub: what the wipe runbook must recognise.
EXPECTED="S api_tokens_id_seq hub
S groups_id_seq hub
S oauth_clients_id_seq hub
S oauth_codes_id_seq hub
S roles_id_seq hub
S servers_id_seq hub
S services_id_seq hub
S spawners_id_seq hub
S users_id_seq hub
i alembic_version_pkc hub
i ix_api_tokens_prefix hub
i pk_api_tokens hub
i pk_group_role_map hub
i pk_groups hub
i pk_oauth_clients hub
i pk_oauth_codes hub
i pk_roles hub
i pk_servers hub
i pk_service_role_map hub
i pk_services hub
i pk_spawners hub
i pk_user_group_map hub
i pk_user_role_map hub
i pk_users hub
i uq_api_tokens_hashed hub
i uq_groups_name hub
i uq_oauth_clients_identifier hub
i uq_roles_name hub
i uq_services_name hub
i uq_users_cookie_id hub
i uq_users_name hub"
TABLES="alembic_version api_tokens group_role_map groups oauth_clients oauth_codes roles servers service_role_map services spawners user_group_map user_role_map users"
for t in $TABLES; do EXPECTED+=$'\n'"r $t hub"; done
for t in $TABLES; do EXPECTED+=$'\n'"type-b _$t hub"$'\n'"type-c $t hub"; done
EXPECTED=$(printf '%s\n' "$EXPECTED" | LC_ALL=C sort)
got=$(objects | LC_ALL=C sort)
is "$got" "$EXPECTED" "hub 3.0 creates exactly 14 tables, 9 sequences, 22 indexes (+ row/array types), all owned by hub"
is "$(printf '%s\n' "$got" | grep -c '^function')" 0 "...and no functions"
is "$(pg_psql_hub 'SELECT version_num FROM alembic_version')" 651f5419b74d "alembic_version is 651f5419b74d (JupyterHub 3.0)"
is "$(pg_psql_hub "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'")" pg_database_owner \
  "schema public belongs to pg_database_owner (PostgreSQL 15), not to hub"

# ---------------------------------------------------------------- wipe and recreate
hub_stop "$SCRATCH/hub"
pg_psql_hub 'DROP OWNED BY current_user'
ok $? "DROP OWNED BY current_user as hub"
is "$(objects)" "" "...removes every object of the hub"
is "$(pg_psql_hub "SELECT count(*) FROM pg_namespace WHERE nspname = 'public'")" 1 "...and keeps schema public"
t0=$(date +%s%N)
hub_start "$SCRATCH/hub" --db-url "$PG_HUB_URL"
ok $? "the hub starts again on the wiped database ($(ms_since "$t0") ms)"
is "$(objects | LC_ALL=C sort)" "$EXPECTED" "...and recreates the same schema"
is "$(hub_count "$SCRATCH/hub")" 0 "...with no users"
hub_stop "$SCRATCH/hub"

# ---------------------------------------------------------------- stop
t0=$(date +%s%N)
pg_stop "$PG_DIR"
ok $? "pg_stop ($(ms_since "$t0") ms)"
! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; ok $? "nothing listens on PG_PORT any more"
check "no postmaster.pid left" test ! -e "$PG_DIR/data/postmaster.pid"
pg_stop "$PG_DIR"; ok $? "pg_stop twice is harmless"

done_testing
