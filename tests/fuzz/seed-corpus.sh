#!/usr/bin/env bash
# Seeds the corpora of the Lua-side targets with real documents (run once after `make`; the corpora are
# committed, so `make fuzz` does not need it): user models and pages from a real JupyterHub 3.0 (the
# tests' hub), the plan `runbook plan prune-dormant -o` writes for it and the journal its apply writes,
# the kubeconfig the fake Kubernetes API server hands out. Existing seeds are overwritten, others kept.
. "$(dirname "$0")/../lib/tap.sh"
. "$TOP/tests/lib/hub.sh"
. "$TOP/tests/lib/fake-k8s.sh"
set -u
C=$TOP/tests/fuzz/corpus
mkdir -p "$C/hub_user" "$C/plan" "$C/journal" "$C/kubeconfig"
export XDG_STATE_HOME="$SCRATCH/state"

# ---- a hub with every kind of user the runbooks judge
H="$SCRATCH/hub"
hub_start "$H" --spawner-delay-users pend.old >/dev/null || { echo "seed: the hub did not start" >&2; exit 1; }
hub_seed "$H" --generate old:3:-100d --generate new:2 --generate stale:2::-30d \
  --user 'ana.maria@example.edu,josé,boss,staffer,runner,named,pend.old' \
  --activity 'ana.maria@example.edu=-200d' --activity josé=-200d --activity boss=-300d --activity staffer=-200d \
  --admin boss --group staff=staffer --running runner --named-server named/lab2 --pending pend.old >/dev/null
n=0
while IFS= read -r name; do
  n=$((n + 1))
  hub_api GET "/users/$(hub_quote "$name")" > "$C/hub_user/hub3-user-$n.json"
done < <(hub_users "$H")
HUB_API_ACCEPT=application/jupyterhub-pagination+json hub_api GET '/users?limit=4' > "$C/hub_user/hub3-page-first.json"
HUB_API_ACCEPT=application/jupyterhub-pagination+json hub_api GET '/users?offset=12&limit=4' > "$C/hub_user/hub3-page-last.json"
hub_api GET '/users?limit=3' > "$C/hub_user/hub3-unpaginated-list.json"

# ---- a plan and the journal of its apply
export JUPYTERHUB_API_TOKEN; JUPYTERHUB_API_TOKEN=$(cat "$JUPYTERHUB_TOKEN_FILE")
printf 'days = 30\nprotected_users = { "josé" }\nexclude = function(user) return user.name == "staffer" and "staff" end\n' \
  > "$SCRATCH/policy.lua"
"$RUNBOOK" plan prune-dormant --policy "$SCRATCH/policy.lua" -o "$C/plan/prune-dormant.plan" >/dev/null
"$RUNBOOK" plan prune-dormant -p max_actions=2 -o "$C/plan/prune-dormant-capped.plan" >/dev/null
"$RUNBOOK" apply "$C/plan/prune-dormant-capped.plan" --yes --journal-dir "$SCRATCH/journals" >/dev/null 2>&1
journal=$(ls "$SCRATCH"/journals/*.journal | head -n 1)
cp "$journal" "$C/journal/prune-dormant-applied.journal"
head -c -20 "$journal" > "$C/journal/prune-dormant-torn.journal"          # died mid-write
printf '{"type":"resume","pid":1}\n{"type":"start","id":1}\n' | cat "$journal" - > "$C/journal/prune-dormant-resumed.journal"

# ---- the fake Kubernetes API server's kubeconfig (contexts for token, certificates, exec plugins)
K="$SCRATCH/k8s"
if fake_k8s_start "$K" >/dev/null 2>&1; then
  cp "$KUBECONFIG_FILE" "$C/kubeconfig/fake-k8s.yaml"
else
  echo "seed: fake-k8s did not start; kubeconfig seeds unchanged" >&2
fi
ls "$C"/hub_user "$C"/plan "$C"/journal "$C"/kubeconfig | sed 's/^/seed: /'
