# Small local servers for tests (stopped at exit): the key-value server (kv_*), the HTTP fault proxy
# (fault_*) and a throwaway certificate authority (make_ca).
# Starts tests/lib/kvserver.py for a test; stopped at exit. Sets KV_URL and KV_DIR.
kv_start() {  # kv_start KEYS (k=v,k=v)
  KV_DIR=$(mktemp -d "$SCRATCH/kv.XXXX")
  "$PY" "$TOP/tests/lib/kvserver.py" --dir "$KV_DIR" --keys "$1" &
  local pid=$!
  on_exit "kill $pid"
  local i
  for i in $(seq 100); do [ -f "$KV_DIR/port" ] && break; sleep 0.05; done
  KV_URL="http://127.0.0.1:$(cat "$KV_DIR/port")"
  export KV_URL
}
kv_get() { curl -s "$KV_URL/keys/$1"; }
kv_keys() { curl -s "$KV_URL/keys" | "$PY" -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["keys"])))'; }
kv_put() { curl -s -X PUT -d "{\"value\":\"$2\"}" "$KV_URL/keys/$1" >/dev/null; }
kv_count() { grep -c -E "$1" "$KV_DIR/requests.log" 2>/dev/null || true; }  # kv_count REGEX

# Starts tests/lib/httpfault.py in front of UPSTREAM; sets FAULT_URL and FAULT_DIR. Stopped at exit.
fault_start() {  # fault_start UPSTREAM_URL [--tls-cert CERT --tls-key KEY]
  FAULT_DIR=$(mktemp -d "$SCRATCH/fault.XXXX")
  local upstream=$1; shift
  "$PY" "$TOP/tests/lib/httpfault.py" --dir "$FAULT_DIR" --upstream "$upstream" "$@" &
  local pid=$!
  on_exit "kill $pid"
  local i
  for i in $(seq 100); do [ -f "$FAULT_DIR/port" ] && break; sleep 0.05; done
  FAULT_URL="http://127.0.0.1:$(cat "$FAULT_DIR/port")"
  case "$*" in *--tls-cert*) FAULT_URL="https://127.0.0.1:$(cat "$FAULT_DIR/port")";; esac
}

# make_ca DIR: a test CA and a server certificate for 127.0.0.1/localhost, signed by it; and a
# second, unrelated CA (DIR/other-ca.pem) to prove that verification fails closed.
make_ca() {
  local d=$1
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=runbook test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=another CA" \
    -keyout "$d/other-ca.key" -out "$d/other-ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$d/san.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/san.ext" -out "$d/server.pem" 2>/dev/null
}
fault_rules() { printf '%s' "$1" > "$FAULT_DIR/rules.json.tmp" && mv "$FAULT_DIR/rules.json.tmp" "$FAULT_DIR/rules.json"; }
