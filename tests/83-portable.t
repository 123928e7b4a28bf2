#!/usr/bin/env bash
# make portable: runbook-portable has Lua 5.4, lua-cjson and libyaml linked in from their static
# archives and the runbooks embedded, so it links only libc and libm; libcurl, libpq and OpenSSL are
# opened when first used (src/dynlib.h), as in every build.
# Built here into a scratch directory (the tree is left alone), checked with readelf, ldd and nm,
# then run: where liblua and libyaml are hidden (bubblewrap) it still works and the normal build
# does not; it plans and applies against the kv test server and reads a kubeconfig (YAML).
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/testservers.sh"
unset MAKEFLAGS MFLAGS MAKELEVEL   # a make started by `make test` passes its jobserver down
unset RUNBOOK_PATH

BIN="$SCRATCH/runbook-portable"
make -s -C "$TOP" portable BUILD="$SCRATCH/build" PORTABLE="$BIN" >"$SCRATCH/build.log" 2>&1
ok $? "make portable (BUILD and PORTABLE in a scratch directory)" || sed 's/^/#   /' "$SCRATCH/build.log"
[ -x "$BIN" ] || { done_testing; exit 1; }

# --- what it needs at run time ---
needed=$(readelf -d "$BIN" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ' | sed 's/ $//')
diag "NEEDED: $needed"
extra=$(printf '%s\n' $needed | grep -Ev '^(libm\.so\.6|libc\.so\.6)$')
is "$extra" "" "it links only libm and libc (libcurl, libpq and OpenSSL are opened when first used)"
lddout=$(ldd "$BIN")
printf '%s\n' "$lddout" | sed 's/^/# ldd: /'
unlike "$lddout" "liblua" "ldd: no liblua"
unlike "$lddout" "libyaml" "ldd: no libyaml"
unlike "$lddout" "not found" "ldd: every library is found"
syms=$(nm --defined-only "$BIN" 2>/dev/null | awk '{print $3}')
for sym in luaL_newstate luaopen_cjson yaml_parser_initialize; do
  printf '%s\n' "$syms" | grep -qx "$sym"; ok $? "  $sym is defined in the binary"
done
like "$(ldd "$RUNBOOK" 2>/dev/null)" "liblua5\.4" "(the build under test links liblua dynamically)"

# --- it runs, and what it has ---
out=$(cd "$SCRATCH" && "$BIN" version 2>&1); rc=$?
is "$rc" 0 "runbook-portable version exits 0"
like "$out" "Lua +Lua 5\.4" "  Lua 5.4"; like "$out" "libyaml +0\.2" "  libyaml"
like "$out" "libcurl +[0-9]+\.[0-9]+" "  libcurl, opened at run time"; like "$out" "libpq +[0-9]+\.[0-9]+" "  libpq"
like "$out" "OpenSSL +OpenSSL 3" "  OpenSSL"
is "$(cd "$SCRATCH" && "$BIN" list 2>/dev/null | awk '{print $1}' | tr '\n' ' ')" \
   "$(cd "$TOP/runbooks" && ls | sed 's/\.lua$//' | tr '\n' ' ')" "runbook-portable list: every shipped runbook, embedded"
out=$("$BIN" show prune-dormant --output json 2>/dev/null)
like "$out" '"name":"prune-dormant"' "show --output json (cjson built in)"

# Hide liblua and libyaml: the portable binary still runs; the normal one cannot start.
if command -v bwrap >/dev/null && bwrap --ro-bind / / true 2>/dev/null; then
  hide=()
  for lib in /usr/lib/*/liblua5.4.so* /usr/lib/*/libyaml-0.so* /lib/*/liblua5.4.so* /lib/*/libyaml-0.so*; do
    [ -f "$lib" ] && [ ! -L "$lib" ] && hide+=(--ro-bind /dev/null "$lib")
  done
  ok $([ ${#hide[@]} -gt 0 ]; echo $?) "liblua and libyaml found to hide (${#hide[@]} files)"
  bwrap --ro-bind / / --dev /dev "${hide[@]}" "$RUNBOOK" version >/dev/null 2>&1
  ok $([ $? -ne 0 ]; echo $?) "  without them the build under test cannot start"
  out=$(bwrap --ro-bind / / --dev /dev --bind "$SCRATCH" "$SCRATCH" "${hide[@]}" "$BIN" list 2>&1)
  ok $? "  runbook-portable list works without them"
else
  ok 1 "bubblewrap can run here (tests/fake-k8s needs it too)"
fi

# --- real work: plan and apply against the kv server, a kubeconfig read with libyaml ---
kv_start "tmp-a=1,tmp-b=1,keep=1"
export RUNBOOK_PATH="$TOP/tests/runbooks"
out=$("$BIN" plan kv-prune --output json 2>/dev/null); rc=$?
is "$rc" 0 "runbook-portable plans kv-prune"
like "$out" '"target":"tmp-b"' "  the plan has its actions"
"$BIN" run kv-prune --yes --journal-dir "$SCRATCH/j" >/dev/null 2>&1
is "$?" 0 "runbook-portable run --yes applies it"
is "$(kv_keys)" "keep" "  the keys are gone"
unset RUNBOOK_PATH
cat > "$SCRATCH/kubeconfig" <<'YAML'
apiVersion: v1
kind: Config
current-context: portable
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
contexts:
- name: portable
  context: {cluster: c, namespace: hub-a}
users: []
YAML
cat > "$SCRATCH/kube.lua" <<'LUA'
local k8s = require "runbook.k8s"
local client = assert(k8s.connect{ kubeconfig = arg[1] })
print(client.context, client.server, client.namespace)
LUA
is "$("$BIN" exec "$SCRATCH/kube.lua" "$SCRATCH/kubeconfig" 2>&1)" "portable	https://127.0.0.1:6443	hub-a" \
   "runbook-portable reads a kubeconfig (YAML through the static libyaml)"

done_testing
