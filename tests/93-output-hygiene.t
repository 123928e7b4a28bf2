#!/usr/bin/env bash
# Output hygiene (issue 16, items 6, 7, 12, 13), against a real JupyterHub 3.0, which keeps ESC, CR,
# LF and BEL in user names:
# - names with terminal controls (an OSC 52 clipboard write, a screen clear, "\rPlan: nothing",
#   "\nplan: nothing", BEL) are shown escaped in the plan, the apply lines and the report, on stdout and
#   stderr (no raw ESC, BEL or CR byte), and exact in --output json;
# - a server that echoes our request headers in a 401 or 500 body never gets the token printed, nor
#   into the journal or a plan;
# - a hub URL with user:password@ is refused (exit 2) and the password is shown nowhere;
# - insecure=true warns once, naming the host; a plain-http hub URL that is not loopback warns once
#   (through http_proxy, where the token really does travel in clear).
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/hub.sh"
command -v jupyterhub >/dev/null || skip_all "jupyterhub is not installed"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
export XDG_STATE_HOME="$SCRATCH/state"
H="$SCRATCH/hub"
hub_start "$H" >/dev/null 2>&1 || { ok 1 "hub starts"; done_testing; exit 1; }
export JUPYTERHUB_API_TOKEN=$(cat "$JUPYTERHUB_TOKEN_FILE")

# Names as the hub keeps them (it lowercases): an OSC 52 clipboard write, a screen clear, a CR that
# would overwrite the line, an LF that would start a line of its own, a BEL; and echo.me, whose
# DELETE the hostile proxy below answers with our own headers.
"$PY" - "$SCRATCH/spec.json" <<'PYEOF'
import json, sys
names = ["osc\x1b]52;c;agvsbg8\x07x", "cls\x1b[2jx", "cr\rplan: nothing", "lf\nplan: nothing", "bel\x07x",
         "echo.me"]
json.dump({"users": names, "last_activity": {n: "-200d" for n in names}}, open(sys.argv[1], "w"))
PYEOF
hub_seed "$H" --spec "$SCRATCH/spec.json" >/dev/null 2>&1
ok $? "hub seeded with users named with control characters"
hub_api GET /users > "$SCRATCH/users.json"
is "$("$PY" -c 'import json,sys; print(sum(any(c in u["name"] for c in "\x1b\r\n\x07") for u in json.load(open(sys.argv[1]))))' "$SCRATCH/users.json")" 5 \
  "the hub keeps ESC, CR, LF and BEL in 5 names"

# raw_controls TEXT: how many ESC, BEL and CR bytes it holds
raw_controls() { printf '%s' "$1" | LC_ALL=C tr -cd '\033\007\015' | wc -c; }

# --- item 6: the plan, as text ---
run_rb plan prune-dormant -p storage=unchecked -p days=90 -v
is "$RC" 0 "plan exits 0"
is "$(raw_controls "$OUT$ERR")" 0 "the text plan (stdout and stderr) holds no raw ESC, BEL or CR"
like "$OUT" 'osc\\x1b\]52;c;agvsbg8\\x07x' "  the OSC 52 name shows escaped (\\x1b ... \\x07)"
like "$OUT" 'cls\\x1b\[2jx' "  the screen-clear name shows escaped"
like "$OUT" 'cr\\rplan: nothing' "  the CR name shows escaped (\\r)"
like "$OUT" 'lf\\nplan: nothing' "  the LF name shows escaped (\\n), on its own line"
unlike "$OUT" '^plan: nothing' "  no line of the plan starts with what followed an LF in a name"

# --- exact in --output json ---
run_rb plan prune-dormant -p storage=unchecked -p days=90 --output json
is "$RC" 0 "plan --output json exits 0"
printf '%s' "$OUT" > "$SCRATCH/plan-out.json"
is "$("$PY" - "$SCRATCH/plan-out.json" "$SCRATCH/users.json" <<'PYEOF'
import json, sys
plan, users = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print(sorted(a["target"] for a in plan["actions"]) == sorted(u["name"] for u in users))
PYEOF
)" True "--output json carries the names exactly, as the hub has them"

# --- a hostile server: a proxy in front of the hub that echoes the request's headers ---
cat > "$SCRATCH/echo.py" <<'PYEOF'
import http.client, json, os, ssl, sys, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
d, upstream = sys.argv[1], urllib.parse.urlsplit(sys.argv[2])
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def reply(self, status, data, headers=()):
        self.send_response(status)
        for k, v in headers: self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        path = self.path
        if "://" in path:  # asked as a proxy (http_proxy): the token came through here
            with open(os.path.join(d, "proxied.log"), "a") as f: f.write(self.command + " " + path + "\n")
            u = urllib.parse.urlsplit(path)
            path = u.path + ("?" + u.query if u.query else "")
        try: mode = open(os.path.join(d, "mode")).read().strip()
        except OSError: mode = "forward"
        if mode == "echo401" or (mode == "echo500" and self.command == "DELETE" and "echo.me" in path):
            status = 401 if mode == "echo401" else 500
            said = "".join("%s: %s\n" % kv for kv in self.headers.items())
            return self.reply(status, json.dumps({"status": status, "message": "you sent:\n" + said}).encode(),
                              [("Content-Type", "application/json")])
        c = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
        h = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "proxy-connection")}
        c.request(self.command, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        self.reply(r.status, data, [(k, v) for k, v in r.getheaders()
                                    if k.lower() not in ("content-length", "transfer-encoding", "connection")])
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = any
class S(ThreadingHTTPServer):
    daemon_threads = True
    def handle_error(self, *a): pass
s = S(("127.0.0.1", 0), H)
if len(sys.argv) > 3:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
open(os.path.join(d, "port.tmp"), "w").write(str(s.server_address[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
s.serve_forever()
PYEOF
start_echo() {  # start_echo DIR [CERT KEY]: sets ECHO_PORT
  local dir=$1; shift
  mkdir -p "$dir"
  "$PY" "$SCRATCH/echo.py" "$dir" "${JUPYTERHUB_API_URL%%/hub/api*}" "$@" & on_exit "kill $!"
  for _ in $(seq 100); do [ -f "$dir/port" ] && break; sleep 0.05; done
  ECHO_PORT=$(cat "$dir/port")
}
E="$SCRATCH/echo"
start_echo "$E"
EHUB="http://127.0.0.1:$ECHO_PORT"

# --- item 7: the token echoed in a 401 body ---
echo echo401 > "$E/mode"
run_rb plan prune-dormant -p hub="$EHUB" -p storage=unchecked
is "$RC" 1 "a hub that answers 401: plan exits 1"
like "$ERR" 'Authorization: token \*\*\*' "  the message quotes the echoed headers, with the token as ***"
check "  the token appears nowhere in stdout or stderr" test "$(printf '%s%s' "$OUT" "$ERR" | grep -cF "$JUPYTERHUB_API_TOKEN")" = 0

# --- apply through the proxy: control-character names deleted, echo.me's DELETE echoes the token ---
echo forward > "$E/mode"
run_rb plan prune-dormant -p hub="$EHUB" -p storage=unchecked -p days=90 -o "$SCRATCH/plan.json"
is "$RC" 0 "plan through the proxy, saved"
echo echo500 > "$E/mode"
run_rb apply "$SCRATCH/plan.json" --yes
is "$RC" 1 "apply: one action failed, exit 1"
is "$(raw_controls "$OUT$ERR")" 0 "apply and its report (stdout and stderr) hold no raw ESC, BEL or CR"
like "$OUT" 'done +hub\.delete_user osc\\x1b\]52;c;agvsbg8\\x07x' "  the apply line of the OSC 52 name shows it escaped"
like "$OUT" 'hub\.delete_user lf\\nplan: nothing' "  the apply line of the LF name shows it escaped, on one line"
unlike "$OUT" '^plan: nothing' "  no line of apply or report starts with what followed an LF in a name"
like "$OUT" 'FAILED +hub\.delete_user echo\.me: .*HTTP 500' "  echo.me's delete failed with the echoing 500"
like "$OUT" '^Failed:' "  the report lists the failure"
like "$OUT$ERR" 'Authorization: token \*\*\*' "  the echoed headers show the token as ***"
check "  the token appears nowhere in stdout or stderr" test "$(printf '%s%s' "$OUT" "$ERR" | grep -cF "$JUPYTERHUB_API_TOKEN")" = 0
journal=$(ls "$XDG_STATE_HOME"/runbook/prune-dormant-*.journal | tail -n 1)
check "  the journal records the echoed message, with ***" grep -qF 'Authorization: token ***' "$journal"
check "  the journal does not hold the token" test "$(grep -cF "$JUPYTERHUB_API_TOKEN" "$journal")" = 0
check "  nor does the plan" test "$(grep -cF "$JUPYTERHUB_API_TOKEN" "$SCRATCH/plan.json")" = 0
is "$(hub_count "$H")" 1 "  the five users with control characters were deleted; echo.me is left"

# --- a hub URL with credentials ---
PW=hunter2-in-the-url
TEST_SECRETS+=("$PW")
run_rb plan prune-dormant -p hub="http://ops:$PW@127.0.0.1:$ECHO_PORT" -p storage=unchecked -o "$SCRATCH/pw-plan.json"
is "$RC" 2 "a hub URL with user:password@ is refused with exit 2"
like "$ERR" "token file" "  the message says to give the token in a token file"
check "  the password is in neither stdout nor stderr" test "$(printf '%s%s' "$OUT" "$ERR" | grep -cF "$PW")" = 0
check "  no plan was saved" test ! -e "$SCRATCH/pw-plan.json"

# --- item 13: a plain-http hub URL that is not loopback: the token travels in clear ---
echo forward > "$E/mode"
http_proxy="http://127.0.0.1:$ECHO_PORT" run_rb plan prune-dormant -p hub=http://hub.example.test -p storage=unchecked
is "$RC" 0 "plan of http://hub.example.test through http_proxy exits 0"
check "  (the token did go through the proxy)" test -s "$E/proxied.log"
is "$(printf '%s\n' "$ERR" | grep -c 'hub.example.test is plain http://')" 1 "  one warning that hub.example.test is plain http, for all its requests"
run_rb plan prune-dormant -p storage=unchecked
unlike "$ERR" "plain http://" "a loopback http:// hub (127.0.0.1) gives no such warning"

# --- item 12: insecure=true ---
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=hub.test -days 1 -keyout "$SCRATCH/key.pem" \
  -out "$SCRATCH/cert.pem" >/dev/null 2>&1
T="$SCRATCH/echo-tls"
start_echo "$T" "$SCRATCH/cert.pem" "$SCRATCH/key.pem"
run_rb plan prune-dormant -p hub="https://127.0.0.1:$ECHO_PORT" -p storage=unchecked -p insecure=true
is "$RC" 0 "plan of an https hub with a self-signed certificate and insecure=true exits 0"
is "$(printf '%s\n' "$ERR" | grep -c "TLS is NOT VERIFIED for 127.0.0.1:$ECHO_PORT")" 1 \
  "  one warning that TLS is not verified, naming the host, for all its requests"
run_rb plan prune-dormant -p hub="https://127.0.0.1:$ECHO_PORT" -p storage=unchecked
is "$RC" 1 "  (without insecure=true, the same plan fails verification)"

done_testing
