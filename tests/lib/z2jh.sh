# A zero-to-jupyterhub-like world for tests: the fake Kubernetes API server (tests/fake-k8s) with a
# default StorageClass `standard` (reclaim Delete, Immediate binding) and namespace NS, and a real
# JupyterHub 3.0 whose spawner is the KubeSpawner stand-in (tests/lib/kubespawner-standin): it makes
# each user's claim in NS and deletes it with the user, as KubeSpawner does. Source after tap.sh,
# fake-k8s.sh and hub.sh.
#   z2jh_start NS [hub.py start options...]   sets K8S_DIR and KC (runbook's --kubeconfig and -n);
#                                             both servers are stopped at exit. On failure: a TAP
#                                             failure, the plan, exit 1.
# Runbook runs get no ~/.kube/config or KUBECONFIG to fall back on: HOME is the scratch directory's.
unset KUBECONFIG
export HOME="$SCRATCH/home"
mkdir -p "$HOME"

z2jh_start() {
  local ns=$1; shift
  cat > "$SCRATCH/seed.json" <<JSON
{"namespaces": ["$ns"],
 "objects": [{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
              "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
              "provisioner": "fake.example/hostpath", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}]}
JSON
  fake_k8s_start "$SCRATCH/k8s" "$SCRATCH/seed.json" || { ok 1 "fake API server starts"; done_testing; exit 1; }
  K8S_DIR=$SCRATCH/k8s
  hub_start "$SCRATCH/hub" --kubespawner "$K8S_DIR" --kube-namespace "$ns" "$@" >/dev/null 2>&1 ||
    { ok 1 "hub with the KubeSpawner stand-in starts"; done_testing; exit 1; }
  KC=(--kubeconfig "$KUBECONFIG_FILE" -n "$ns")
}
