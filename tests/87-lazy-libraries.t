#!/usr/bin/env bash
# libcurl, libpq and OpenSSL are opened on first use (src/dynlib.h), not at start-up: commands that
# make no request never load them, `version` loads them to report what it finds, and a library that
# is missing or too old ends the command with one message naming it and the package to install,
# before an apply has changed anything.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/testservers.sh"
unset RUNBOOK_PATH

# --- what the binary links, and what it loads when it needs it ---
needed=$(readelf -d "$RUNBOOK" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
diag "NEEDED: $needed"
unlike "$needed" "libcurl|libpq|libssl|libcrypto" "libcurl, libpq and OpenSSL are not linked"
run_rb version
is "$RC" 0 "version exits 0"
like "$OUT" "libcurl +$(curl-config --version | sed 's/^libcurl //')\$" "  libcurl's version, from the library loaded (curl-config agrees)"
pq=$(pg_config --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9]*\)\.\([0-9]*\).*/\1.\2/p')
like "$OUT" "libpq +${pq:-[0-9]+\.[0-9]+}" "  libpq's (pg_config says ${pq:-nothing})"
like "$OUT" "OpenSSL +OpenSSL 3" "  OpenSSL's"

# --- hidden (bubblewrap binds an empty file over each) ---
if ! { command -v bwrap >/dev/null && bwrap --ro-bind / / true 2>/dev/null; }; then
  ok 1 "bubblewrap can run here (tests/fake-k8s needs it too)"; done_testing; exit
fi
hide_files() {  # hide_files GLOB...: bwrap arguments binding an empty file over each library file
  local lib
  for lib in "$@"; do [ -f "$lib" ] && [ ! -L "$lib" ] && printf -- '--ro-bind\n/dev/null\n%s\n' "$lib"; done
}
mapfile -t hide_all < <(hide_files /usr/lib/*/libcurl.so.4* /usr/lib/*/libpq.so.5* /usr/lib/*/libcrypto.so.3* /usr/lib/*/libssl.so.3*)
mapfile -t hide_net < <(hide_files /usr/lib/*/libcurl.so.4* /usr/lib/*/libpq.so.5*)
ok $([ ${#hide_all[@]} -ge 12 ]; echo $?) "libcurl, libpq, libssl and libcrypto found to hide ($((${#hide_all[@]} / 3)) files)"
hide=("${hide_all[@]}")
hidden() {  # hidden ARGS...: runbook ARGS without the libraries in $hide; sets OUT, ERR, RC
  local o e
  o=$(mktemp); e=$(mktemp)
  bwrap --ro-bind / / --dev /dev --bind "$SCRATCH" "$SCRATCH" --bind /tmp /tmp "${hide[@]}" \
    "$RUNBOOK" "$@" >"$o" 2>"$e" </dev/null; RC=$?
  OUT=$(cat "$o"); ERR=$(cat "$e"); rm -f "$o" "$e"
}

hidden list
is "$RC" 0 "list works without them"
is "$(printf '%s\n' "$OUT" | awk '{print $1}' | tr '\n' ' ')" "$(cd "$TOP/runbooks" && ls | sed 's/\.lua$//' | tr '\n' ' ')" \
   "  and lists every runbook"
hidden show wipe-hub-db
is "$RC" 1 "show, which prints the runbook's SHA-256, needs OpenSSL: exits 1"
like "$ERR" "^runbook: cannot load libcrypto\.so\.3.*apt-get install libssl3" "  naming libcrypto and its package"
hidden --help
is "$RC" 0 "--help works without them"

hidden version
is "$RC" 1 "version without them exits 1"
like "$OUT" "libcurl +\(cannot be loaded\)" "  libcurl: cannot be loaded"
like "$OUT" "libpq +\(cannot be loaded\)" "  libpq: cannot be loaded"
like "$OUT" "Lua +Lua 5\.4" "  the rest is still reported"
like "$ERR" "cannot load libcurl\.so\.4.*apt-get install libcurl4" "  stderr names libcurl and the package to install"
like "$ERR" "cannot load libpq\.so\.5.*apt-get install libpq5" "  and libpq"
unlike "$ERR" "internal error|traceback|stack" "  no internal error, no traceback"
hidden version --output json
is "$RC" 1 "version --output json without them exits 1"
is "$(printf '%s' "$OUT" | "$PY" -c 'import json,sys; d=json.load(sys.stdin); print(sorted(d))')" \
   "['libyaml', 'lua', 'runbook']" "  its object leaves out the three it could not load"

# Without libcurl and libpq only (a plan's checksum needs OpenSSL first).
hide=("${hide_net[@]}")
# A plan made with the libraries, applied without them: stopped before the confirmation, no journal.
kv_start "tmp-a=1,keep=1"
export RUNBOOK_PATH="$TOP/tests/runbooks"
run_rb plan kv-prune -o "$SCRATCH/kv.plan" -q
is "$RC" 0 "a plan made with the libraries"
hidden apply "$SCRATCH/kv.plan" --yes --journal-dir "$SCRATCH/journals"
is "$RC" 1 "applying it without them exits 1"
is "$(printf '%s\n' "$ERR" | grep -c .)" 1 "  with one line on stderr"
like "$ERR" "^runbook: cannot load libcurl\.so\.4.*apt-get install libcurl4" "  naming libcurl and its package"
is "$(ls "$SCRATCH/journals" 2>/dev/null | wc -l)" 0 "  before any journal was written"
is "$(kv_keys)" "keep tmp-a" "  and nothing was changed"
# An apply killed after its journal's first line, resumed without them: stopped, journal untouched.
{ (RUNBOOK_CRASH_AT=journal:1 exec "$RUNBOOK" apply "$SCRATCH/kv.plan" --yes --journal-dir "$SCRATCH/killed" \
  >/dev/null 2>&1); } 2>/dev/null
journal=$(ls "$SCRATCH"/killed/*.journal 2>/dev/null | head -1)
ok $([ -n "$journal" ]; echo $?) "an apply killed after the journal's first line left its journal"
before=$(cksum < "$journal")
hidden resume "$journal" --yes
is "$RC" 1 "resuming it without them exits 1"
like "$ERR" "^runbook: cannot load libcurl\.so\.4.*apt-get install libcurl4" "  naming libcurl"
is "$(cksum < "$journal")" "$before" "  the journal is untouched"
is "$(kv_keys)" "keep tmp-a" "  and nothing was changed"
run_rb resume "$journal" --yes
is "$RC" 0 "with them back, resume finishes it"
is "$(kv_keys)" "keep" "  the key is gone"
hidden plan kv-prune
is "$RC" 1 "plan without libcurl exits 1"
like "$ERR" "cannot load libcurl\.so\.4" "  naming it"
unset RUNBOOK_PATH

cat > "$SCRATCH/pg.lua" <<'LUA'
local pg = require "runbook.pg"
local conn, err = pg.connect("host=127.0.0.1 port=1 dbname=x")
print(conn, err)
LUA
hidden exec "$SCRATCH/pg.lua"
is "$RC" 0 "pg.connect without libpq returns an error the script can handle"
like "$ERR" "^nil	.*cannot load libpq\.so\.5.*apt-get install libpq5" "  naming libpq and its package"
mapfile -t hide < <(hide_files /usr/lib/*/libcrypto.so.3*)
hidden exec "$SCRATCH/pg.lua"
like "$ERR" "cannot load libpq\.so\.5 \(libcrypto\.so\.3: .*apt-get install libpq5" \
     "  without OpenSSL, the error names libpq and the dependency it lacks"

# --- too old: a libpq.so.5 that has only some of the functions runbook calls ---
mkdir -p "$SCRATCH/oldlib"
printf 'int PQlibVersion(void) { return 90600; }\n' > "$SCRATCH/oldlib/pq.c"
cc -shared -fPIC -Wl,-soname,libpq.so.5 -o "$SCRATCH/oldlib/libpq.so.5" "$SCRATCH/oldlib/pq.c"
ok $? "a stand-in libpq.so.5 with PQlibVersion alone"
out=$(LD_LIBRARY_PATH="$SCRATCH/oldlib" "$RUNBOOK" exec "$SCRATCH/pg.lua" 2>&1)
like "$out" "libpq\.so\.5 has no PQ[A-Za-z]+: it is older than runbook needs; install a newer libpq5" \
     "pg.connect names the missing function and what to install"
out=$(LD_LIBRARY_PATH="$SCRATCH/oldlib" "$RUNBOOK" version 2>&1); rc=$?
is "$rc" 1 "version with it exits 1"
like "$out" "libpq +\(cannot be loaded\)" "  and does not report its version as usable"

done_testing
