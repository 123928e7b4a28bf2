"""PersistentVolumeClaims, PersistentVolumes and StorageClasses: quantities, defaults, admission, validation.

What the apiserver does to these objects before they are stored, as a client sees it:
- defaulting (pkg/apis/core/v1/defaults.go, pkg/apis/storage/v1/defaults.go): a claim or a
  volume starts in phase Pending, volumeMode Filesystem; a volume's reclaim policy is Retain,
  a class's Delete, its binding mode Immediate;
- admission on create: DefaultStorageClass gives a claim without storageClassName the default
  class; StorageObjectInUseProtection adds the kubernetes.io/pvc-protection and
  kubernetes.io/pv-protection finalizers;
- validation (pkg/apis/core/validation, pkg/apis/storage/validation), with the real messages;
- PersistentVolumeClaimResize admission on update: only a claim of a class that allows
  expansion may grow.
The controllers that bind and provision live in pvcontroller.py.
"""

import json
import re
from fractions import Fraction

from . import errors, resources

CLAIMS = resources.BY_KEY[("", "persistentvolumeclaims")]
VOLUMES = resources.BY_KEY[("", "persistentvolumes")]
CLASSES = resources.BY_KEY[("storage.k8s.io", "storageclasses")]

PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
VOLUME_SOURCES = ("hostPath", "csi", "local", "nfs", "iscsi", "fc", "awsElasticBlockStore", "gcePersistentDisk",
                  "azureDisk", "azureFile", "cephfs", "rbd", "cinder", "flexVolume", "glusterfs", "portworxVolume",
                  "quobyte", "scaleIO", "storageos", "vsphereVolume", "photonPersistentDisk", "flocker")

# ---------------------------------------------------------------- quantities (k8s.io/apimachinery resource.Quantity)

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -3, "u": -2, "m": -1, "": 0, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
QUANTITY_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


def parse_quantity(text):
    """A quantity as an exact Fraction and its format ('binary', 'decimal', 'exponent'); ValueError if malformed."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return Fraction(str(text)), "decimal"
    if not isinstance(text, str):
        raise ValueError(QUANTITY_ERROR)
    m = _QUANTITY.match(text.strip())
    if not m or m.group(1).count(".") > 1 or m.group(1) in (".", "+", "-"):
        raise ValueError(QUANTITY_ERROR)
    number, suffix = Fraction(m.group(1)), m.group(2)
    if suffix in _BINARY:
        return number * 1024 ** _BINARY[suffix], "binary"
    if suffix in _DECIMAL:
        return number * Fraction(1000) ** _DECIMAL[suffix], "decimal"
    e = re.match(r"^[eE]([-+]?[0-9]+)$", suffix)
    if e:
        return number * Fraction(10) ** int(e.group(1)), "exponent"
    raise ValueError(QUANTITY_ERROR)


def canonical_quantity(text):
    """The form the apiserver stores and answers (Quantity.String() after a round trip): '1024Mi' -> '1Gi',
    '1500M' -> '1500M', '2000M' -> '2G'; a binary amount that is not a whole number of bytes goes decimal."""
    value, fmt = parse_quantity(text)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if fmt == "binary" and value.denominator == 1:
        if value < 1024:
            return sign + str(value.numerator)
        for suffix, power in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
            if value % (1024 ** power) == 0:
                return "%s%d%s" % (sign, value // 1024 ** power, suffix)
    for suffix, power in sorted(_DECIMAL.items(), key=lambda kv: -kv[1]):
        scaled = value / Fraction(1000) ** power
        if scaled.denominator == 1 and (scaled != 0 or power == 0):
            return "%s%d%s" % (sign, scaled.numerator, suffix)
    return sign + str(int(value * 10 ** 9)) + "n"  # rounds up in the real one; finer than this is not used


def quantity(text):
    """The value of a quantity, 0 when missing or malformed (objects in the store are valid already)."""
    try:
        return parse_quantity(text)[0]
    except ValueError:
        return Fraction(0)


def storage_request(claim):
    return ((claim.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")


def storage_capacity(volume):
    return ((volume.get("spec") or {}).get("capacity") or {}).get("storage")


def access_modes_text(modes):
    return ",".join(ACCESS_MODES.get(m, m) for m in modes or [])


# ---------------------------------------------------------------- classes

def claim_class(claim):
    """GetPersistentVolumeClaimClass: the beta annotation wins, then spec.storageClassName; "" is no class."""
    annotations = claim["metadata"].get("annotations") or {}
    if BETA_CLASS in annotations:
        return annotations[BETA_CLASS]
    return (claim.get("spec") or {}).get("storageClassName") or ""


def volume_class(volume):
    annotations = volume["metadata"].get("annotations") or {}
    if BETA_CLASS in annotations:
        return annotations[BETA_CLASS]
    return (volume.get("spec") or {}).get("storageClassName") or ""


def claim_has_class(claim):
    """PersistentVolumeClaimHasClass: a class was asked for (even "", which means none)."""
    annotations = claim["metadata"].get("annotations") or {}
    return BETA_CLASS in annotations or (claim.get("spec") or {}).get("storageClassName") is not None


def is_default_class(sc):
    annotations = sc["metadata"].get("annotations") or {}
    return annotations.get(DEFAULT_CLASS) == "true" or annotations.get(BETA_DEFAULT_CLASS) == "true"


def default_class(store):
    """util.GetDefaultClass: of several default classes the newest wins (then the name), since 1.26."""
    defaults = [sc for sc in store.all(CLASSES) if is_default_class(sc)]
    if not defaults:
        return None
    return sorted(defaults, key=lambda sc: (sc["metadata"].get("creationTimestamp", ""),
                                            sc["metadata"]["name"]))[-1]


# ---------------------------------------------------------------- defaults and admission (create)

def apply_defaults(rt, obj):
    spec = obj.setdefault("spec", {})
    if rt is CLAIMS:
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
        _canonical_quantities((spec.get("resources") or {}).get("requests"), rt, obj)
        _canonical_quantities((spec.get("resources") or {}).get("limits"), rt, obj)
    elif rt is VOLUMES:
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")
        if isinstance(spec.get("hostPath"), dict):
            spec["hostPath"].setdefault("type", "")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
        _canonical_quantities(spec.get("capacity"), rt, obj)
    elif rt is CLASSES:
        obj.pop("spec", None)  # a StorageClass keeps its fields at the top level
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")


def _canonical_quantities(amounts, rt, obj):
    """Quantities are decoded when the body is: a malformed one is a 400, before any validation."""
    if not isinstance(amounts, dict):
        return
    for key, value in list(amounts.items()):
        try:
            amounts[key] = canonical_quantity(value)
        except ValueError as e:
            raise errors.bad_request('%s in version "v1" cannot be handled as a %s: %s'
                                     % (rt.kind, rt.kind, e))


def admit_create(store, rt, obj):
    """Mutating admission on create (plugin/pkg/admission/storage): default class, protection finalizers."""
    if rt is CLAIMS:
        if not claim_has_class(obj):
            default = default_class(store)
            if default is not None:
                obj["spec"]["storageClassName"] = default["metadata"]["name"]
        _add_finalizer(obj, PVC_PROTECTION)
    elif rt is VOLUMES:
        _add_finalizer(obj, PV_PROTECTION)


def _add_finalizer(obj, finalizer):
    finalizers = obj["metadata"].setdefault("finalizers", [])
    if finalizer not in finalizers:
        finalizers.append(finalizer)


# ---------------------------------------------------------------- validation

def _cause(reason, field, message):
    return {"reason": reason, "field": field, "message": message}


def _access_mode_causes(modes, field):
    if not modes:
        return [_cause("FieldValueRequired", field, "Required value: at least 1 access mode is required")]
    causes = []
    for mode in modes:
        if mode not in ACCESS_MODES:
            causes.append(_cause("FieldValueNotSupported", field, 'Unsupported value: "%s": supported values: '
                                 '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"' % mode))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        causes.append(_cause("FieldValueForbidden", field,
                             "Forbidden: may not use ReadWriteOncePod with other access modes"))
    return causes


def _amount_causes(amount, field):
    if amount is None:
        return [_cause("FieldValueRequired", field, "Required value")]
    if quantity(amount) <= 0:
        return [_cause("FieldValueInvalid", field, 'Invalid value: "%s": must be greater than zero' % amount)]
    return []


def validate(rt, obj):
    """ValidatePersistentVolumeClaim / ValidatePersistentVolume / ValidateStorageClass (the parts a client meets)."""
    name = obj["metadata"].get("name", "")
    spec = obj.get("spec") or {}
    causes = []
    if rt is CLAIMS:
        causes += _access_mode_causes(spec.get("accessModes"), "spec.accessModes")
        requests = (spec.get("resources") or {}).get("requests") or {}
        causes += _amount_causes(requests.get("storage"), "spec.resources[storage]")
        if spec.get("volumeMode") not in ("Filesystem", "Block"):
            causes.append(_cause("FieldValueNotSupported", "spec.volumeMode", 'Unsupported value: "%s": supported '
                                 'values: "Block", "Filesystem"' % spec.get("volumeMode")))
    elif rt is VOLUMES:
        causes += _access_mode_causes(spec.get("accessModes"), "spec.accessModes")
        capacity = spec.get("capacity") or {}
        if not capacity:
            causes.append(_cause("FieldValueRequired", "spec.capacity", "Required value"))
        else:
            causes += _amount_causes(capacity.get("storage"), "spec.capacity[storage]")
        sources = [s for s in VOLUME_SOURCES if spec.get(s) is not None]
        if not sources:
            causes.append(_cause("FieldValueRequired", "spec", "Required value: must specify a volume type"))
        elif len(sources) > 1:
            causes.append(_cause("FieldValueForbidden", "spec." + sources[1],
                                 "Forbidden: may not specify more than 1 volume type"))
        if spec.get("persistentVolumeReclaimPolicy") not in ("Delete", "Recycle", "Retain"):
            causes.append(_cause("FieldValueNotSupported", "spec.persistentVolumeReclaimPolicy",
                                 'Unsupported value: "%s": supported values: "Delete", "Recycle", "Retain"'
                                 % spec.get("persistentVolumeReclaimPolicy")))
    elif rt is CLASSES:
        if not obj.get("provisioner"):
            causes.append(_cause("FieldValueRequired", "provisioner", "Required value"))
        if obj.get("reclaimPolicy") not in ("Delete", "Retain"):
            causes.append(_cause("FieldValueNotSupported", "reclaimPolicy", 'Unsupported value: "%s": supported '
                                 'values: "Delete", "Retain"' % obj.get("reclaimPolicy")))
        if obj.get("volumeBindingMode") not in ("Immediate", "WaitForFirstConsumer"):
            causes.append(_cause("FieldValueNotSupported", "volumeBindingMode", 'Unsupported value: "%s": supported '
                                 'values: "Immediate", "WaitForFirstConsumer"' % obj.get("volumeBindingMode")))
    if causes:
        raise errors.invalid(rt, name, rt.kind, causes)


def _spec_diff(old, new):
    """A short rendering of what changed, in the spirit of the cmp.Diff the real message carries."""
    lines = ["  core.PersistentVolumeClaimSpec{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if key in old:
                lines.append("- \t%s: %s," % (key, json.dumps(old[key], sort_keys=True)))
            if key in new:
                lines.append("+ \t%s: %s," % (key, json.dumps(new[key], sort_keys=True)))
    lines.append("  }")
    return "\n".join(lines)


def validate_update(store, rt, old, new):
    """ValidatePersistentVolumeClaimUpdate, ValidateStorageClassUpdate and the resize admission plugin."""
    name = new["metadata"]["name"]
    if rt is CLAIMS:
        old_spec, new_spec = dict(old.get("spec") or {}), dict(new.get("spec") or {})
        bound = (old.get("status") or {}).get("phase") == "Bound"
        unbound_name = not old_spec.get("volumeName")
        if unbound_name:  # "volumeName changes are allowed once" (the binder sets it)
            old_spec["volumeName"] = new_spec.get("volumeName")
        if old_spec.get("storageClassName") is None and unbound_name:
            old_spec["storageClassName"] = new_spec.get("storageClassName")  # retroactive default class
        if bound:
            old_spec["resources"] = dict(old_spec.get("resources") or {},
                                         requests=(new_spec.get("resources") or {}).get("requests"))
        for spec in (old_spec, new_spec):
            for key in [k for k, v in spec.items() if v is None]:
                del spec[key]
        if old_spec != new_spec:
            raise errors.invalid(rt, name, rt.kind, [_cause(
                "FieldValueForbidden", "spec", "Forbidden: spec is immutable after creation except "
                "resources.requests and volumeAttributesClassName for bound claims\n"
                + _spec_diff(old_spec, new_spec))])
        validate(rt, new)
        before, after = quantity(storage_request(old)), quantity(storage_request(new))
        if after < before:
            raise errors.invalid(rt, name, rt.kind, [_cause(
                "FieldValueForbidden", "spec.resources.requests.storage",
                "Forbidden: field can not be less than status.capacity")])
        if after > before:
            _admit_resize(store, rt, old, name)
    elif rt is CLASSES:
        causes = []
        for key, message in (("parameters", "updates to parameters are forbidden."),
                             ("provisioner", "updates to provisioner are forbidden."),
                             ("reclaimPolicy", "updates to reclaimPolicy are forbidden."),
                             ("volumeBindingMode", "field is immutable")):
            if old.get(key) != new.get(key):
                causes.append(_cause("FieldValueForbidden", key, "Forbidden: " + message))
        if causes:
            raise errors.invalid(rt, name, rt.kind, causes)
    elif rt is VOLUMES:
        old_sources = {s: old["spec"].get(s) for s in VOLUME_SOURCES if old["spec"].get(s) is not None}
        new_sources = {s: new["spec"].get(s) for s in VOLUME_SOURCES if new["spec"].get(s) is not None}
        if old_sources != new_sources:
            raise errors.invalid(rt, name, rt.kind, [_cause(
                "FieldValueForbidden", "spec.persistentvolumesource",
                "Forbidden: spec.persistentvolumesource is immutable after creation")])


def _admit_resize(store, rt, claim, name):
    """plugin/pkg/admission/storage/persistentvolume/resize: only a bound claim whose class allows it grows."""
    sc = store.peek(CLASSES, "", claim_class(claim)) if claim_class(claim) else None
    if (claim.get("status") or {}).get("phase") != "Bound" or sc is None or not sc.get("allowVolumeExpansion"):
        raise errors.forbidden(rt, name, "only dynamically provisioned pvc can be resized and the storageclass "
                                         "that provisions the pvc must support resize")


# ---------------------------------------------------------------- where the data is

def volume_for_claim(store, namespace, claim_name):
    """The name of the directory under DIR/volumes/ backing a pod volume `persistentVolumeClaim: NAME`:
    the bound PersistentVolume's when the claim is an object bound to one, else the claim's own name
    (a claim that is no object: the fake's original mapping, which seeds and tests rely on)."""
    with store.lock:
        claim = store.peek(CLAIMS, namespace, claim_name)
        if claim is not None and claim["spec"].get("volumeName") and \
                (claim.get("status") or {}).get("phase") == "Bound":
            return claim["spec"]["volumeName"]
        return claim_name


def volume_for_name(store, name, namespace=None):
    """`volume` of a FILE (seed, control API): a PersistentVolume name, else a claim name (resolved to its
    bound volume when it is an object: in `namespace`, or the only claim of that name), else NAME itself."""
    with store.lock:
        if store.peek(VOLUMES, "", name) is not None:
            return name
        if namespace:
            return volume_for_claim(store, namespace, name)
        claims = [c for c in store.all(CLAIMS) if c["metadata"]["name"] == name]
        if len(claims) == 1:
            return volume_for_claim(store, claims[0]["metadata"]["namespace"], name)
        return name
