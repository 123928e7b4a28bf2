"""Defaulting and validation that the real apiserver applies to the kinds served here.

Only what a client can observe in practice: defaults it reads back, and the
validation errors an operator script is likely to trigger.
"""

import base64
import binascii
import re
import time

from . import errors, storage

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAMES = ("namespaces", "services")  # these use DNS-1123 labels, the rest subdomains


def rfc3339(t=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def parse_rfc3339(text):
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


def validate_name(rt, name):
    """422 Invalid for a bad metadata.name, with the real server's wording."""
    if rt.plural in LABEL_NAMES:
        ok = DNS1123_LABEL.match(name) and len(name) <= 63
        what = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
    else:
        ok = DNS1123_SUBDOMAIN.match(name) and len(name) <= 253
        what = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    if not ok:
        raise errors.invalid(rt, name, rt.kind, [{"reason": "FieldValueInvalid", "field": "metadata.name",
                                                 "message": 'Invalid value: "%s": %s' % (name, what)}])


def _pod_spec_defaults(spec):
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    if "serviceAccountName" not in spec and "serviceAccount" in spec:
        spec["serviceAccountName"] = spec["serviceAccount"]
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        image = container.get("image", "")
        latest = ":" not in image.split("/")[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")


def _deployment_defaults(obj):
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        strategy["type"] = "RollingUpdate"
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    _pod_spec_defaults(template.setdefault("spec", {}))


def _service_defaults(obj, allocate_ip):
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
        spec["clusterIP"] = allocate_ip()
        spec["clusterIPs"] = [spec["clusterIP"]]
    for port in spec.get("ports", []):
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))


def _secret_defaults(obj):
    obj.setdefault("type", "Opaque")
    data = obj.get("data") or {}
    for key, value in data.items():
        try:
            base64.b64decode(value or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise errors.bad_request("Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data "
                                     "at input byte 0 (key %r)" % key)
    # stringData is write-only: it is merged into data and never stored.
    for key, value in (obj.pop("stringData", None) or {}).items():
        data[key] = base64.b64encode(value.encode()).decode()
    if data:
        obj["data"] = data


def apply_defaults(rt, obj, allocate_ip):
    if rt.plural == "pods":
        _pod_spec_defaults(obj.setdefault("spec", {}))
    elif rt.plural in ("deployments", "replicasets"):
        _deployment_defaults(obj)
    elif rt.plural == "services":
        _service_defaults(obj, allocate_ip)
    elif rt.plural == "secrets":
        _secret_defaults(obj)
    elif rt.plural in ("persistentvolumeclaims", "persistentvolumes", "storageclasses"):
        storage.apply_defaults(rt, obj)
    elif rt.plural == "namespaces":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]


def validate(rt, obj):
    """Semantic checks that produce 422 on the real server."""
    name = obj["metadata"].get("name", "")
    if rt.plural in ("persistentvolumeclaims", "persistentvolumes", "storageclasses"):
        storage.validate(rt, obj)
    if rt.plural == "deployments":
        selector = (obj["spec"].get("selector") or {}).get("matchLabels")
        labels = obj["spec"]["template"]["metadata"].get("labels") or {}
        if not obj["spec"].get("selector"):
            raise errors.invalid(rt, name, rt.kind, [{"reason": "FieldValueRequired", "field": "spec.selector",
                                                     "message": "Required value"}])
        if selector and any(labels.get(k) != v for k, v in selector.items()):
            raise errors.invalid(rt, name, rt.kind, [{
                "reason": "FieldValueInvalid", "field": "spec.template.metadata.labels",
                "message": "Invalid value: %s: `selector` does not match template `labels`" % (labels,)}])
    if rt.plural in ("deployments", "pods"):
        spec = obj["spec"]["template"]["spec"] if rt.plural == "deployments" else obj["spec"]
        if not spec.get("containers"):
            field = "spec.template.spec.containers" if rt.plural == "deployments" else "spec.containers"
            raise errors.invalid(rt, name, rt.kind, [{"reason": "FieldValueRequired", "field": field,
                                                     "message": "Required value"}])
