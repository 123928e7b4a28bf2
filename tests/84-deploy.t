#!/usr/bin/env bash
# deploy/: the CronJob and its objects for scheduled prune-dormant runs on Kubernetes.
# 1. Static: every manifest parses (python3-yaml) and has what a safe unattended run needs (image,
#    schedule, Forbid, deadline, serviceAccountName, non-root, resources, mounts, --yes and a cap),
#    the Role grants nothing (prune-dormant calls no Kubernetes API), the Containerfile has two
#    debian:12-slim stages whose packages exist in Debian and match the manifest / the binary's needs.
# 2. The objects are created with python3-kubernetes (create_from_yaml) on the fake API server.
# 3. runbook's in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT and a service account
#    directory) against the fake: `runbook exec` lists pods as the service account.
# 4. The CronJob's own command (the image's ENTRYPOINT + the manifest's args and env) runs as the
#    pod would, in bubblewrap: read-only root, the Secret, ConfigMap and journal volumes at their
#    mount paths; against a real JupyterHub it deletes exactly max_actions dormant users a run.
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
py_checks "$D" "$TOP/vendor/debian-packages.txt" <<'PYEOF'
import glob, os, re, shlex, sys, yaml
deploy, manifest = sys.argv[1], sys.argv[2]
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
pvc, cm, secret = one("PersistentVolumeClaim"), one("ConfigMap"), one("Secret")
check("ClusterRole" not in docs and "ClusterRoleBinding" not in docs, "no ClusterRole or ClusterRoleBinding")

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
check(pod.get("automountServiceAccountToken") is False and sa.get("automountServiceAccountToken") is False,
      "no API token mounted (pod and ServiceAccount)")
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
params = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-p", "--param")]
caps = [int(p.split("=", 1)[1]) for p in params if p.startswith("max_actions=") and p.split("=", 1)[1].isdigit()]
check(len(caps) == 1 and caps[0] >= 1, "args cap the run: -p max_actions=N, N >= 1", params)
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

# RBAC: the Role grants what prune-dormant calls on the Kubernetes API, which is nothing.
JUSTIFIED = []   # (apiGroups, resources, verbs, resourceNames) tuples, each with a reason in rbac.yaml
rules = role.get("rules") or []
unjustified = [r for r in rules
               if (tuple(r.get("apiGroups", [])), tuple(r.get("resources", [])), tuple(r.get("verbs", [])),
                   tuple(r.get("resourceNames", []))) not in JUSTIFIED]
check(not unjustified, "the Role grants no verb beyond the justified ones (none)", unjustified)
check(binding.get("roleRef", {}).get("kind") == "Role" and binding["roleRef"].get("name") == role["metadata"]["name"],
      "the RoleBinding binds that Role")
check(binding.get("subjects") == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"]}],
      "  to the ServiceAccount only")

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
# RoleBindings and PersistentVolumeClaims as generic objects (no controller runs them).
cat > "$SCRATCH/fake-with-batch.py" <<PYEOF
import runpy, sys
sys.dont_write_bytecode = True
sys.path.insert(0, "$TOP/tests/fake-k8s")
from fakek8s import resources
from fakek8s.resources import ResourceType
for rt in (ResourceType("batch", "v1", "cronjobs", "CronJob", singular="cronjob", short_names=("cj",), generation=True),
           ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", singular="role"),
           ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", singular="rolebinding"),
           ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", singular="persistentvolumeclaim",
                        short_names=("pvc",))):
    resources.RESOURCE_TYPES.append(rt)
    resources.BY_PATH[(rt.group, rt.version, rt.plural)] = rt
    resources.BY_KEY[rt.key] = rt
    resources.BY_KIND[(rt.api_version, rt.kind)] = rt
sys.argv[0] = "$TOP/tests/fake-k8s/server.py"
runpy.run_path(sys.argv[0], run_name="__main__")
PYEOF
FAKE_K8S_SERVER="$SCRATCH/fake-with-batch.py"
"$PY" "$TOP/tests/fake-k8s/make-seed.py" "$SCRATCH/seed" >/dev/null
fake_k8s_start "$SCRATCH/k8s" "$SCRATCH/seed/seed.json" --sa-namespace hub-a
ok $? "the fake API server is up"
py_checks "$D" "$KUBECONFIG_FILE" <<'PYEOF'
import glob, json, os, sys, yaml
from kubernetes import client, config, utils
deploy, kubeconfig = sys.argv[1], sys.argv[2]
def check(cond, desc, why=""):
    print("%s\t%s\t%s" % ("ok" if cond else "not ok", desc, str(why).replace("\n", " ")[:300]))
api = config.new_client_from_config(config_file=kubeconfig, context="token")
client.CoreV1Api(api).create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "jhub"}})
# The Secret first, as `kubectl create secret` would make it; then what kustomization.yaml lists.
files = ["hub-token-secret.template.yaml"] + yaml.safe_load(open(deploy + "/kustomization.yaml"))["resources"]
for f in files:
    try:
        created = utils.create_from_yaml(api, os.path.join(deploy, f), namespace="jhub")
        check(True, "create_from_yaml %s" % f)
    except Exception as e:  # FailToCreateError carries the API's answers
        check(False, "create_from_yaml %s" % f, e)
def raw(path):
    resp = api.call_api(path, "GET", auth_settings=["BearerToken"], _preload_content=False)[0]
    return json.loads(resp.data)
manifest = yaml.safe_load(open(deploy + "/cronjob.yaml"))
cj = client.BatchV1Api(api).read_namespaced_cron_job("runbook-prune-dormant", "jhub")
check(cj.spec.concurrency_policy == "Forbid" and cj.spec.schedule == manifest["spec"]["schedule"],
      "the CronJob reads back (typed API): schedule, Forbid")
pod = cj.spec.job_template.spec.template.spec
check(pod.containers[0].args == manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"],
      "  its args")
check(pod.security_context.run_as_non_root is True and pod.service_account_name == "runbook-prune-dormant",
      "  runAsNonRoot, serviceAccountName")
stored = raw("/apis/batch/v1/namespaces/jhub/cronjobs/runbook-prune-dormant")
check(stored["spec"].get("timeZone") == "Etc/UTC", "  the API kept every field (timeZone)")
role = client.RbacAuthorizationV1Api(api).read_namespaced_role("runbook-prune-dormant", "jhub")
check(not role.rules, "the Role reads back with no rules")
rb = client.RbacAuthorizationV1Api(api).read_namespaced_role_binding("runbook-prune-dormant", "jhub")
check(rb.role_ref.name == "runbook-prune-dormant" and [s.name for s in rb.subjects] == ["runbook-prune-dormant"],
      "the RoleBinding reads back")
sa = client.CoreV1Api(api).read_namespaced_service_account("runbook-prune-dormant", "jhub")
check(sa.automount_service_account_token is False, "the ServiceAccount reads back, no token automount")
check(client.CoreV1Api(api).read_namespaced_config_map("runbook-policy", "jhub").data.get("policy.lua"),
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

# --- 4. the CronJob's command, run as the pod would run it ---
fake_k8s_stop "$SCRATCH/k8s" "$FAKE_K8S_PID"
command -v jupyterhub >/dev/null || { ok 1 "jupyterhub is installed (make deps)"; done_testing; exit; }
H="$SCRATCH/hub"
hub_start "$H" >/dev/null 2>&1; ok $? "a JupyterHub is up"
hub_seed "$H" --generate old:203:-200d --generate new:3 --via-db --user staffer,boss --activity staffer=-300d \
  --activity boss=-300d --admin boss --group staff=staffer >/dev/null 2>&1
ok $? "  with 203 dormant users, 3 new ones, a dormant admin and a dormant member of staff"
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
is "$(ls "$POD"/volumes/journal/journal/ | wc -l)" 2 "  a journal a run"
hub_stop "$H" >/dev/null 2>&1

done_testing
