# Bash wrapper around tests/lib/hub.py (a real JupyterHub 3.0 for tests).
# Source after tap.sh:  . "$(dirname "$0")/lib/tap.sh"; . "$(dirname "$0")/lib/hub.sh"
#
#   hub_start DIR [--db-url URL] [--spawner-delay-users a,b] [--spawner-slow-stop-users c]
#             [--ops-scopes a,b,c]   (replaces the ops token's scopes, e.g. to drop read:hub)
#             [--kubespawner K8S_DIR [--kube-namespace hub] [--no-delete-pvc]
#              [--pvc-name-template T] [--storage-class C] [--storage-capacity 10Gi]
#              [--kube-token-file F] [--kubespawner-version 7.1.0|6.2.0]]
#             starts the hub, registers its stop with on_exit, sources DIR/env:
#             JUPYTERHUB_API_URL, JUPYTERHUB_TOKEN_FILE, HUB_PID, HUB_URL, HUB_DIR, HUB_LOG
#             Spawner: stock jupyterhub.spawner.SimpleLocalProcessSpawner; hubtest's SlowSpawner
#             with the --spawner-* options; with --kubespawner the KubeSpawner stand-in
#             (kubespawner.spawner.KubeSpawner: local servers + claims on the fake-k8s in
#             K8S_DIR, created at start, deleted by delete_forever when a user is deleted)
#   hub_seed DIR --claims a,b --claim-servers USER:SERVER --claim-size a=20Gi
#             claims as a first start would make them (needs --kubespawner), with
#             hubtest-marker.txt in each volume
#   hub_claim_name DIR USER [SERVER]          the stand-in's claim name (josé -> claim-jos-c3-a9)
#   hub_stop DIR | hub_restart DIR [--ops-scopes a,b,c]   (restart: same ports and tokens; the
#             ops token gets these scopes instead, from then on)
#   hub_seed DIR [hub.py seed options]        e.g. --generate u:500:-100d --admin u0001
#   hub_backdate_created DIR NAME=WHEN...     WHEN: ISO 8601 or -30d (restarts the hub)
#   hub_users DIR | hub_count DIR             all user names (every page) | how many
#   hub_api METHOD PATH [JSON]                body on stdout; 0 on 2xx (PATH after /hub/api)
#                                             HUB_API_ACCEPT=application/jupyterhub-pagination+json
#                                             hub_api GET '/users?offset=200' for pages
#   hub_api_status METHOD PATH [JSON]         prints only the HTTP status
#   hub_quote NAME                            NAME as a URL path segment (josé -> jos%C3%A9)
#   hub_fetch URL                             GET without a token: body, newline, status
# hub_api uses the `ops` token (the runbook's), read from the 0600 file; it never
# appears in a command line, the output or the environment. It uses curl when
# installed, else (or with HUB_HTTP=python) hub.py http.

HUB_PY="$TOP/tests/lib/hub.py"

hub_start() {
  local dir=$1; shift
  mkdir -p "$dir"
  # Registered before starting, so a hub that half-started is still stopped.
  on_exit "hub_stop '$dir'"
  "$PY" "$HUB_PY" start --dir "$dir" "$@" || return 1
  _hub_env "$dir"
}

# Exported, so that a runbook started by the test sees JUPYTERHUB_API_URL etc.
_hub_env() { set -a; . "$1/env"; set +a; }

hub_stop() { "$PY" "$HUB_PY" stop --dir "$1"; }

hub_restart() {
  local dir=$1; shift
  "$PY" "$HUB_PY" restart --dir "$dir" "$@" || return 1
  _hub_env "$dir"  # HUB_PID changed
}

# seed and backdate may restart the hub (same ports and token, new HUB_PID).
hub_seed() { local dir=$1; shift; "$PY" "$HUB_PY" seed --dir "$dir" "$@" && _hub_env "$dir"; }
hub_backdate_created() { local dir=$1; shift; "$PY" "$HUB_PY" backdate-created --dir "$dir" "$@" && _hub_env "$dir"; }
hub_users() { "$PY" "$HUB_PY" users --dir "$1"; }
hub_claim_name() { "$PY" "$HUB_PY" claim-name --dir "$@"; }
hub_count() { "$PY" "$HUB_PY" count --dir "$1"; }

hub_quote() {
  "$PY" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="@+"))' "$1"
}

# _hub_http METHOD PATH [JSON] -> the body, a newline, the HTTP status.
# With curl: the token goes in through a header file (curl -H @file) filled by
# the builtin printf, so it is never in an argv. Without curl (it is not in the
# Debian manifest) or with HUB_HTTP=python: hub.py http, which reads the file.
_hub_http() {
  local method=$1 path=$2 json=${3-} accept=${HUB_API_ACCEPT:-application/json}
  if [ "${HUB_HTTP:-}" = python ] || ! command -v curl >/dev/null; then
    "$PY" "$HUB_PY" http "$method" "$JUPYTERHUB_API_URL$path" --token-file "$JUPYTERHUB_TOKEN_FILE" \
      --accept "$accept" ${json:+--data "$json"}
    return
  fi
  local args=(-sS -X "$method" -H "Accept: $accept" -w '\n%{http_code}')
  [ -n "$json" ] && args+=(-H 'Content-Type: application/json' --data-binary "$json")
  # The <(...) must sit on curl's own command line: bash closes it after the
  # command that opened it, so it cannot be kept in the array.
  curl "${args[@]}" -H @<(printf 'Authorization: token %s\n' "$(<"$JUPYTERHUB_TOKEN_FILE")") \
    "$JUPYTERHUB_API_URL$path"
}

hub_api() {
  local out status
  out=$(_hub_http "$@") || return 2
  status=${out##*$'\n'}
  printf '%s\n' "${out%$'\n'*}"
  [ "${status:0:1}" = 2 ]
}

hub_api_status() {
  local out
  out=$(_hub_http "$@") || return 2
  printf '%s\n' "${out##*$'\n'}"
}

# hub_fetch URL: GET any URL without a token (the proxy, a user's server);
# prints the body, a newline, the status.
hub_fetch() { "$PY" "$HUB_PY" http GET "$1"; }
