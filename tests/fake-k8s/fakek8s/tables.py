"""Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` asks for in its Accept header."""

import time

from . import defaults, storage


def wants_table(accept):
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def age(obj):
    try:
        seconds = max(0, int(time.time() - defaults.parse_rfc3339(obj["metadata"]["creationTimestamp"])))
    except (KeyError, ValueError):
        return "<unknown>"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size or (unit == "m" and seconds >= size):
            return "%d%s" % (seconds // size, unit)
    return "%ds" % seconds


def _pod_cells(pod):
    statuses = pod.get("status", {}).get("containerStatuses", [])
    ready = sum(1 for c in statuses if c.get("ready"))
    reason = pod.get("status", {}).get("phase", "Unknown")
    for c in statuses:
        waiting = c.get("state", {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restarts = sum(c.get("restartCount", 0) for c in statuses)
    return ["%d/%d" % (ready, len(pod["spec"].get("containers", []))), reason, restarts]


def _claim_cells(pvc):
    """printPersistentVolumeClaim: Status Volume Capacity Access Modes StorageClass VolumeAttributesClass."""
    status = pvc.get("status") or {}
    phase = "Terminating" if pvc["metadata"].get("deletionTimestamp") else status.get("phase", "")
    bound = bool(pvc["spec"].get("volumeName"))
    return [phase, pvc["spec"].get("volumeName", ""),
            (status.get("capacity") or {}).get("storage", "") if bound else "",
            storage.access_modes_text(status.get("accessModes")) if bound else "",
            storage.claim_class(pvc), pvc["spec"].get("volumeAttributesClassName") or "<unset>"]


def _volume_cells(pv):
    """printPersistentVolume: Capacity Access Modes Reclaim Policy Status Claim StorageClass
    VolumeAttributesClass Reason."""
    spec, status = pv["spec"], pv.get("status") or {}
    ref = spec.get("claimRef")
    phase = "Terminating" if pv["metadata"].get("deletionTimestamp") else status.get("phase", "")
    return [(spec.get("capacity") or {}).get("storage", ""), storage.access_modes_text(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", ""), phase,
            "%s/%s" % (ref.get("namespace", ""), ref.get("name", "")) if ref else "",
            storage.volume_class(pv), spec.get("volumeAttributesClassName") or "<unset>", status.get("reason", "")]


def _class_cells(sc):
    return [sc.get("provisioner", ""), sc.get("reclaimPolicy", "Delete"), sc.get("volumeBindingMode", "Immediate"),
            bool(sc.get("allowVolumeExpansion"))]


def _class_name(sc):
    return sc["metadata"]["name"] + (" (default)" if storage.is_default_class(sc) else "")


COLUMNS = {
    "persistentvolumeclaims": (["Status", "Volume", "Capacity", "Access Modes", "StorageClass",
                                "VolumeAttributesClass"], _claim_cells),
    "persistentvolumes": (["Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass",
                           "VolumeAttributesClass", "Reason"], _volume_cells),
    "storageclasses": (["Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion"], _class_cells),
    "pods": (["Ready", "Status", "Restarts"], _pod_cells),
    "deployments": (["Ready", "Up-to-date", "Available"], lambda d: [
        "%d/%d" % (d.get("status", {}).get("readyReplicas", 0), d["spec"].get("replicas", 1)),
        d.get("status", {}).get("updatedReplicas", 0), d.get("status", {}).get("availableReplicas", 0)]),
    "namespaces": (["Status"], lambda n: [n.get("status", {}).get("phase", "Active")]),
    "secrets": (["Type", "Data"], lambda s: [s.get("type", "Opaque"), len(s.get("data") or {})]),
    "configmaps": (["Data"], lambda c: [len(c.get("data") or {}) + len(c.get("binaryData") or {})]),
}


def table(rt, items, list_meta, include_object):
    extra, cells = COLUMNS.get(rt.plural, ([], lambda o: []))
    columns = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    columns += [{"name": c, "type": "string", "format": "", "description": c, "priority": 0} for c in extra]
    columns.append({"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0})
    rows = []
    for obj in items:
        name = _class_name(obj) if rt.plural == "storageclasses" else obj["metadata"]["name"]
        row = {"cells": [name] + cells(obj) + [age(obj)]}
        if include_object == "Object":
            row["object"] = dict(obj, apiVersion=rt.api_version, kind=rt.kind)
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj["metadata"]}
        rows.append(row)
    meta = dict(list_meta) if list_meta else {"resourceVersion": items[0]["metadata"].get("resourceVersion", "")}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns,
            "rows": rows}
