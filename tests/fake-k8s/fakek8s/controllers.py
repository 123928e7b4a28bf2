"""The controllers a real cluster runs behind the apiserver, reduced to what clients observe.

- scheduler + kubelet: pods get a node and an IP, go Pending -> Running/Ready after
  pod_start_seconds, and a graceful delete removes them after min(grace, pod_stop_seconds);
- deployment controller: one ReplicaSet per pod template (pod-template-hash), rolling
  updates with maxSurge/maxUnavailable (or Recreate), the status fields and conditions
  `kubectl rollout status` reads;
- replicaset controller: keeps spec.replicas pods, replacing deleted ones;
- garbage collector: ownerReferences with Background, Foreground and Orphan propagation;
- namespace controller: a Terminating namespace is emptied then removed after
  namespace_termination_seconds (unless a test makes it hang);
- Gafaelfawr operator: a GafaelfawrIngress produces the Ingress it templates;
- volume controllers (pvcontroller.py): claims bind to volumes or get one provisioned,
  volumes are reclaimed, protection finalizers, and pods wait for their claims.

All of it runs in one thread that reconciles everything every TICK seconds under the
store's lock; it only writes objects whose content changes, so resourceVersions do
not churn.
"""

import copy
import hashlib
import json
import math
import threading
import time

from . import defaults, resources
from .pvcontroller import VolumeControllers
from .selectors import labels_match
from .store import random_suffix

TICK = 0.05
NS = resources.BY_KEY[("", "namespaces")]
PODS = resources.BY_KEY[("", "pods")]
DEPLOYMENTS = resources.BY_KEY[("apps", "deployments")]
REPLICASETS = resources.BY_KEY[("apps", "replicasets")]
INGRESSES = resources.BY_KEY[("networking.k8s.io", "ingresses")]
GAFAELFAWR = resources.BY_KEY[("gafaelfawr.lsst.io", "gafaelfawringresses")]
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"


def template_hash(template):
    """A stable 10-character hash in the alphabet the real controller uses (rand.SafeEncodeString)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:10])


def resolve_int_or_percent(value, total, round_up):
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100.0
        return int(math.ceil(exact) if round_up else math.floor(exact))
    return int(value or 0)


def condition(ctype, status, reason=None, message=None, old=None, probe=False):
    """A condition that keeps its lastTransitionTime while its status does not change."""
    now = defaults.rfc3339()
    previous = next((c for c in (old or []) if c.get("type") == ctype), None)
    cond = {"type": ctype, "status": status}
    if probe:
        cond["lastProbeTime"] = None
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    unchanged = previous and previous.get("status") == status
    cond["lastTransitionTime"] = previous.get("lastTransitionTime", now) if unchanged else now
    if not probe:
        same_text = unchanged and previous.get("reason") == reason and previous.get("message") == message
        cond["lastUpdateTime"] = previous.get("lastUpdateTime", now) if same_text else now
    return cond


def owner_ref(owner, controller=True):
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": True}


def owned_by(obj, owner):
    uid = owner["metadata"]["uid"]
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences", []))


def is_ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))


class Settings:
    def __init__(self, pod_start_seconds=0.5, pod_stop_seconds=0.5, namespace_termination_seconds=1.0,
                 node_name="fake-node-1"):
        self.pod_start_seconds = pod_start_seconds
        self.pod_stop_seconds = pod_stop_seconds
        self.namespace_termination_seconds = namespace_termination_seconds
        self.node_name = node_name


class Controllers:
    def __init__(self, store, settings, log=None, fs=None):
        self.store = store
        self.settings = settings
        self.log = log or (lambda *a: None)
        self.volumes = VolumeControllers(store, settings, self.log, fs)
        self.pod_overrides = {}          # pod uid -> state forced by the control API (CrashLoop, not Ready...)
        self.pod_rules = []              # (namespace, label requirements, state) applied to matching pods, new ones too
        self.hung_namespaces = set()     # namespaces whose termination never completes
        self.first_seen = {}             # uid -> monotonic time the kubelet first saw a pod / ns termination
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="controllers", daemon=True)
        self.pod_ip = 0

    def start(self):
        self.thread.start()

    def stop(self):
        self.stop_event.set()
        self.thread.join(timeout=2)

    def _run(self):
        while not self.stop_event.wait(TICK):
            try:
                with self.store.lock:
                    self.reconcile()
            except Exception as e:  # a controller bug must not kill the fake; it shows in server.log
                self.log("controller error: %r" % (e,))
                import traceback
                self.log(traceback.format_exc())

    def reconcile(self):
        self._namespaces()
        self._garbage_collect()
        self._gafaelfawr()
        self.volumes.reconcile()
        for deployment in self.store.all(DEPLOYMENTS):
            self._deployment(deployment)
        for rs in self.store.all(REPLICASETS):
            self._replicaset(rs)
        for pod in self.store.all(PODS):
            self._kubelet(pod)

    # ------------------------------------------------------------ helpers

    def _save(self, rt, obj):
        """Store obj if it differs from what is stored (controllers must not churn resourceVersions)."""
        meta = obj["metadata"]
        current = self.store.peek(rt, meta.get("namespace", ""), meta["name"])
        if current is not None and current == obj:
            return current
        return self.store.set_object(rt, copy.deepcopy(obj))

    def _since_first_seen(self, key):
        now = time.monotonic()
        return now - self.first_seen.setdefault(key, now)

    def _delete_pod(self, pod):
        if not pod["metadata"].get("deletionTimestamp"):
            self.store.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], {})

    # ------------------------------------------------------------ namespaces

    def _namespaces(self):
        for ns in self.store.all(NS):
            if not ns["metadata"].get("deletionTimestamp"):
                continue
            name = ns["metadata"]["name"]
            elapsed = self._since_first_seen(("ns", ns["metadata"]["uid"]))
            for pod in self.store.all(PODS, name):
                self._delete_pod(pod)
            if name in self.hung_namespaces or elapsed < self.settings.namespace_termination_seconds:
                if name in self.hung_namespaces:
                    self._mark_hung(ns)
                continue
            for rt in resources.RESOURCE_TYPES:
                if rt.namespaced:
                    for obj in self.store.all(rt, name):
                        self.store.remove(rt, name, obj["metadata"]["name"])
            self.store.remove(NS, "", name)
            self.log("namespace %s terminated" % name)

    def _mark_hung(self, ns):
        updated = copy.deepcopy(ns)
        old = ns.get("status", {}).get("conditions", [])
        updated["status"]["conditions"] = [
            condition("NamespaceContentRemaining", "True", "SomeResourcesRemain",
                      "Some resources are remaining: pods. has 1 resource instances", old, probe=True),
            condition("NamespaceFinalizersRemaining", "True", "SomeFinalizersRemain",
                      "Some content in the namespace has finalizers remaining: fake.example.com/hang in 1 "
                      "resource instances", old, probe=True),
        ]
        for cond in updated["status"]["conditions"]:
            cond.pop("lastProbeTime", None)
        self._save(NS, updated)

    # ------------------------------------------------------------ garbage collector

    def _garbage_collect(self):
        everything = [(rt, obj) for rt in resources.RESOURCE_TYPES for obj in self.store.all(rt)]
        uids = {obj["metadata"]["uid"]: (rt, obj) for rt, obj in everything}
        dependents = {}
        for rt, obj in everything:
            for ref in obj["metadata"].get("ownerReferences", []):
                dependents.setdefault(ref.get("uid"), []).append((rt, obj))
        for rt, obj in everything:
            refs = obj["metadata"].get("ownerReferences", [])
            if refs and not any(ref.get("uid") in uids for ref in refs):
                self._delete_dependent(rt, obj)
        for uid, (rt, owner) in uids.items():
            finalizers = owner["metadata"].get("finalizers") or []
            if not owner["metadata"].get("deletionTimestamp") or rt is NS:
                continue
            if "orphan" in finalizers:
                for drt, dep in dependents.get(uid, []):
                    updated = copy.deepcopy(dep)
                    updated["metadata"]["ownerReferences"] = [r for r in dep["metadata"]["ownerReferences"]
                                                              if r.get("uid") != uid]
                    if not updated["metadata"]["ownerReferences"]:
                        del updated["metadata"]["ownerReferences"]
                    self._save(drt, updated)
                self._remove_finalizer(rt, owner, "orphan")
            elif "foregroundDeletion" in finalizers:
                remaining = dependents.get(uid, [])
                for drt, dep in remaining:
                    self._delete_dependent(drt, dep, foreground=True)
                if not remaining:
                    self._remove_finalizer(rt, owner, "foregroundDeletion")

    def _delete_dependent(self, rt, obj, foreground=False):
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return
        if rt is PODS:
            self._delete_pod(obj)
        else:
            options = {"propagationPolicy": "Foreground"} if foreground else {}
            self.store.delete(rt, meta.get("namespace", ""), meta["name"], options)

    def _remove_finalizer(self, rt, obj, finalizer):
        updated = copy.deepcopy(obj)
        updated["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != finalizer]
        if updated["metadata"]["finalizers"]:
            self._save(rt, updated)
        else:
            self.store.remove(rt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    # ------------------------------------------------------------ Gafaelfawr operator

    def _gafaelfawr(self):
        for gi in self.store.all(GAFAELFAWR):
            if gi["metadata"].get("deletionTimestamp"):
                continue
            template = gi.get("template") or {}
            name = (template.get("metadata") or {}).get("name")
            if not name:
                continue
            namespace = gi["metadata"]["namespace"]
            annotations = dict((template.get("metadata") or {}).get("annotations") or {})
            scopes = ((gi.get("config") or {}).get("scopes") or {}).get("all") or []
            annotations["nginx.ingress.kubernetes.io/auth-method"] = "GET"
            annotations["nginx.ingress.kubernetes.io/auth-url"] = (
                "http://gafaelfawr.gafaelfawr.svc.cluster.local:8080/ingress/auth?"
                + "&".join("scope=" + s for s in scopes))
            current = self.store.peek(INGRESSES, namespace, name)
            ingress = copy.deepcopy(current) if current else {
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": name, "namespace": namespace}, "status": {"loadBalancer": {}}}
            ingress["metadata"]["labels"] = dict((template.get("metadata") or {}).get("labels") or {})
            ingress["metadata"]["annotations"] = annotations
            ingress["metadata"]["ownerReferences"] = [owner_ref(gi)]
            ingress["spec"] = copy.deepcopy(template.get("spec") or {})
            self._save(INGRESSES, ingress)

    # ------------------------------------------------------------ deployments

    def _owned(self, rt, owner):
        return [o for o in self.store.all(rt, owner["metadata"]["namespace"]) if owned_by(o, owner)]

    def _deployment(self, deployment):
        if deployment["metadata"].get("deletionTimestamp"):
            return
        spec = deployment["spec"]
        rss = self._owned(REPLICASETS, deployment)
        template_for_hash = copy.deepcopy(spec["template"])
        pod_hash = template_hash(template_for_hash)
        new_rs = next((rs for rs in rss if rs["metadata"].get("labels", {}).get(HASH_LABEL) == pod_hash), None)
        old_rss = [rs for rs in rss if rs is not new_rs]
        if spec.get("paused"):
            self._deployment_status(deployment, new_rs, rss, paused=True)
            return
        created = False
        if new_rs is None:
            new_rs = self._create_replicaset(deployment, pod_hash, rss)
            created = True
        else:
            self._ensure_latest_revision(deployment, new_rs, rss)
        desired = spec.get("replicas", 1)
        if spec.get("strategy", {}).get("type") == "Recreate":
            self._recreate(deployment, new_rs, old_rss, desired)
        else:
            self._rolling_update(deployment, new_rs, old_rss, desired)
        self._cleanup_history(deployment, old_rss)
        self._deployment_status(deployment, self.store.peek(REPLICASETS, new_rs["metadata"]["namespace"],
                                                            new_rs["metadata"]["name"]),
                                self._owned(REPLICASETS, deployment), created=created)

    @staticmethod
    def _revision(obj):
        return int(obj["metadata"].get("annotations", {}).get(REVISION, "0") or 0)

    def _create_replicaset(self, deployment, pod_hash, rss):
        meta = deployment["metadata"]
        template = copy.deepcopy(deployment["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        revision = max([self._revision(rs) for rs in rss] + [0]) + 1
        rs = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "%s-%s" % (meta["name"], pod_hash), "namespace": meta["namespace"],
                         "labels": dict(template["metadata"]["labels"]),
                         "annotations": {REVISION: str(revision),
                                         "deployment.kubernetes.io/desired-replicas":
                                             str(deployment["spec"].get("replicas", 1)),
                                         "deployment.kubernetes.io/max-replicas":
                                             str(deployment["spec"].get("replicas", 1) + 1)},
                         "ownerReferences": [owner_ref(deployment)]},
            "spec": {"replicas": 0, "selector": selector, "template": template,
                     "minReadySeconds": deployment["spec"].get("minReadySeconds", 0)},
            "status": {"replicas": 0},
        }
        self.log("deployment %s/%s: new replicaset %s (revision %d)"
                 % (meta["namespace"], meta["name"], rs["metadata"]["name"], revision))
        self.store.set_object(REPLICASETS, rs)
        return self.store.peek(REPLICASETS, meta["namespace"], rs["metadata"]["name"])

    def _ensure_latest_revision(self, deployment, new_rs, rss):
        """Rolling back to an old template makes its ReplicaSet the newest revision again."""
        latest = max([self._revision(rs) for rs in rss] + [0])
        if self._revision(new_rs) < latest:
            updated = copy.deepcopy(new_rs)
            updated["metadata"].setdefault("annotations", {})[REVISION] = str(latest + 1)
            self._save(REPLICASETS, updated)

    def _scale(self, rs, replicas):
        if rs["spec"].get("replicas") != replicas:
            updated = copy.deepcopy(rs)
            updated["spec"]["replicas"] = replicas
            self._save(REPLICASETS, updated)

    def _pods_of(self, rs, active_only=True):
        pods = self._owned(PODS, rs)
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")] if active_only else pods

    def _recreate(self, deployment, new_rs, old_rss, desired):
        for rs in old_rss:
            self._scale(rs, 0)
        if any(self._pods_of(rs, active_only=False) for rs in old_rss):
            return  # Recreate waits until every old pod is gone
        self._scale(new_rs, desired)

    def _rolling_update(self, deployment, new_rs, old_rss, desired):
        rolling = deployment["spec"].get("strategy", {}).get("rollingUpdate", {})
        max_surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), desired, True)
        max_unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", "25%"), desired, False)
        if max_surge == 0 and max_unavailable == 0:
            max_unavailable = 1
        all_rss = [new_rs] + old_rss
        total = sum(rs["spec"].get("replicas", 0) for rs in all_rss)
        # Scale up the new ReplicaSet within the surge budget.
        new_replicas = new_rs["spec"].get("replicas", 0)
        if new_replicas > desired:
            self._scale(new_rs, desired)
        elif new_replicas < desired:
            room = desired + max_surge - total
            if room > 0:
                self._scale(new_rs, min(desired, new_replicas + room))
        new_rs = self.store.peek(REPLICASETS, new_rs["metadata"]["namespace"], new_rs["metadata"]["name"])
        # Scale down old ReplicaSets without going below minAvailable.
        total = sum(self.store.peek(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])
                    ["spec"].get("replicas", 0) for rs in all_rss)
        min_available = desired - max_unavailable
        new_ready = sum(1 for p in self._pods_of(new_rs) if is_ready(p))
        new_unavailable = new_rs["spec"].get("replicas", 0) - new_ready
        budget = total - min_available - new_unavailable
        for rs in sorted(old_rss, key=self._revision):
            if budget <= 0:
                break
            replicas = rs["spec"].get("replicas", 0)
            cut = min(replicas, budget)
            if cut > 0:
                self._scale(rs, replicas - cut)
                budget -= cut

    def _cleanup_history(self, deployment, old_rss):
        limit = deployment["spec"].get("revisionHistoryLimit", 10)
        idle = sorted([rs for rs in old_rss if rs["spec"].get("replicas", 0) == 0
                       and not self._pods_of(rs, active_only=False)], key=self._revision)
        for rs in idle[:max(0, len(idle) - limit)]:
            self.store.remove(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _deployment_status(self, deployment, new_rs, rss, created=False, paused=False):
        desired = deployment["spec"].get("replicas", 1)
        pods = [p for rs in rss for p in self._pods_of(rs)]
        new_pods = self._pods_of(new_rs) if new_rs else []
        ready = sum(1 for p in pods if is_ready(p))
        total_spec = sum(rs["spec"].get("replicas", 0) for rs in rss)
        rolling = deployment["spec"].get("strategy", {}).get("rollingUpdate", {})
        max_unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", "25%"), desired, False)
        old_status = deployment.get("status", {})
        old_conditions = old_status.get("conditions", [])
        status = {"observedGeneration": deployment["metadata"].get("generation", 1)}
        counts = {"replicas": len(pods), "updatedReplicas": len(new_pods), "readyReplicas": ready,
                  "availableReplicas": ready, "unavailableReplicas": max(0, total_spec - ready)}
        status.update({k: v for k, v in counts.items() if v})  # the real status omits zero counts
        if ready >= desired - max_unavailable:
            available = condition("Available", "True", "MinimumReplicasAvailable",
                                  "Deployment has minimum availability.", old_conditions)
        else:
            available = condition("Available", "False", "MinimumReplicasUnavailable",
                                  "Deployment does not have minimum availability.", old_conditions)
        rs_name = new_rs["metadata"]["name"] if new_rs else deployment["metadata"]["name"]
        complete = (len(new_pods) == desired and len(pods) == desired and ready == desired
                    and sum(1 for p in new_pods if is_ready(p)) == desired)
        previous = next((c for c in old_conditions if c["type"] == "Progressing"), None)
        if paused:
            progressing = condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused",
                                    old_conditions)
        elif complete:
            progressing = condition("Progressing", "True", "NewReplicaSetAvailable",
                                    'ReplicaSet "%s" has successfully progressed.' % rs_name, old_conditions)
        elif created:
            progressing = condition("Progressing", "True", "NewReplicaSetCreated",
                                    'Created new replica set "%s"' % rs_name, old_conditions)
        else:
            progressing = self._progressing(deployment, rs_name, counts, old_status, previous, old_conditions)
        status["conditions"] = [available, progressing]
        updated = copy.deepcopy(deployment)
        updated["status"] = status
        if new_rs is not None:
            updated["metadata"].setdefault("annotations", {})[REVISION] = str(self._revision(new_rs))
        self._save(DEPLOYMENTS, updated)

    def _progressing(self, deployment, rs_name, counts, old_status, previous, old_conditions):
        moved = any(old_status.get(k, 0) != v for k, v in counts.items())
        if moved or previous is None or previous.get("reason") == "NewReplicaSetAvailable":
            cond = condition("Progressing", "True", "ReplicaSetUpdated",
                             'ReplicaSet "%s" is progressing.' % rs_name, old_conditions)
            if moved and previous is not None:
                cond["lastUpdateTime"] = defaults.rfc3339()
            return cond
        deadline = deployment["spec"].get("progressDeadlineSeconds", 600)
        last = defaults.parse_rfc3339(previous.get("lastUpdateTime", defaults.rfc3339()))
        if previous.get("reason") != "ProgressDeadlineExceeded" and time.time() - last > deadline:
            return condition("Progressing", "False", "ProgressDeadlineExceeded",
                             'ReplicaSet "%s" has timed out progressing.' % rs_name, old_conditions)
        return copy.deepcopy(previous)

    # ------------------------------------------------------------ replicasets

    def _replicaset(self, rs):
        if rs["metadata"].get("deletionTimestamp"):
            return
        active = self._pods_of(rs)
        want = rs["spec"].get("replicas", 1)
        for _ in range(want - len(active)):
            self._create_pod(rs)
        if len(active) > want:
            # Like the real controller: unscheduled, then not ready, then the newest go first.
            victims = sorted(active, key=lambda p: (is_ready(p), p["metadata"]["creationTimestamp"]))
            for pod in victims[:len(active) - want]:
                self._delete_pod(pod)
        active = self._pods_of(rs)
        ready = sum(1 for p in active if is_ready(p))
        status = {"replicas": len(active), "observedGeneration": rs["metadata"].get("generation", 1)}
        labeled = len(active)
        if labeled:
            status["fullyLabeledReplicas"] = labeled
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        if rs.get("status") != status:
            updated = copy.deepcopy(rs)
            updated["status"] = status
            self._save(REPLICASETS, updated)

    def _create_pod(self, rs):
        template = copy.deepcopy(rs["spec"]["template"])
        meta = template.get("metadata", {})
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "%s-%s" % (rs["metadata"]["name"], random_suffix()),
                         "generateName": rs["metadata"]["name"] + "-", "namespace": rs["metadata"]["namespace"],
                         "labels": meta.get("labels", {}), "ownerReferences": [owner_ref(rs)]},
            "spec": template.get("spec", {}),
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        }
        if meta.get("annotations"):
            pod["metadata"]["annotations"] = meta["annotations"]
        defaults.apply_defaults(PODS, pod, self.store.allocate_ip)
        self.store.set_object(PODS, pod)

    # ------------------------------------------------------------ kubelet

    def override_for(self, pod):
        """The forced state for a pod: by its uid, else the first sticky rule matching its labels."""
        override = self.pod_overrides.get(pod["metadata"]["uid"])
        if override is not None:
            return override
        for namespace, requirements, rule in self.pod_rules:
            if pod["metadata"]["namespace"] == namespace and labels_match(requirements, pod["metadata"].get("labels")):
                return rule
        return None

    def _kubelet(self, pod):
        uid = pod["metadata"]["uid"]
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            self._terminate(pod)
            return
        updated = copy.deepcopy(pod)
        spec, status = updated["spec"], updated.setdefault("status", {})
        if not spec.get("nodeName"):
            blocked = self.volumes.unschedulable(pod)
            if blocked is not None:
                self._unschedulable(updated, blocked)
                return
            spec["nodeName"] = self.settings.node_name
        old_conditions = pod.get("status", {}).get("conditions", [])
        age = self._since_first_seen(("pod", uid))
        override = self.override_for(pod)
        if override:
            self._apply_override(updated, override, old_conditions)
        elif status.get("phase") in (None, "Pending") and age < self.settings.pod_start_seconds:
            self._pending(updated, old_conditions)
        elif status.get("phase") in (None, "Pending", "Running"):
            self._running(updated, old_conditions, ready=True)
        self._save(PODS, updated)

    def _unschedulable(self, pod, message):
        """The scheduler's answer for a pod it cannot place: Pending, PodScheduled False (none while it waits)."""
        status = pod["status"]
        status["phase"] = "Pending"
        status.setdefault("qosClass", "BestEffort")
        if message:
            status["conditions"] = [condition("PodScheduled", "False", "Unschedulable", message,
                                              pod.get("status", {}).get("conditions", []), probe=True)]
        self._save(PODS, pod)

    def settle_volumes(self):
        """Bind and provision now (seeds load before the loop starts, and their files must land in the
        directories of the volumes their claims will use)."""
        with self.store.lock:
            self.volumes.reconcile()

    def _base_status(self, pod, old_conditions, phase, ready, started):
        status = pod["status"]
        status["phase"] = phase
        status["hostIP"] = "10.0.0.10"
        status["hostIPs"] = [{"ip": "10.0.0.10"}]
        status.setdefault("qosClass", "BestEffort")
        status.setdefault("startTime", defaults.rfc3339())
        if started and not status.get("podIP"):
            self.pod_ip += 1
            ip = "10.244.%d.%d" % (self.pod_ip // 250, self.pod_ip % 250 + 2)
            status["podIP"], status["podIPs"] = ip, [{"ip": ip}]
        flag = "True" if ready else "False"
        not_ready = None if ready else "ContainersNotReady"
        names = [c["name"] for c in pod["spec"].get("containers", [])]
        message = None if ready else "containers with unready status: [%s]" % " ".join(names)
        status["conditions"] = [
            condition("PodReadyToStartContainers", "True" if started else "False", old=old_conditions, probe=True),
            condition("Initialized", "True", old=old_conditions, probe=True),
            condition("Ready", flag, not_ready, message, old_conditions, probe=True),
            condition("ContainersReady", flag, not_ready, message, old_conditions, probe=True),
            condition("PodScheduled", "True", old=old_conditions, probe=True),
        ]

    def _container_status(self, pod, container, state, ready, restarts=0, last_state=None):
        old = next((c for c in pod["status"].get("containerStatuses", []) if c["name"] == container["name"]), {})
        image = container.get("image", "")
        container_id = old.get("containerID") or "containerd://" + hashlib.sha256(
            (pod["metadata"]["uid"] + container["name"]).encode()).hexdigest()
        return {"name": container["name"], "state": state, "lastState": last_state or {}, "ready": ready,
                "restartCount": restarts, "image": image,
                "imageID": "%s@sha256:%s" % (image.split(":")[0], hashlib.sha256(image.encode()).hexdigest()),
                "containerID": container_id, "started": "running" in state}

    def _pending(self, pod, old_conditions):
        self._base_status(pod, old_conditions, "Pending", ready=False, started=False)
        pod["status"]["containerStatuses"] = [
            self._container_status(pod, c, {"waiting": {"reason": "ContainerCreating"}}, False)
            for c in pod["spec"].get("containers", [])]
        for c in pod["status"]["containerStatuses"]:
            c.pop("containerID")

    def _running(self, pod, old_conditions, ready):
        self._base_status(pod, old_conditions, "Running", ready=ready, started=True)
        statuses = []
        for c in pod["spec"].get("containers", []):
            old = next((s for s in pod["status"].get("containerStatuses", []) if s["name"] == c["name"]), {})
            started_at = (old.get("state", {}).get("running") or {}).get("startedAt") or defaults.rfc3339()
            statuses.append(self._container_status(pod, c, {"running": {"startedAt": started_at}}, ready))
        pod["status"]["containerStatuses"] = statuses

    def _apply_override(self, pod, override, old_conditions):
        """A state forced by the control API: a phase, readiness, a CrashLoopBackOff..."""
        phase = override.get("phase", "Running")
        ready = bool(override.get("ready", phase == "Running"))
        reason = override.get("reason")
        if reason == "CrashLoopBackOff" or (phase == "Running" and not ready and reason):
            self._base_status(pod, old_conditions, "Running", ready=False, started=True)
            restarts = int(override.get("restartCount", 5))
            statuses = []
            for c in pod["spec"].get("containers", []):
                state = {"waiting": {"reason": reason, "message": override.get(
                    "message", "back-off 5m0s restarting failed container=%s pod=%s_%s(%s)" % (
                        c["name"], pod["metadata"]["name"], pod["metadata"]["namespace"], pod["metadata"]["uid"]))}}
                last = {"terminated": {"exitCode": int(override.get("exitCode", 1)), "reason": "Error",
                                       "startedAt": defaults.rfc3339(), "finishedAt": defaults.rfc3339()}}
                status = self._container_status(pod, c, state, False, restarts, last)
                status["started"] = False
                statuses.append(status)
            pod["status"]["containerStatuses"] = statuses
        elif phase == "Running":
            self._running(pod, old_conditions, ready)
        elif phase == "Pending":
            self._pending(pod, old_conditions)
        else:  # Succeeded / Failed / Unknown
            self._base_status(pod, old_conditions, phase, ready=False, started=True)
            code = int(override.get("exitCode", 0 if phase == "Succeeded" else 1))
            pod["status"]["containerStatuses"] = [
                self._container_status(pod, c, {"terminated": {
                    "exitCode": code, "reason": "Completed" if code == 0 else "Error",
                    "startedAt": defaults.rfc3339(), "finishedAt": defaults.rfc3339()}}, False)
                for c in pod["spec"].get("containers", [])]
        if override.get("message") and phase not in ("Running",):
            pod["status"]["message"] = override["message"]

    def _terminate(self, pod):
        """A pod being deleted: containers stop, then it disappears after min(grace, pod_stop_seconds)."""
        meta = pod["metadata"]
        requested = self.store.delete_requested_at.get(meta["uid"])
        if requested is None:
            requested = self.store.delete_requested_at[meta["uid"]] = time.time()
        wait = min(float(meta.get("deletionGracePeriodSeconds", 30)), self.settings.pod_stop_seconds)
        if time.time() - requested >= wait and not meta.get("finalizers"):
            self.store.remove(PODS, meta["namespace"], meta["name"])
            self.store.delete_requested_at.pop(meta["uid"], None)
            self.first_seen.pop(("pod", meta["uid"]), None)
            self.pod_overrides.pop(meta["uid"], None)
            return
        if is_ready(pod):
            updated = copy.deepcopy(pod)
            old_conditions = pod["status"].get("conditions", [])
            for cond in updated["status"]["conditions"]:
                if cond["type"] in ("Ready", "ContainersReady"):
                    cond.update(condition(cond["type"], "False", "ContainersNotReady",
                                          "containers with unready status: [%s]" % " ".join(
                                              c["name"] for c in pod["spec"].get("containers", [])),
                                          old_conditions, probe=True))
            for cs in updated["status"].get("containerStatuses", []):
                cs["ready"] = False
            self._save(PODS, updated)
