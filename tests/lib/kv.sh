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
fault_start() {  # fault_start UPSTREAM_URL
  FAULT_DIR=$(mktemp -d "$SCRATCH/fault.XXXX")
  "$PY" "$TOP/tests/lib/httpfault.py" --dir "$FAULT_DIR" --upstream "$1" &
  local pid=$!
  on_exit "kill $pid"
  local i
  for i in $(seq 100); do [ -f "$FAULT_DIR/port" ] && break; sleep 0.05; done
  FAULT_URL="http://127.0.0.1:$(cat "$FAULT_DIR/port")"
}
fault_rules() { printf '%s' "$1" > "$FAULT_DIR/rules.json.tmp" && mv "$FAULT_DIR/rules.json.tmp" "$FAULT_DIR/rules.json"; }
