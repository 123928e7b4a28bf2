"""The resource types the fake serves, and the discovery documents describing them."""

from dataclasses import dataclass

SERVER_VERSION = {
    "major": "1", "minor": "31", "gitVersion": "v1.31.4-fake", "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean", "buildDate": "2024-12-10T00:00:00Z", "goVersion": "go1.22.9",
    "compiler": "gc", "platform": "linux/amd64",
}

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple = ()
    singular: str = ""
    status: bool = False            # has a /status subresource (status ignored on the main resource)
    generation: bool = False        # metadata.generation follows spec changes
    return_deleted: bool = False    # DELETE answers the object (ReturnDeletedObject) instead of a Status
    custom: bool = False            # a CRD: no strategic merge patch
    subresources: tuple = ()
    categories: tuple = ()

    @property
    def api_version(self):
        return self.group + "/" + self.version if self.group else self.version

    @property
    def key(self):
        return (self.group, self.plural)


RESOURCE_TYPES = [
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",), singular="namespace",
                 status=True, return_deleted=True, subresources=("status", "finalize")),
    ResourceType("", "v1", "pods", "Pod", short_names=("po",), singular="pod", status=True, return_deleted=True,
                 subresources=("status", "exec", "log"), categories=("all",)),
    ResourceType("", "v1", "secrets", "Secret", singular="secret"),
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=("cm",), singular="configmap"),
    ResourceType("", "v1", "services", "Service", short_names=("svc",), singular="service", status=True,
                 return_deleted=True, subresources=("status",), categories=("all",)),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",), singular="serviceaccount",
                 return_deleted=True),
    ResourceType("apps", "v1", "deployments", "Deployment", short_names=("deploy",), singular="deployment",
                 status=True, generation=True, subresources=("status", "scale"), categories=("all",)),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",), singular="replicaset",
                 status=True, generation=True, subresources=("status", "scale"), categories=("all",)),
    ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",), singular="ingress",
                 status=True, generation=True, subresources=("status",)),
    # Storage (pkg/registry/core/persistentvolume{,claim}, pkg/registry/storage/storageclass): claims and
    # volumes answer DELETE with the object (ReturnDeletedObject), as their OpenAPI says; so do classes.
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",),
                 singular="persistentvolumeclaim", status=True, return_deleted=True, subresources=("status",)),
    ResourceType("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False, short_names=("pv",),
                 singular="persistentvolume", status=True, return_deleted=True, subresources=("status",)),
    ResourceType("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False, short_names=("sc",),
                 singular="storageclass", return_deleted=True),
    ResourceType("gafaelfawr.lsst.io", "v1alpha1", "gafaelfawringresses", "GafaelfawrIngress",
                 singular="gafaelfawringress", generation=True, return_deleted=True, custom=True),
]

BY_PATH = {(rt.group, rt.version, rt.plural): rt for rt in RESOURCE_TYPES}
BY_KEY = {rt.key: rt for rt in RESOURCE_TYPES}
BY_KIND = {(rt.api_version, rt.kind): rt for rt in RESOURCE_TYPES}


def lookup(group, version, plural):
    return BY_PATH.get((group, version, plural))


def for_object(obj):
    """The resource type of a full object, from its apiVersion and kind."""
    return BY_KIND.get((obj.get("apiVersion", ""), obj.get("kind", "")))


def group_versions():
    """{group: [versions]} for the named groups, in registration order."""
    groups = {}
    for rt in RESOURCE_TYPES:
        if rt.group:
            versions = groups.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
    return groups


def api_versions(server_address):
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group(group, versions):
    gvs = [{"groupVersion": group + "/" + v, "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list():
    groups = [api_group(g, vs) for g, vs in group_versions().items()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _subresource_entry(rt, sub):
    verbs = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"],
             "finalize": ["update"], "exec": ["create", "get"], "log": ["get"]}[sub]
    entry = {"name": rt.plural + "/" + sub, "singularName": "", "namespaced": rt.namespaced,
             "kind": rt.kind, "verbs": verbs}
    if sub == "scale":
        entry.update(group="autoscaling", version="v1", kind="Scale")
    if sub == "exec":
        entry["kind"] = "PodExecOptions"
    if sub == "log":
        entry["kind"] = "Pod"
    return entry


def api_resource_list(group, version):
    """The APIResourceList at /api/v1 or /apis/GROUP/VERSION, or None if not served."""
    resources = []
    for rt in RESOURCE_TYPES:
        if rt.group != group or rt.version != version:
            continue
        verbs = [v for v in VERBS if not (rt.plural == "namespaces" and v == "deletecollection")]
        entry = {"name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
                 "kind": rt.kind, "verbs": verbs}
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        entry["storageVersionHash"] = (rt.kind.lower() + "0000000")[:11]
        resources.append(entry)
        resources.extend(_subresource_entry(rt, sub) for sub in rt.subresources)
    if not resources:
        return None
    gv = group + "/" + version if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
