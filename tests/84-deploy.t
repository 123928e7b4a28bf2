#!/usr/bin/env bash
# deploy/: the CronJob and its objects for scheduled prune-dormant runs on Kubernetes.
# 1. Static: every manifest parses (python3-yaml) and has what a safe unattended run needs (image,
#    schedule, Forbid, deadline, serviceAccountName, non-root, resources, mounts, --yes, a cap and
#    -p storage=retain), least privilege for prune-dormant's storage calls (the Role exactly get/list
#    persistentvolumeclaims, the ClusterRole exactly get/list/patch persistentvolumes, nothing else,
#    bound to the ServiceAccount only, whose token the pod mounts), the namespace set in
#    kustomization.yaml (the ClusterRoleBinding's subject needs it; checked against `kubectl
#    kustomize` when kubectl is here), the hub scopes (with read:hub) the same as prune-dormant's,
#    the Containerfile has two debian:12-slim stages whose packages exist in Debian and match the
#    manifest / the binary's needs.
# 2. The objects, as kustomize renders them, are created with python3-kubernetes (create_from_yaml)
#    on the fake API server.
# 3. runbook's in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT and a service account
#    directory) against the fake: `runbook exec` lists pods as the service account.
# 3b. RBAC: a fake started with a small RBAC authorizer of this test's own (tests/fake-k8s has only
#    admin and read-only tokens) evaluating the Roles, ClusterRoles and bindings created from deploy/,
#    the service account being the CronJob's: in-cluster, runbook.storage makes prune-dormant's storage
#    calls (list claims, get a claim, list/get/patch volumes) and they are allowed; deleting or
#    creating claims or volumes, claims of another namespace, pods and secrets are refused.
# 4. The CronJob's own command (the image's ENTRYPOINT + the manifest's args and env) runs as the
#    pod would, in bubblewrap: read-only root, the Secret, ConfigMap and journal volumes at their
#    mount paths; against a real JupyterHub (a local spawner: no Kubernetes call) it deletes exactly
#    max_actions dormant users a run, and saves their records beside the journal.
. "$(dirname "$0")/lib/tap.sh"
. "$TOP/tests/lib/fake-k8s.sh"
. "$TOP/tests/lib/hub.sh"
D="$TOP/deploy"
unset RUNBOOK_PATH KUBECONFIG

"$PY" -c 'import yaml, kubernetes' 2>/dev/null || skip_all "python3-yaml and python3-kubernetes are needed (make deps)"

# py_checks: runs Python (stdin) that prints "ok<TAB>description", "not ok<TAB>description<TAB>why",
# or "data<TAB>KEY<TAB>VALUE" (kept for later: $(py_data KEY)).
py_checks() {
  local status desc why rc
  "$PY" - "$@" >"$SCRATCH/py.out" 2>"$SCRATCH/py.err"; rc=$?
  while IFS=$'\t' read -r status desc why; do
    case $status in
      ok) ok 0 "$desc" ;;
      data) printf '%s\t%s\n' "$desc" "$why" >> "$SCRATCH/py.data" ;;
      *) ok 1 "$desc"; [ -n "$why" ] && diag "  $why" ;;
    esac
  done < "$SCRATCH/py.out"
  [ "$rc" -eq 0 ] || { ok 1 "the Python checks ran to the end"; sed 's/^/#   /' "$SCRATCH/py.err" | tail -n 8; }
}
py_data() { awk -F '\t' -v k="$1" '$1 == k { print $2 }' "$SCRATCH/py.data"; }

# --- 1. static checks ---
# render.py: deploy/ as kustomize renders it (the kustomization's namespace on every namespaced object
# and on ServiceAccount subjects with no namespace or "default"), for the checks and the fakes below;
# section 1 compares it with `kubectl kustomize` when kubectl is here.
cat > "$SCRATCH/render.py" <<'PYEOF'
import copy, os, yaml
CLUSTER_KINDS = {"ClusterRole", "ClusterRoleBinding", "Namespace", "PersistentVolume", "StorageClass"}
def render(deploy):
    kust = yaml.safe_load(open(os.path.join(deploy, "kustomization.yaml")))
    ns = kust.get("namespace")
    out = []
    for f in kust.get("resources", []):
        for d in yaml.safe_load_all(open(os.path.join(deploy, f))):
            if d is None:
                continue
            d = copy.deepcopy(d)
            if ns and d.get("kind") not in CLUSTER_KINDS:
                d.setdefault("metadata", {})["namespace"] = ns
            if ns and d.get("kind") in ("RoleBinding", "ClusterRoleBinding"):
                for s in d.get("subjects") or []:
                    if s.get("kind") == "ServiceAccount" and s.get("namespace", "") in ("", "default"):
                        s["namespace"] = ns
            out.append((f, d))
    return ns, out
PYEOF
kustomized=
if command -v kubectl >/dev/null && kubectl kustomize "$D" >"$SCRATCH/kustomized.yaml" 2>"$SCRATCH/kustomize.err"; then
  kustomized="$SCRATCH/kustomized.yaml"
fi
py_checks "$D" "$TOP/vendor/debian-packages.txt" "$SCRATCH" "$TOP" "$kustomized" <<'PYEOF'
import glob, os, re, shlex, sys, yaml
deploy, manifest, scratch, top_dir, kustomized = sys.argv[1:6]
sys.path.insert(0, scratch)
from render import render
def check(cond, desc, why=""):
    print("%s\t%s\t%s" % ("ok" if cond else "not ok", desc, str(why).replace("\n", " ")[:300]))

docs = {}
for path in sorted(glob.glob(deploy + "/*.yaml")):
    try:
        loaded = [d for d in yaml.safe_load_all(open(path)) if d is not None]
        check(True, "%s parses" % os.path.basename(path))
    except yaml.YAMLError as e:
        check(False, "%s parses" % os.path.basename(path), e); continue
    for d in loaded:
        docs.setdefault(d.get("kind"), []).append((os.path.basename(path), d))
def one(kind):
    items = docs.get(kind, [])
    check(len(items) == 1, "exactly one %s" % kind, [f for f, _ in items])
    return items[0][1] if items else {}

cron, sa, role, binding = one("CronJob"), one("ServiceAccount"), one("Role"), one("RoleBinding")
crole, cbinding = one("ClusterRole"), one("ClusterRoleBinding")
pvc, cm, secret = one("PersistentVolumeClaim"), one("ConfigMap"), one("Secret")

# The CronJob: what a safe unattended run needs.
spec = cron.get("spec", {})
job = spec.get("jobTemplate", {}).get("spec", {})
pod = job.get("template", {}).get("spec", {})
containers = pod.get("containers", [])
check(len(containers) == 1, "the CronJob runs one container")
c = containers[0] if containers else {}
check(re.fullmatch(r"(\S+\s+){4}\S+", spec.get("schedule", "")) is not None, "a five-field schedule", spec.get("schedule"))
check(spec.get("concurrencyPolicy") == "Forbid", "concurrencyPolicy: Forbid")
check(isinstance(job.get("activeDeadlineSeconds"), int) and job["activeDeadlineSeconds"] > 0, "activeDeadlineSeconds")
check(job.get("backoffLimit") == 0, "backoffLimit 0 (the next run plans afresh)")
image = c.get("image", "")
check(re.fullmatch(r"[^\s:]+(:[\w][\w.-]*)", image) is not None and not image.endswith(":latest"), "image with a tag, not latest", image)
check(pod.get("serviceAccountName") == sa.get("metadata", {}).get("name"), "serviceAccountName is the ServiceAccount's")
# prune-dormant calls the Kubernetes API for users' storage: the pod mounts the token (and says so
# itself); the ServiceAccount does not hand it to other pods by default.
check(pod.get("automountServiceAccountToken") is True, "the pod mounts the ServiceAccount's API token (explicitly)",
      pod.get("automountServiceAccountToken"))
check(sa.get("automountServiceAccountToken") is False, "  the ServiceAccount itself does not (only pods that ask get it)")
psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
check(psc.get("runAsNonRoot") is True and isinstance(psc.get("runAsUser"), int) and psc["runAsUser"] > 0,
      "securityContext: runAsNonRoot, a non-root runAsUser")
check(csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
      and csc.get("capabilities", {}).get("drop") == ["ALL"], "container: read-only root, no escalation, no capabilities")
res = c.get("resources", {})
check(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory"),
      "resources: cpu and memory requests, a memory limit")
args = c.get("args", [])
check(args[:2] == ["run", "prune-dormant"], "args run prune-dormant", args)
check("--yes" in args, "args contain --yes")
check("--skipped-ok" in args, "args contain --skipped-ok (users skipped because they changed do not fail the Job)")
params = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-p", "--param")]
caps = [int(p.split("=", 1)[1]) for p in params if p.startswith("max_actions=") and p.split("=", 1)[1].isdigit()]
check(len(caps) == 1 and caps[0] >= 1, "args cap the run: -p max_actions=N, N >= 1", params)
check([p for p in params if p.startswith("storage=")] == ["storage=retain"],
      "args keep users' home directories: -p storage=retain, once (the default, made visible)", params)
check(not any(p.startswith(("kubeconfig", "context")) for p in params) and "--kubeconfig" not in args
      and "--context" not in args and "-n" not in args and "--namespace" not in args,
      "  no kubeconfig, context or namespace: in-cluster, the pod's own namespace", args)
def arg_after(flag):
    return args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else None
volumes = {v["name"]: v for v in pod.get("volumes", [])}
mounts = c.get("volumeMounts", [])
def volume_of(path):
    """The volume mounted at the longest prefix of path, and the path inside it."""
    best = None
    for m in mounts:
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best[0]):
                best = (mp, m)
    if not best:
        return None, None, None
    return volumes.get(best[1]["name"]), best[1], path[len(best[0]) + 1:]
check(all(m["name"] in volumes for m in mounts), "every volumeMount has its volume")
token = [p.split("=", 1)[1] for p in params if p.startswith("token_file=")]
v, m, inner = volume_of(token[0] if token else "")
check(v is not None and "secret" in v and m.get("readOnly") is True, "token_file is in a read-only Secret mount", token)
if v and "secret" in v:
    check(v["secret"].get("secretName") == secret.get("metadata", {}).get("name"), "  the Secret of the template")
    keys = {i["path"]: i["key"] for i in v["secret"].get("items", [])}
    check(keys.get(inner) in secret.get("stringData", {}), "  its key is the template's", keys)
    check(v["secret"].get("defaultMode") == 0o440, "  mode 0440 (with fsGroup: this pod's user only)", oct(v["secret"].get("defaultMode", 0)))
    check(psc.get("fsGroup") == psc.get("runAsGroup"), "  fsGroup is the pod's group")
check(not any("token" in str(e.get("name", "")).lower() and "value" in e for e in c.get("env", [])), "no token in env values")
jdir = arg_after("--journal-dir")
v, m, inner = volume_of(jdir or "")
check(v is not None and v.get("persistentVolumeClaim", {}).get("claimName") == pvc.get("metadata", {}).get("name")
      and not m.get("readOnly"), "--journal-dir is on the PersistentVolumeClaim, writable", jdir)
pol = arg_after("--policy")
v, m, inner = volume_of(pol or "")
check(v is not None and v.get("configMap", {}).get("name") == cm.get("metadata", {}).get("name")
      and inner in cm.get("data", {}), "--policy is the ConfigMap's file", pol)
check(any(e.get("name") == "JUPYTERHUB_API_URL" for e in c.get("env", [])), "JUPYTERHUB_API_URL names the hub")

# RBAC: exactly what prune-dormant calls on the Kubernetes API for users' storage, and nothing else.
# (rbac.yaml says, for each, which call it serves; lua/runbook/storage.lua and prune-dormant make them.)
WANT_ROLE = [{"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": {"get", "list"}}]
WANT_CLUSTER_ROLE = [{"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": {"get", "list", "patch"}}]
def same_rules(rules, want):
    got = [{"apiGroups": r.get("apiGroups"), "resources": r.get("resources"), "verbs": set(r.get("verbs") or [])}
           for r in rules]
    other_keys = [k for r in rules for k in r if k not in ("apiGroups", "resources", "verbs")]
    repeated = any(len(r.get("verbs") or []) != len(set(r.get("verbs") or [])) for r in rules)
    return got == want and not other_keys and not repeated
for what, obj in (("the Role", role), ("the ClusterRole", crole)):
    rules = obj.get("rules") or []
    flat = [str(x) for r in rules for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs")
            for x in (r.get(key) or [])]
    check(not any("*" in x for x in flat), "%s: no wildcard" % what, rules)
    verbs = {v for r in rules for v in r.get("verbs") or []}
    check(not verbs & {"delete", "deletecollection", "create", "update", "watch", "escalate", "bind", "impersonate"},
          "%s: no delete, create, update, watch, escalate, bind or impersonate" % what, sorted(verbs))
    check(not any(r.get("nonResourceURLs") for r in rules) and "aggregationRule" not in obj,
          "%s: no nonResourceURLs, no aggregation" % what)
check(same_rules(role.get("rules") or [], WANT_ROLE),
      "the Role grants exactly get and list on persistentvolumeclaims (core group), nothing else", role.get("rules"))
check(same_rules(crole.get("rules") or [], WANT_CLUSTER_ROLE),
      "the ClusterRole grants exactly get, list and patch on persistentvolumes (core group), nothing else",
      crole.get("rules"))
rbac_text = open(deploy + "/rbac.yaml").read()
check("cannot be restricted to one namespace" in rbac_text.lower() and "`resourceNames` cannot" in rbac_text,
      "  rbac.yaml says why: volumes are cluster-scoped, not restrictable to a namespace, no resourceNames")
sa_name = sa["metadata"]["name"]
check(binding.get("roleRef", {}).get("kind") == "Role" and binding["roleRef"].get("name") == role["metadata"]["name"],
      "the RoleBinding binds that Role")
check(binding.get("subjects") == [{"kind": "ServiceAccount", "name": sa_name}], "  to the ServiceAccount only")
check(cbinding.get("roleRef", {}).get("kind") == "ClusterRole"
      and cbinding["roleRef"].get("name") == crole["metadata"]["name"], "the ClusterRoleBinding binds that ClusterRole")
check(cbinding.get("subjects") == [{"kind": "ServiceAccount", "name": sa_name}],
      "  to the ServiceAccount only, its namespace left to kustomization.yaml", cbinding.get("subjects"))

# The namespace: kustomization.yaml sets it, so the ClusterRoleBinding's subject gets it.
ns, rendered = render(deploy)
check(isinstance(ns, str) and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", ns) is not None,
      "kustomization.yaml sets namespace: (the ClusterRoleBinding's subject needs it)", ns)
r_by_kind = {}
for f, d in rendered:
    r_by_kind.setdefault(d["kind"], []).append(d)
r_crb = (r_by_kind.get("ClusterRoleBinding") or [{}])[0]
r_sa = (r_by_kind.get("ServiceAccount") or [{}])[0]
check([x.get("namespace") for x in r_crb.get("subjects", [])] == [r_sa.get("metadata", {}).get("namespace")] == [ns],
      "  rendered, the ClusterRoleBinding's subject is the ServiceAccount in that namespace", r_crb.get("subjects"))
if kustomized:
    theirs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(kustomized)) if d}
    mine = {(d["kind"], d["metadata"]["name"]): d for _, d in rendered}
    check(sorted(mine) == sorted(theirs), "kubectl kustomize renders the same objects", (sorted(mine), sorted(theirs)))
    diff = [k for k in mine if k in theirs and mine[k] != theirs[k]]
    check(not diff, "  identical to this test's rendering (namespaces, subjects, everything)", diff)
else:
    print("ok\tkubectl kustomize not compared: no kubectl here # SKIP\t")

# The hub token's scopes: the same in deploy/README.md, the Secret template and prune-dormant's own help.
def scope_set(text):
    return {w for w in re.split(r"[\s,]+", text) if ":" in w}
pd = open(os.path.join(top_dir, "runbooks/prune-dormant.lua")).read()
m = re.search(r"a service token with ([^)]*)\)", pd)
want_scopes = scope_set(m.group(1)) if m else set()
check("read:hub" in want_scopes, "prune-dormant's token needs read:hub", sorted(want_scopes))
m = re.search(r"scopes: \[([^\]]*)\]", open(deploy + "/README.md").read())
check(m is not None and scope_set(m.group(1)) == want_scopes, "deploy/README.md's loadRoles scopes are prune-dormant's",
      m and sorted(scope_set(m.group(1))))
tmpl = " ".join(l.lstrip("# ") for l in open(deploy + "/hub-token-secret.template.yaml") if l.startswith("#"))
m = re.search(r"the scopes ([^(]*)\(", tmpl)
check(m is not None and scope_set(m.group(1).replace(" and ", ", ")) == want_scopes,
      "the Secret template names the same scopes", m and m.group(1))

# kustomization: every manifest but the Secret template.
kust = yaml.safe_load(open(deploy + "/kustomization.yaml"))
want = sorted(os.path.basename(p) for p in glob.glob(deploy + "/*.yaml")
              if not p.endswith(("kustomization.yaml", ".template.yaml")))
check(sorted(kust.get("resources", [])) == want, "kustomization.yaml lists every manifest but the template", kust.get("resources"))
check(any(image.startswith(i["name"] + ":") for i in kust.get("images", [])), "  and names the CronJob's image")

# The Containerfile: two debian:12-slim stages.
lines, cur = [], ""
for raw in open(deploy + "/Containerfile"):
    s = raw.rstrip("\n")
    if not cur and (not s.strip() or s.lstrip().startswith("#")):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "; continue
    lines.append((cur + s).strip()); cur = ""
stages = []
for line in lines:
    word, _, rest = line.partition(" ")
    word = word.upper()
    if word == "FROM":
        stages.append({"from": rest.split(), "ins": []})
    elif stages:
        stages[-1]["ins"].append((word, rest.strip()))
    else:
        check(False, "the Containerfile starts with FROM", line)
check(len(stages) == 2, "the Containerfile has two stages", len(stages))
check(all(s["from"][0] == "debian:12-slim" for s in stages), "both FROM debian:12-slim", [s["from"] for s in stages])
build, run = (stages + [{"from": [], "ins": []}] * 2)[:2]
check(build["from"][1:] == ["AS", "build"] or build["from"][1:] == ["as", "build"], "the first stage is named build")
def apt_packages(stage):
    pkgs, runs = [], [r for w, r in stage["ins"] if w == "RUN" and "apt-get install" in r]
    for r in runs:
        words = shlex.split(r.split("apt-get install", 1)[1].split("&&")[0])
        pkgs += [w for w in words if not w.startswith("-")]
        check("--no-install-recommends" in r and "rm -rf /var/lib/apt/lists/*" in r,
              "  apt-get install --no-install-recommends, lists removed", r[:80])
    return pkgs
build_pkgs, run_pkgs = apt_packages(build), apt_packages(run)
manifest_build = [l.split()[0] for l in open(manifest) if l.split() and not l.startswith("#") and l.split()[2] == "build"]
check(sorted(build_pkgs) == sorted(manifest_build), "the build stage installs the manifest's build packages",
      (sorted(build_pkgs), sorted(manifest_build)))
check(run_pkgs and not any(p.endswith("-dev") or p in ("build-essential", "pkg-config") for p in run_pkgs),
      "the run stage installs no -dev or build package", run_pkgs)
print("data\tpackages\t" + " ".join(build_pkgs + run_pkgs))
print("data\truntime\t" + " ".join(run_pkgs))
top = os.path.dirname(deploy)
copies = [r.split() for w, r in build["ins"] if w == "COPY"]
srcs = [s for c_ in copies for s in c_[:-1] if not s.startswith("--")]
check(srcs and all(os.path.exists(os.path.join(top, s)) for s in srcs), "the build stage copies files of this repository", srcs)
check(any(w == "RUN" and "make portable" in r for w, r in build["ins"]), "the build stage runs make portable")
m_out = [re.search(r"runbook-portable\s+(/out\S+)", r) for w, r in build["ins"] if w == "RUN"]
out_path = next((m.group(1) for m in m_out if m), None)
check(any(w == "COPY" and r.startswith("--from=build") for w, r in run["ins"]), "the run stage copies from build only")
user = [r for w, r in run["ins"] if w == "USER"]
check(len(user) == 1 and re.fullmatch(r"[1-9]\d*(:\d+)?", user[0]) is not None, "USER: a numeric non-root user", user)
check(user and int(user[0].split(":")[0]) == psc.get("runAsUser"), "  the CronJob's runAsUser")
entry = [r for w, r in run["ins"] if w == "ENTRYPOINT"]
import json
ep = json.loads(entry[0]) if entry else []
check(ep and out_path and out_path == "/out" + ep[0], "ENTRYPOINT is the installed binary (exec form)", (ep, out_path))
print("data\tentrypoint\t" + json.dumps(ep))
PYEOF

# The packages exist in Debian 12 (the archive's lists, or installed here: make deps installs them all),
# and the run stage has every library the portable binary loads (83-portable.t: libcurl, libpq,
# OpenSSL, libc) with nothing else to provide.
# (apt-cache needs the archive's lists; a package installed here exists too, should they be absent)
packages=$(py_data packages)
shown=" $(apt-cache show $packages 2>/dev/null | sed -n 's/^Package: //p' | sort -u | tr '\n' ' ') "
installed=" $(dpkg-query -W -f='${Package} ' $packages 2>/dev/null) "
for pkg in $packages; do
  case $shown in *" $pkg "*) ok 0 "Debian package $pkg exists (apt-cache show)"; continue ;; esac
  case $installed in *" $pkg "*) ok 0 "Debian package $pkg exists (installed here)" ;;
    *) ok 1 "Debian package $pkg exists" ;; esac
done
runtime=" $(py_data runtime) libc6 "
sonames="libcurl.so.4 libpq.so.5 libssl.so.3 libcrypto.so.3 libm.so.6 libc.so.6"
owners=$(dpkg -S $(printf '*/%s ' $sonames) 2>/dev/null | grep -v 'i386\|lib32')
for soname in $sonames; do
  provider=$(printf '%s\n' "$owners" | grep -F "/$soname" | head -n 1 | cut -d: -f1)
  case $runtime in *" $provider "*) ok 0 "the run stage has $soname ($provider)" ;;
    *) ok 1 "the run stage has $soname (${provider:-no package found})" ;; esac
done

# --- 2. the objects, created with python3-kubernetes on the fake API server ---
# The fake serves the kinds runbook itself uses; for this test it also stores CronJobs, Roles,
# RoleBindings, ClusterRoles and ClusterRoleBindings as generic objects (no controller runs them), and
# PersistentVolumeClaims and PersistentVolumes the same way if the fake does not serve them itself.
cat > "$SCRATCH/fake-types.py" <<PYEOF
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, "$TOP/tests/fake-k8s")
from fakek8s import resources
from fakek8s.resources import ResourceType
RBAC = "rbac.authorization.k8s.io"
for rt in (ResourceType("batch", "v1", "cronjobs", "CronJob", singular="cronjob", short_names=("cj",), generation=True),
           ResourceType(RBAC, "v1", "roles", "Role", singular="role"),
           ResourceType(RBAC, "v1", "rolebindings", "RoleBinding", singular="rolebinding"),
           ResourceType(RBAC, "v1", "clusterroles", "ClusterRole", singular="clusterrole", namespaced=False),
           ResourceType(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", singular="clusterrolebinding",
                        namespaced=False),
           ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", singular="persistentvolumeclaim",
                        short_names=("pvc",)),
           ResourceType("", "v1", "persistentvolumes", "PersistentVolume", singular="persistentvolume",
                        short_names=("pv",), namespaced=False)):
    if rt.key in resources.BY_KEY:
        continue
    resources.RESOURCE_TYPES.append(rt)
    resources.BY_PATH[(rt.group, rt.version, rt.plural)] = rt
    resources.BY_KEY[rt.key] = rt
    resources.BY_KIND[(rt.api_version, rt.kind)] = rt
PYEOF
cat > "$SCRATCH/fake-with-batch.py" <<PYEOF
import runpy, sys
exec(open("$SCRATCH/fake-types.py").read())
sys.argv[0] = "$TOP/tests/fake-k8s/server.py"
runpy.run_path(sys.argv[0], run_name="__main__")
PYEOF
FAKE_K8S_SERVER="$SCRATCH/fake-with-batch.py"
"$PY" "$TOP/tests/fake-k8s/make-seed.py" "$SCRATCH/seed" >/dev/null
fake_k8s_start "$SCRATCH/k8s" "$SCRATCH/seed/seed.json" --sa-namespace hub-a
ok $? "the fake API server is up"
# create.py DEPLOY KUBECONFIG SCRATCH: the namespace, the Secret (as `kubectl create secret` would make
# it), then deploy/ as kustomize renders it, file by file, with python3-kubernetes as the admin.
cat > "$SCRATCH/create.py" <<'PYEOF'
import os, sys, yaml
from kubernetes import client, config, utils
deploy, kubeconfig, scratch = sys.argv[1:4]
sys.path.insert(0, scratch)
from render import render
def check(cond, desc, why=""):
    print("%s\t%s\t%s" % ("ok" if cond else "not ok", desc, str(why).replace("\n", " ")[:300]))
api = config.new_client_from_config(config_file=kubeconfig, context="token")
ns, rendered = render(deploy)
client.CoreV1Api(api).create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
files = [("hub-token-secret.template.yaml", yaml.safe_load(open(deploy + "/hub-token-secret.template.yaml")))] + rendered
for f in dict.fromkeys(f for f, _ in files):
    try:
        utils.create_from_yaml(api, yaml_objects=[d for g, d in files if g == f], namespace=ns)
        check(True, "create_from_yaml %s (rendered, namespace %s)" % (f, ns))
    except Exception as e:  # FailToCreateError carries the API's answers
        check(False, "create_from_yaml %s" % f, e)
PYEOF
py_checks "$D" "$KUBECONFIG_FILE" "$SCRATCH" < "$SCRATCH/create.py"
py_checks "$D" "$KUBECONFIG_FILE" "$SCRATCH" <<'PYEOF'
import glob, json, os, sys, yaml
from kubernetes import client, config, utils
deploy, kubeconfig, scratch = sys.argv[1:4]
sys.path.insert(0, scratch)
from render import render
def check(cond, desc, why=""):
    print("%s\t%s\t%s" % ("ok" if cond else "not ok", desc, str(why).replace("\n", " ")[:300]))
api = config.new_client_from_config(config_file=kubeconfig, context="token")
ns, rendered = render(deploy)
def raw(path):
    resp = api.call_api(path, "GET", auth_settings=["BearerToken"], _preload_content=False)[0]
    return json.loads(resp.data)
manifest = yaml.safe_load(open(deploy + "/cronjob.yaml"))
cj = client.BatchV1Api(api).read_namespaced_cron_job("runbook-prune-dormant", ns)
check(cj.spec.concurrency_policy == "Forbid" and cj.spec.schedule == manifest["spec"]["schedule"],
      "the CronJob reads back (typed API): schedule, Forbid")
pod = cj.spec.job_template.spec.template.spec
check(pod.containers[0].args == manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"],
      "  its args")
check(pod.security_context.run_as_non_root is True and pod.service_account_name == "runbook-prune-dormant",
      "  runAsNonRoot, serviceAccountName")
stored = raw("/apis/batch/v1/namespaces/%s/cronjobs/runbook-prune-dormant" % ns)
check(stored["spec"].get("timeZone") == "Etc/UTC", "  the API kept every field (timeZone)")
check(pod.automount_service_account_token is True, "  automountServiceAccountToken: true")
rbac = client.RbacAuthorizationV1Api(api)
role = rbac.read_namespaced_role("runbook-prune-dormant", ns)
check([(r.api_groups, r.resources, sorted(r.verbs)) for r in role.rules] == [([""], ["persistentvolumeclaims"], ["get", "list"])],
      "the Role reads back (typed API): get, list persistentvolumeclaims", role.rules)
rb = rbac.read_namespaced_role_binding("runbook-prune-dormant", ns)
check(rb.role_ref.name == "runbook-prune-dormant" and [(s.name, s.namespace) for s in rb.subjects] == [("runbook-prune-dormant", ns)],
      "the RoleBinding reads back")
cr = rbac.read_cluster_role("runbook-prune-dormant")
check([(r.api_groups, r.resources, sorted(r.verbs)) for r in cr.rules] == [([""], ["persistentvolumes"], ["get", "list", "patch"])],
      "the ClusterRole reads back: get, list, patch persistentvolumes", cr.rules)
crb = rbac.read_cluster_role_binding("runbook-prune-dormant")
check(crb.role_ref.kind == "ClusterRole" and [(s.kind, s.name, s.namespace) for s in crb.subjects]
      == [("ServiceAccount", "runbook-prune-dormant", ns)],
      "the ClusterRoleBinding reads back: the ServiceAccount, in namespace %s" % ns, crb.subjects)
sa = client.CoreV1Api(api).read_namespaced_service_account("runbook-prune-dormant", ns)
check(sa.automount_service_account_token is False, "the ServiceAccount reads back, no token automount of its own")
check(client.CoreV1Api(api).read_namespaced_config_map("runbook-policy", ns).data.get("policy.lua"),
      "the policy ConfigMap reads back")
PYEOF

# --- 3. runbook's in-cluster configuration, against the fake ---
cat > "$SCRATCH/pods.lua" <<'LUA'
-- Lists the pods of the service account's namespace, as a CronJob's script would.
local k8s = require "runbook.k8s"
local client = assert(k8s.connect{})
print(client.context, client.namespace, client.server)
for _, pod in ipairs(assert(client:list("pods"))) do print(pod.metadata.name) end
LUA
mkdir -p "$SCRATCH/empty-home"
# (print in a script writes to standard error)
out=$(HOME="$SCRATCH/empty-home" RUNBOOK_SERVICEACCOUNT_DIR="$K8S_SA_DIR" \
      KUBERNETES_SERVICE_HOST="$KUBERNETES_SERVICE_HOST" KUBERNETES_SERVICE_PORT="$KUBERNETES_SERVICE_PORT" \
      "$RUNBOOK" exec "$SCRATCH/pods.lua" 2>&1 >/dev/null); rc=$?
is "$rc" 0 "in-cluster: runbook exec lists pods with no kubeconfig" || diag "$out"
is "$(printf '%s\n' "$out" | head -n 1)" "in-cluster	hub-a	https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT" \
   "  the in-cluster context, the service account's namespace, KUBERNETES_SERVICE_HOST/PORT"
want=$(fake_k8s_control GET 'state?resource=pods&namespace=hub-a' |
       "$PY" -c 'import json,sys; print("\n".join(sorted(p["metadata"]["name"] for p in json.load(sys.stdin)["objects"]["pods"])))')
is "$(printf '%s\n' "$out" | tail -n +2 | sort)" "$want" "  the pods of hub-a"
like "$(fake_k8s_requests 'r["path"] == "/api/v1/namespaces/hub-a/pods"')" '"user": "system:serviceaccount:hub-a:runbook"' \
   "  sent as the service account (its token file)"
out=$(HOME="$SCRATCH/empty-home" KUBERNETES_SERVICE_HOST= "$RUNBOOK" exec "$SCRATCH/pods.lua" 2>&1)
like "$out" "no Kubernetes configuration" "outside a cluster, with no kubeconfig: a clear message"

# --- 3b. RBAC: the CronJob's service account, in-cluster, may make prune-dormant's storage calls and no others ---
# tests/fake-k8s authorizes by token only (admin or read-only), so this fake gets a small RBAC
# authorizer of this test's own: for a service account it evaluates the Roles, ClusterRoles and
# bindings stored in the fake (the ones created from deploy/), as the API server's RBAC does for
# apiGroups, resources, verbs and resourceNames (no aggregation, no wildcard subtleties beyond "*").
# It is a model of RBAC, not Kubernetes' own; section 1 pins the rules themselves.
fake_k8s_stop "$SCRATCH/k8s" "$FAKE_K8S_PID"
rbac_ns=$("$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); from render import render; print(render(sys.argv[2])[0])' "$SCRATCH" "$D")
sa_name=$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["metadata"]["name"])' "$D/serviceaccount.yaml")
cat > "$SCRATCH/fake-with-rbac.py" <<PYEOF
import runpy, sys
exec(open("$SCRATCH/fake-types.py").read())
import copy
from fakek8s import credentials, errors, httpapi, resources
from fakek8s.auth import User
SA_NAME = "$sa_name"
RBAC = "rbac.authorization.k8s.io"

def setup_auth(directory, tokens, sa_namespace, _orig=credentials.setup_auth):
    """The mounted service account token is the CronJob's account, with no system:masters."""
    auth = _orig(directory, tokens, sa_namespace)
    auth.add(tokens["service_account"], User("system:serviceaccount:%s:%s" % (sa_namespace, SA_NAME),
             ["system:serviceaccounts", "system:serviceaccounts:" + sa_namespace, "system:authenticated"]))
    return auth
credentials.setup_auth = setup_auth

def bound_rules(store, user, namespace):
    """Rules of the ClusterRoleBindings, and for a namespaced request the RoleBindings of its namespace."""
    sa_ns, sa_name = user.name.split(":")[2:4]
    def names_user(s, binding_ns):
        if s.get("kind") == "ServiceAccount":
            return s.get("name") == sa_name and (s.get("namespace") or binding_ns) == sa_ns
        if s.get("kind") == "Group":
            return s.get("name") in user.groups
        return s.get("kind") == "User" and s.get("name") == user.name
    def role(ref, ns):
        cluster = ref.get("kind") == "ClusterRole"
        rt = resources.BY_KEY[(RBAC, "clusterroles" if cluster else "roles")]
        obj = store.peek(rt, "" if cluster else ns, ref.get("name"))
        return copy.deepcopy((obj or {}).get("rules") or [])
    rules = []
    with store.lock:
        for b in store.all(resources.BY_KEY[(RBAC, "clusterrolebindings")]):
            if b.get("roleRef", {}).get("kind") == "ClusterRole" and any(names_user(s, None) for s in b.get("subjects") or []):
                rules += role(b["roleRef"], None)
        if namespace:
            for b in store.all(resources.BY_KEY[(RBAC, "rolebindings")], namespace):
                if any(names_user(s, namespace) for s in b.get("subjects") or []):
                    rules += role(b.get("roleRef", {}), namespace)
    return rules

def allows(rules, verb, group, resource, name):
    def has(r, key, value):
        return value in (r.get(key) or []) or "*" in (r.get(key) or [])
    return any(has(r, "apiGroups", group) and has(r, "resources", resource) and has(r, "verbs", verb)
               and (not r.get("resourceNames") or (name is not None and name in r["resourceNames"])) for r in rules)

_resource_request = httpapi.Handler.resource_request
def resource_request(self, group, version, rest, query, user, body):
    if user.name.startswith("system:serviceaccount:"):
        namespace, plural, name, sub = self.split_resource_path(rest)
        rt = resources.lookup(group, version, plural)
        if rt is not None:
            method = "GET" if self.command == "HEAD" else self.command
            verb = {"GET": "list" if name is None else "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                    "DELETE": "deletecollection" if name is None else "delete"}[method]
            if method == "GET" and httpapi.flag(query, "watch"):
                verb = "watch"
            if sub == "exec":
                verb = "create"
            resource = plural + ("/" + sub if sub else "")
            allowed = allows(bound_rules(self.app.store, user, namespace), verb, group, resource, name)
            self.entry["verb"], self.entry["rbac"] = verb, "allowed" if allowed else "denied"
            if not allowed:
                raise errors.rbac_forbidden(rt, name, user.name, verb, namespace, sub or "")
    return _resource_request(self, group, version, rest, query, user, body)
httpapi.Handler.resource_request = resource_request

sys.argv[0] = "$TOP/tests/fake-k8s/server.py"
runpy.run_path(sys.argv[0], run_name="__main__")
PYEOF
FAKE_K8S_SERVER="$SCRATCH/fake-with-rbac.py"
fake_k8s_start "$SCRATCH/k8s-rbac" "$SCRATCH/seed/seed.json" --sa-namespace "$rbac_ns"
ok $? "a fake API server with the RBAC authorizer is up (service account $rbac_ns/$sa_name)"
# deploy/ as kustomize renders it, then a user's home directory as KubeSpawner leaves it: a claim
# labelled component=singleuser-storage bound to a volume with reclaim policy Delete; and a user claim
# in another namespace.
py_checks "$D" "$KUBECONFIG_FILE" "$SCRATCH" < "$SCRATCH/create.py"
py_checks "$KUBECONFIG_FILE" "$rbac_ns" <<'PYEOF'
import sys
from kubernetes import client, config
kubeconfig, ns = sys.argv[1:3]
api = config.new_client_from_config(config_file=kubeconfig, context="token")
core = client.CoreV1Api(api)
def claim(namespace, user, volume=None):
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}, "storageClassName": "",
            "volumeMode": "Filesystem"}
    if volume:
        spec["volumeName"] = volume
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "claim-" + user, "namespace": namespace,
                         "labels": {"component": "singleuser-storage", "hub.jupyter.org/username": user},
                         "annotations": {"hub.jupyter.org/username": user}}, "spec": spec}
c = core.create_namespaced_persistent_volume_claim(ns, claim(ns, "alice", "pv-alice"))
core.create_persistent_volume({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-alice"},
    "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data/pv-alice"},
             "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "", "volumeMode": "Filesystem",
             "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": ns, "name": "claim-alice",
                          "uid": c.metadata.uid}}})
core.create_namespaced_persistent_volume_claim("hub-a", claim("hub-a", "eve"))
print("ok\tas the admin: claim-alice in %s on volume pv-alice (reclaim Delete), claim-eve in hub-a" % ns)
PYEOF
cat > "$SCRATCH/storage-calls.lua" <<'LUA'
-- prune-dormant's storage calls, made through the same module (runbook.storage) as the service account
-- in-cluster, then calls outside the grant, which must be refused. One line each, on standard error.
local k8s = require "runbook.k8s"
local storage = require "runbook.storage"
local client = assert(k8s.connect{})
print("namespace", client.namespace)
local function result(what, value, err)
  print(what, value and "ok" or ("FAIL " .. tostring(err)))
  return value
end
local index = result("list claims (component=singleuser-storage) and volumes", storage.index(client, client.namespace))
local claims = index and index:claims_of("alice") or {}
print("claims of alice", #claims, claims[1] and claims[1].volume or "-")
local c = claims[1]
if c then
  result("get claim", client:get("persistentvolumeclaims", c.name, { namespace = c.namespace }))
  result("get and patch volume (retain)", storage.retain(client, c, { user = "alice", run = "prune-dormant-rbac-test",
    time = "2026-12-03T03:17:00Z" }))
  result("get claim and volume after", storage.after_delete(client, c, "retain"))
end
local function probe(what, value, err)
  print("refused?", what, value and "ALLOWED" or (tostring(err):find("HTTP 403", 1, true) and "403" or tostring(err)))
end
local ns = client.namespace
probe("delete persistentvolumes", client:delete("persistentvolumes", "pv-alice"))
probe("create persistentvolumes", client:create("persistentvolumes", { apiVersion = "v1", kind = "PersistentVolume",
  metadata = { name = "pv-new" }, spec = { capacity = { storage = "1Gi" }, accessModes = { "ReadWriteOnce" },
  hostPath = { path = "/data/new" }, persistentVolumeReclaimPolicy = "Retain" } }))
probe("delete persistentvolumeclaims", client:delete("persistentvolumeclaims", "claim-alice", { namespace = ns }))
probe("patch persistentvolumeclaims", client:patch("persistentvolumeclaims", "claim-alice", { metadata = { labels = { x = "y" } } },
  { namespace = ns, type = "merge" }))
probe("create persistentvolumeclaims", client:create("persistentvolumeclaims", { apiVersion = "v1",
  kind = "PersistentVolumeClaim", metadata = { name = "claim-new" }, spec = { accessModes = { "ReadWriteOnce" },
  resources = { requests = { storage = "1Gi" } } } }, { namespace = ns }))
probe("list persistentvolumeclaims in hub-a", client:list("persistentvolumeclaims", { namespace = "hub-a" }))
probe("get persistentvolumeclaims in hub-a", client:get("persistentvolumeclaims", "claim-eve", { namespace = "hub-a" }))
probe("list pods", client:list("pods", { namespace = ns }))
probe("get secrets", client:get("secrets", "runbook-hub-token", { namespace = ns }))
probe("list namespaces", client:list("namespaces"))
LUA
out=$(HOME="$SCRATCH/empty-home" RUNBOOK_SERVICEACCOUNT_DIR="$K8S_SA_DIR" \
      KUBERNETES_SERVICE_HOST="$KUBERNETES_SERVICE_HOST" KUBERNETES_SERVICE_PORT="$KUBERNETES_SERVICE_PORT" \
      "$RUNBOOK" exec --write "$SCRATCH/storage-calls.lua" 2>&1 >/dev/null); rc=$?
is "$rc" 0 "in-cluster as $sa_name: the storage calls script ran"
[ "$rc" -eq 0 ] || printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
field() { printf '%s\n' "$out" | awk -F '\t' -v k="$1" '$1 == k { print $2; exit }'; }
is "$(field namespace)" "$rbac_ns" "  in the service account's namespace"
is "$(printf '%s\n' "$out" | awk -F '\t' '$1 == "claims of alice" { print $2 " " $3 }')" "1 pv-alice" "  it found alice's claim and volume"
for call in "list claims (component=singleuser-storage) and volumes" "get claim" "get and patch volume (retain)" \
            "get claim and volume after"; do
  is "$(field "$call")" ok "  allowed: $call"
done
for call in "delete persistentvolumes" "create persistentvolumes" "delete persistentvolumeclaims" \
            "patch persistentvolumeclaims" "create persistentvolumeclaims" "list persistentvolumeclaims in hub-a" \
            "get persistentvolumeclaims in hub-a" "list pods" "get secrets" "list namespaces"; do
  is "$(printf '%s\n' "$out" | awk -F '\t' -v k="$call" '$1 == "refused?" && $2 == k { print $3 }')" 403 "  refused (403): $call"
done
reclaim=$("$PY" - "$KUBECONFIG_FILE" <<'PYEOF'
import sys
from kubernetes import client, config
api = config.new_client_from_config(config_file=sys.argv[1], context="token")
pv = client.CoreV1Api(api).read_persistent_volume("pv-alice")
print(pv.spec.persistent_volume_reclaim_policy, (pv.metadata.labels or {}).get("runbook/retained-by"))
PYEOF
)
is "$reclaim" "Retain prune-dormant" "  the volume is kept: reclaim policy Retain, label runbook/retained-by=prune-dormant"
# What the service account did, by the fake's log: exactly prune-dormant's calls succeeded.
did=$(fake_k8s_requests "r.get('user') == 'system:serviceaccount:$rbac_ns:$sa_name' and 200 <= r.get('status', 0) < 300" |
      "$PY" -c '
import json, re, sys
for line in sys.stdin:
    r = json.loads(line)
    m = re.match(r"/api/v1/(?:namespaces/([^/]+)/)?([a-z]+)", r["path"])
    print(r.get("verb"), m.group(2), m.group(1) or "(cluster)")' | sort -u | tr '\n' ';')
is "$did" "get persistentvolumeclaims $rbac_ns;get persistentvolumes (cluster);list persistentvolumeclaims $rbac_ns;list persistentvolumes (cluster);patch persistentvolumes (cluster);" \
   "  the fake's log: the account succeeded only at prune-dormant's calls (get/list claims in $rbac_ns, get/list/patch volumes)"

# --- 4. the CronJob's command, run as the pod would run it ---
fake_k8s_stop "$SCRATCH/k8s-rbac" "$FAKE_K8S_PID"
command -v jupyterhub >/dev/null || { ok 1 "jupyterhub is installed (make deps)"; done_testing; exit; }
H="$SCRATCH/hub"
hub_start "$H" >/dev/null 2>&1; ok $? "a JupyterHub is up"
# (and 220 active ones: 203 of 428 is under prune-dormant's default share cap, max_percent=50)
hub_seed "$H" --generate old:203:-200d --generate new:3 --generate active:220:-1d --via-db --user staffer,boss \
  --activity staffer=-300d --activity boss=-300d --admin boss --group staff=staffer >/dev/null 2>&1
ok $? "  with 203 dormant users, 3 new ones, 220 active, a dormant admin and a dormant member of staff"
before=$(hub_count "$H")
POD="$SCRATCH/pod"
py_checks "$D" "$POD" "$JUPYTERHUB_TOKEN_FILE" "$JUPYTERHUB_API_URL" "$(py_data entrypoint)" "$RUNBOOK" <<'PYEOF'
# Lays out the pod's volumes as the kubelet would and writes the bubblewrap command line:
# POD/volumes/NAME is mounted at its mountPath; POD/argv holds one argument a line.
import json, os, shutil, sys, yaml
deploy, pod_dir, token_file, hub_url, entrypoint, runbook = sys.argv[1:7]
entrypoint = json.loads(entrypoint)   # the Containerfile's ENTRYPOINT, read by the static checks
cron = yaml.safe_load(open(deploy + "/cronjob.yaml"))
secret = yaml.safe_load(open(deploy + "/hub-token-secret.template.yaml"))
cm = yaml.safe_load(open(deploy + "/policy-configmap.yaml"))
spec = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
c = spec["containers"][0]
argv = ["bwrap", "--die-with-parent", "--unshare-pid", "--tmpfs", "/", "--ro-bind", "/usr", "/usr"]
for link in ("bin", "lib", "lib64", "sbin"):
    if os.path.islink("/" + link):
        argv += ["--symlink", os.readlink("/" + link), "/" + link]
argv += ["--dir", "/etc", "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache", "--proc", "/proc", "--dev", "/dev",
         "--tmpfs", "/usr/local", "--ro-bind", runbook, entrypoint[0]]
for v in spec["volumes"]:
    d = os.path.join(pod_dir, "volumes", v["name"])
    os.makedirs(d)
    if "secret" in v:
        for item in v["secret"]["items"]:
            assert item["key"] in secret["stringData"]
            shutil.copy(token_file, os.path.join(d, item["path"]))
            os.chmod(os.path.join(d, item["path"]), v["secret"]["defaultMode"])
    elif "configMap" in v:
        for name, text in cm["data"].items():
            open(os.path.join(d, name), "w").write(text)
for m in c["volumeMounts"]:
    argv += ["--ro-bind" if m.get("readOnly") else "--bind", os.path.join(pod_dir, "volumes", m["name"]), m["mountPath"]]
# readOnlyRootFilesystem; the environment is the image's (PATH, HOME=/ for a user with no account)
# plus the manifest's, with the hub's address pointed at the test hub: the one change.
argv += ["--remount-ro", "/", "--chdir", "/", "--clearenv",
         "--setenv", "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "--setenv", "HOME", "/"]
for e in c.get("env", []):
    value = hub_url if e["name"] == "JUPYTERHUB_API_URL" else e["value"]
    argv += ["--setenv", e["name"], value]
for name in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):   # the sanitizer build's settings, when it is the one under test
    if os.environ.get(name):
        argv += ["--setenv", name, os.environ[name]]
argv += entrypoint + c["args"]
open(os.path.join(pod_dir, "argv"), "w").write("\n".join(argv) + "\n")
print("ok\tthe pod's volumes laid out at their mount paths (Secret 0%o, ConfigMap, journal)" % spec["volumes"][0]["secret"]["defaultMode"])
PYEOF
mapfile -t argv < "$POD/argv" 2>/dev/null
[ ${#argv[@]} -gt 0 ] || { ok 1 "the pod's command line was made"; done_testing; exit 1; }
"${argv[@]}" >"$SCRATCH/run1.out" 2>"$SCRATCH/run1.err" </dev/null; rc=$?
ok $([ "$rc" -eq 0 ] || [ "$rc" -eq 4 ]; echo $?) "the CronJob's command exits 0 or 4 (got $rc)" || sed 's/^/#   /' "$SCRATCH/run1.err" | tail -n 20
after=$(hub_count "$H")
is "$((before - after))" 200 "  it deleted max_actions (200) users"
like "$(cat "$SCRATCH/run1.out")" "3 more dormant users are over this run's cap of 200" "  the other 3 dormant users wait for the next run"
users=$(hub_users "$H")
like "$users" "(^|[^a-z])staffer([^a-z]|$)" "  the policy from the ConfigMap kept the member of staff"
like "$users" "(^|[^a-z])boss([^a-z]|$)" "  the admin is kept"
journal=$(ls "$POD"/volumes/journal/journal/prune-dormant-*.journal 2>/dev/null)
ok $([ -n "$journal" ]; echo $?) "  its journal is on the journal volume"
like "$(cat "$SCRATCH/run1.out" "$SCRATCH/run1.err")" "Journal: /var/lib/runbook/journal/prune-dormant-" "  named by its path in the pod"
unlike "$(cat "$SCRATCH/run1.out" "$SCRATCH/run1.err" "$journal")" "$(cat "$JUPYTERHUB_TOKEN_FILE")" "  the token appears in no output and no journal"
"${argv[@]}" >"$SCRATCH/run2.out" 2>"$SCRATCH/run2.err" </dev/null; rc=$?
is "$rc" 0 "the next run exits 0"
is "$(hub_count "$H")" "$((after - 3))" "  and deletes the 3 left over"
is "$(ls "$POD"/volumes/journal/journal/ | grep -c '\.journal$')" 2 "  a journal a run"
# Each deleted user's record is saved beside its run's journal, on the journal volume (restore-users
# reads them): as many as the run deleted, under 1 KiB each for users without storage (deploy/ says so).
backup="${journal%.journal}.backup/users"
is "$(ls "$backup" 2>/dev/null | wc -l)" 200 "  the first run's 200 user records are beside its journal, on the volume"
per_user=$(( $(du -sb "$backup" 2>/dev/null | cut -f1) / 200 ))
ok $([ "$per_user" -gt 0 ] && [ "$per_user" -le 1024 ]; echo $?) "  under 1 KiB a user without storage ($per_user bytes), as deploy/ says"
hub_stop "$H" >/dev/null 2>&1

done_testing
