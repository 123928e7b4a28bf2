"""Loading a seed document: namespaces, full objects, and convenience workloads with volume files.

See README.md for the format. Everything goes through the same create path as API
requests (defaults, validation), so a seed cannot build a state the API could not.
"""

import base64
import copy
import os
import re
import shutil

from . import errors, patching, resources

NS = resources.BY_KEY[("", "namespaces")]


class SeedError(Exception):
    pass


def write_volume_file(fs, spec, base_dir):
    """A file in a volume: {"volume", "path", one of "content" | "base64" | "copy", optional "mode"}."""
    volume_dir = fs.volume_dir(fs.volume_for_name(spec["volume"], spec.get("namespace")))
    target = os.path.normpath(os.path.join(volume_dir, spec["path"].lstrip("/")))
    if not target.startswith(volume_dir + os.sep):
        raise SeedError("file path escapes its volume: %r" % spec["path"])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if "copy" in spec:
        source = spec["copy"] if os.path.isabs(spec["copy"]) else os.path.join(base_dir, spec["copy"])
        shutil.copyfile(source, target)
    elif "base64" in spec:
        with open(target, "wb") as f:
            f.write(base64.b64decode(spec["base64"]))
    else:
        with open(target, "w") as f:
            f.write(spec.get("content", ""))
    if "mode" in spec:
        os.chmod(target, int(str(spec["mode"]), 8))
    return target


def _volume_name(claim, index):
    return claim if re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", claim) and len(claim) <= 63 else "vol-%d" % index


def _containers(entry):
    """Containers of a convenience workload: "containers": [...] or "container"/"image"/"env"/"command"."""
    containers = copy.deepcopy(entry.get("containers")) or [{"name": entry.get("container", "main")}]
    for c in containers:
        c.setdefault("image", entry.get("image", "registry.example/fake:1.0"))
        env = c.get("env", entry.get("env") if c is containers[0] else None)
        if isinstance(env, dict):
            c["env"] = [{"name": k, "value": str(v)} for k, v in env.items()]
        elif env:
            c["env"] = env
        for key in ("command", "args", "workingDir"):
            if key in entry and c is containers[0]:
                c.setdefault(key, entry[key])
    return containers


def pod_spec(entry):
    """A pod spec with PVC-backed volumes for {"mountPath", "volume"[, "container", "readOnly"]} entries."""
    containers = _containers(entry)
    volumes = []
    for index, mount in enumerate(entry.get("volumes", [])):
        name = _volume_name(mount["volume"], index)
        volumes.append({"name": name, "persistentVolumeClaim": {"claimName": mount["volume"]}})
        for c in containers:
            if mount.get("container", c["name"]) == c["name"]:
                vm = {"name": name, "mountPath": mount["mountPath"]}
                if mount.get("readOnly"):
                    vm["readOnly"] = True
                c.setdefault("volumeMounts", []).append(vm)
    spec = {"containers": containers}
    if volumes:
        spec["volumes"] = volumes
    if entry.get("terminationGracePeriodSeconds") is not None:
        spec["terminationGracePeriodSeconds"] = entry["terminationGracePeriodSeconds"]
    return spec


def deployment_object(entry):
    labels = entry.get("labels") or {"app": entry["name"]}
    spec = {
        "replicas": entry.get("replicas", 1),
        "selector": {"matchLabels": entry.get("selector") or labels},
        "template": {"metadata": {"labels": labels}, "spec": pod_spec(entry)},
    }
    if entry.get("annotations"):
        spec["template"]["metadata"]["annotations"] = entry["annotations"]
    if entry.get("strategy"):
        spec["strategy"] = {"type": entry["strategy"]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": entry["name"], "namespace": entry["namespace"],
                         "labels": entry.get("deploymentLabels", labels)},
            "spec": spec}


def pod_object(entry):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": entry["name"], "namespace": entry["namespace"],
                         "labels": entry.get("labels") or {}},
            "spec": pod_spec(entry)}


def namespace_object(entry):
    if isinstance(entry, str):
        entry = {"name": entry}
    meta = {"name": entry["name"]}
    for key in ("labels", "annotations"):
        if entry.get(key):
            meta[key] = entry[key]
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def upsert(store, obj):
    """Create, or replace unconditionally if it exists (a seed describes the wanted state)."""
    rt = resources.for_object(obj)
    if rt is None:
        raise SeedError("unsupported apiVersion/kind %s/%s" % (obj.get("apiVersion"), obj.get("kind")))
    namespace = obj.get("metadata", {}).get("namespace", "default") if rt.namespaced else ""
    try:
        return store.create(rt, namespace, obj)
    except errors.ApiError as e:
        if e.reason != "AlreadyExists":
            raise SeedError("%s %s: %s" % (obj["kind"], obj["metadata"].get("name"), e.message))
    replacement = copy.deepcopy(obj)
    replacement["metadata"].pop("resourceVersion", None)
    if rt.plural in ("persistentvolumeclaims", "persistentvolumes", "storageclasses"):
        # What the controllers added (volumeName, claimRef, bind annotations) must survive, and a claim's
        # spec is immutable: merge the seed's object into the stored one, as `kubectl apply` would.
        replacement.pop("status", None)
        try:
            return store.patch(rt, namespace, obj["metadata"]["name"], patching.MERGE_PATCH, replacement)
        except errors.ApiError as e:
            raise SeedError("%s %s: %s" % (obj["kind"], obj["metadata"].get("name"), e.message))
    return store.update(rt, namespace, obj["metadata"]["name"], replacement)


def load(store, controllers, fs, seed, base_dir):
    """Apply a seed document; returns a summary of what was loaded."""
    loaded = {"namespaces": 0, "objects": 0, "deployments": 0, "pods": 0, "files": 0}
    for entry in seed.get("namespaces", []):
        upsert(store, namespace_object(entry))
        loaded["namespaces"] += 1
    objects = seed.get("objects", [])
    # Namespaces first, then classes and volumes before the claims that use them (the admission plugin
    # gives a claim the default class only if that class exists when the claim is created).
    order = {"Namespace": 0, "StorageClass": 1, "PersistentVolume": 2}
    for obj in sorted(objects, key=lambda o: order.get(o.get("kind"), 3)):
        upsert(store, obj)
        loaded["objects"] += 1
    controllers.settle_volumes()
    for entry in seed.get("deployments", []):
        upsert(store, deployment_object(entry))
        for spec in entry.get("files", []):
            write_volume_file(fs, spec, base_dir)
            loaded["files"] += 1
        loaded["deployments"] += 1
    for entry in seed.get("pods", []):
        pod = upsert(store, pod_object(entry))
        for spec in entry.get("files", []):
            write_volume_file(fs, spec, base_dir)
            loaded["files"] += 1
        if entry.get("state"):
            controllers.pod_overrides[pod["metadata"]["uid"]] = entry["state"]
        loaded["pods"] += 1
    for spec in seed.get("files", []):
        write_volume_file(fs, spec, base_dir)
        loaded["files"] += 1
    return loaded
