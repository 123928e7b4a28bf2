"""The volume controllers, as a client observes them (pkg/controller/volume/...):

- persistentvolume (the PV controller): binds claims to volumes and provisions volumes for
  claims of a class, keeps both phases (Pending, Available, Bound, Released, Lost), and
  reclaims the volume of a deleted claim: Retain keeps it Released with its claimRef,
  Delete deletes it (and its data), Recycle empties it and makes it Available again;
- pvcprotection / pvprotection: the kubernetes.io/pvc-protection finalizer holds a deleted
  claim while a pod uses it; kubernetes.io/pv-protection holds a deleted volume while it is Bound;
- expand: a bound claim whose request grows past its capacity gets the larger volume at once
  (the resizer and the kubelet's filesystem resize, without the intermediate conditions);
- the scheduler's volume binding: a pod whose claim is an unbound object is not scheduled;
  for a WaitForFirstConsumer class the claim gets its selected-node annotation, which lets
  the PV controller provision for it.

It runs in the controllers' loop, under the store's lock, and only writes what changes.
"""

import copy

from . import defaults, resources, storage
from .storage import CLAIMS, CLASSES, VOLUMES

PODS = resources.BY_KEY[("", "pods")]
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
UNBOUND_MESSAGE = ("0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes "
                   "are available: 1 Preemption is not helpful for scheduling.")


def _annotations(obj):
    return obj["metadata"].setdefault("annotations", {})


def claim_ref_matches(ref, claim):
    """The volume's claimRef names this claim: namespace/name, and a uid that is empty or the claim's."""
    meta = claim["metadata"]
    return (ref.get("namespace") == meta["namespace"] and ref.get("name") == meta["name"]
            and ref.get("uid", "") in ("", meta["uid"]))


def satisfies(volume, claim):
    """checkVolumeSatisfyClaim: not being deleted, big enough, same class and volume mode, access modes covered."""
    if volume["metadata"].get("deletionTimestamp"):
        return False
    if storage.quantity(storage.storage_capacity(volume)) < storage.quantity(storage.storage_request(claim)):
        return False
    if storage.volume_class(volume) != storage.claim_class(claim):
        return False
    if volume["spec"].get("volumeMode", "Filesystem") != claim["spec"].get("volumeMode", "Filesystem"):
        return False
    return set(claim["spec"].get("accessModes") or []) <= set(volume["spec"].get("accessModes") or [])


class VolumeControllers:
    def __init__(self, store, settings, log, fs=None):
        self.store = store
        self.settings = settings
        self.log = log
        self.fs = fs   # PodFilesystem: a provisioned volume gets its directory, a recycled one is emptied

    def _save(self, rt, obj):
        meta = obj["metadata"]
        current = self.store.peek(rt, meta.get("namespace", ""), meta["name"])
        if current is not None and current == obj:
            return current
        return self.store.set_object(rt, copy.deepcopy(obj))

    def _fresh(self, rt, obj):
        return self.store.peek(rt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    def reconcile(self):
        for claim in list(self.store.all(CLAIMS)):
            claim = self._fresh(CLAIMS, claim)
            if claim is not None:
                self._sync_claim(claim)
        for volume in list(self.store.all(VOLUMES)):
            volume = self._fresh(VOLUMES, volume)
            if volume is not None:
                self._sync_volume(volume)
        self._protect_claims()
        self._protect_volumes()

    # ------------------------------------------------------------ claims (syncClaim)

    def _sync_claim(self, claim):
        meta = claim["metadata"]
        if not meta.get("deletionTimestamp") and storage.PVC_PROTECTION not in (meta.get("finalizers") or []):
            claim = copy.deepcopy(claim)
            claim["metadata"].setdefault("finalizers", []).append(storage.PVC_PROTECTION)
            claim = self._save(CLAIMS, claim)
        if (claim["metadata"].get("annotations") or {}).get(BIND_COMPLETED) == "yes":
            self._sync_bound_claim(claim)
        else:
            self._sync_unbound_claim(claim)

    def _sync_unbound_claim(self, claim):
        name = claim["spec"].get("volumeName")
        if name:
            # The user asked for this volume: bind if it is free or pre-bound to this claim, and fits.
            volume = self.store.peek(VOLUMES, "", name)
            ref = (volume or {}).get("spec", {}).get("claimRef")
            if volume is not None and (ref is None or claim_ref_matches(ref, claim)) and satisfies(volume, claim):
                self._bind(volume, claim)
            else:
                self._set_claim_phase(claim, "Pending")
            return
        volume = self._find_match(claim)
        if volume is not None:
            self._bind(volume, claim)
            return
        if not storage.claim_has_class(claim) and not claim["metadata"].get("deletionTimestamp"):
            default = storage.default_class(self.store)
            if default is not None:  # retroactive default StorageClass assignment (GA in 1.28)
                claim = copy.deepcopy(claim)
                claim["spec"]["storageClassName"] = default["metadata"]["name"]
                claim = self._save(CLAIMS, claim)
        class_name = storage.claim_class(claim)
        sc = self.store.peek(CLASSES, "", class_name) if class_name else None
        deleting = claim["metadata"].get("deletionTimestamp")
        if sc is not None and sc.get("provisioner") != NO_PROVISIONER and not deleting:
            waiting = sc.get("volumeBindingMode") == "WaitForFirstConsumer"
            if not waiting or (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE):
                self._provision(claim, sc)
                return
        self._set_claim_phase(claim, "Pending")

    def _find_match(self, claim):
        """findBestMatchForClaim: a volume pre-bound to this claim, else the smallest Available one that fits.
        Only for Immediate classes: WaitForFirstConsumer binding is the scheduler's, done by provisioning here."""
        candidates = []
        sc = self.store.peek(CLASSES, "", storage.claim_class(claim)) if storage.claim_class(claim) else None
        delayed = sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"
        for volume in self.store.all(VOLUMES):
            ref = volume["spec"].get("claimRef")
            if ref is not None:
                if claim_ref_matches(ref, claim) and satisfies(volume, claim):
                    return volume
                continue
            if delayed or volume.get("status", {}).get("phase") != "Available" or not satisfies(volume, claim):
                continue
            candidates.append(volume)
        if not candidates:
            return None
        return min(candidates, key=lambda v: (storage.quantity(storage.storage_capacity(v)), v["metadata"]["name"]))

    def _provision(self, claim, sc):
        """provisionClaimOperation: a volume named pvc-<claim uid>, then the binding."""
        provisioner = sc["provisioner"]
        annotated = copy.deepcopy(claim)
        annotations = _annotations(annotated)
        annotations.setdefault(STORAGE_PROVISIONER, provisioner)
        annotations.setdefault(BETA_STORAGE_PROVISIONER, provisioner)
        claim = self._save(CLAIMS, annotated)
        name = "pvc-" + claim["metadata"]["uid"]
        volume = self.store.peek(VOLUMES, "", name)
        if volume is None:
            path = self.fs.volume_dir(name) if self.fs else "/var/lib/fake-k8s/volumes/" + name
            spec = {
                "accessModes": list(claim["spec"].get("accessModes") or []),
                "capacity": {"storage": storage.storage_request(claim)},
                "claimRef": self._claim_ref(claim),
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                "storageClassName": sc["metadata"]["name"],
                "volumeMode": claim["spec"].get("volumeMode", "Filesystem"),
                "hostPath": {"path": path, "type": ""},
            }
            if sc.get("mountOptions"):
                spec["mountOptions"] = list(sc["mountOptions"])
            volume = self.store.set_object(VOLUMES, {
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name, "annotations": {PROVISIONED_BY: provisioner, BOUND_BY_CONTROLLER: "yes"},
                             "finalizers": [storage.PV_PROTECTION]},
                "spec": spec, "status": {"phase": "Bound"}})
            self.log("provisioned %s for claim %s/%s (%s)" % (name, claim["metadata"]["namespace"],
                                                             claim["metadata"]["name"], provisioner))
        self._bind(self._fresh(VOLUMES, volume), claim)

    @staticmethod
    def _claim_ref(claim):
        meta = claim["metadata"]
        return {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"], "name": meta["name"],
                "uid": meta["uid"], "apiVersion": "v1", "resourceVersion": meta["resourceVersion"]}

    def _bind(self, volume, claim):
        """bind(): the volume first (claimRef, phase Bound), then the claim (volumeName, annotations, status)."""
        volume = copy.deepcopy(volume)
        ref = volume["spec"].get("claimRef")
        if ref is None or ref.get("uid") != claim["metadata"]["uid"]:
            if ref is None or not claim_ref_matches(ref, claim):
                _annotations(volume)[BOUND_BY_CONTROLLER] = "yes"
            volume["spec"]["claimRef"] = self._claim_ref(claim)
        volume.setdefault("status", {})["phase"] = "Bound"
        volume["status"].pop("reason", None)
        volume["status"].pop("message", None)
        volume = self._save(VOLUMES, volume)
        claim = copy.deepcopy(claim)
        annotations = _annotations(claim)
        if claim["spec"].get("volumeName") != volume["metadata"]["name"]:
            claim["spec"]["volumeName"] = volume["metadata"]["name"]
            annotations[BOUND_BY_CONTROLLER] = "yes"
        annotations[BIND_COMPLETED] = "yes"
        claim["status"] = dict(claim.get("status") or {}, phase="Bound",
                               accessModes=list(volume["spec"].get("accessModes") or []),
                               capacity=copy.deepcopy(volume["spec"].get("capacity") or {}))
        self._save(CLAIMS, claim)
        self.log("bound claim %s/%s to volume %s" % (claim["metadata"]["namespace"], claim["metadata"]["name"],
                                                     volume["metadata"]["name"]))

    def _sync_bound_claim(self, claim):
        name = claim["spec"].get("volumeName")
        volume = self.store.peek(VOLUMES, "", name) if name else None
        if volume is None:
            # "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
            self._set_claim_phase(claim, "Lost")
            return
        ref = volume["spec"].get("claimRef")
        if ref is None or (ref.get("uid") == claim["metadata"]["uid"] and
                           volume.get("status", {}).get("phase") != "Bound"):
            self._bind(volume, claim)   # a binding that was interrupted: finish it
        elif ref.get("uid") != claim["metadata"]["uid"]:
            # "Two claims are bound to the same volume, this one is bound incorrectly"
            self._set_claim_phase(claim, "Lost")
        else:
            self._set_claim_phase(claim, "Bound")   # "claim is already correctly bound": its phase says so
            self._expand(self._fresh(CLAIMS, claim), volume)

    def _expand(self, claim, volume):
        request = storage.quantity(storage.storage_request(claim))
        if request <= storage.quantity(storage.storage_capacity(volume)) and \
                request <= storage.quantity((claim.get("status") or {}).get("capacity", {}).get("storage")):
            return
        wanted = storage.storage_request(claim)
        if request > storage.quantity(storage.storage_capacity(volume)):
            volume = copy.deepcopy(volume)
            volume["spec"]["capacity"]["storage"] = wanted
            self._save(VOLUMES, volume)
        claim = copy.deepcopy(claim)
        claim.setdefault("status", {}).setdefault("capacity", {})["storage"] = wanted
        self._save(CLAIMS, claim)

    def _set_claim_phase(self, claim, phase):
        if (claim.get("status") or {}).get("phase") != phase:
            claim = copy.deepcopy(claim)
            claim.setdefault("status", {})["phase"] = phase
            self._save(CLAIMS, claim)

    # ------------------------------------------------------------ volumes (syncVolume)

    def _sync_volume(self, volume):
        ref = volume["spec"].get("claimRef")
        if ref is None or not ref.get("uid"):
            # "volume is unused" / pre-bound to a claim that has not bound yet: Available either way.
            self._set_volume_phase(volume, "Available")
            return
        claim = self.store.peek(CLAIMS, ref.get("namespace", ""), ref.get("name", ""))
        if claim is not None and claim["metadata"]["uid"] == ref["uid"]:
            if claim["spec"].get("volumeName") == volume["metadata"]["name"]:
                self._set_volume_phase(volume, "Bound")
            elif claim["spec"].get("volumeName") and \
                    (volume["metadata"].get("annotations") or {}).get(BOUND_BY_CONTROLLER) == "yes":
                unbound = copy.deepcopy(volume)   # the claim went to another volume: release ours (unbindVolume)
                unbound["spec"]["claimRef"] = None
                del unbound["spec"]["claimRef"]
                _annotations(unbound).pop(BOUND_BY_CONTROLLER, None)
                unbound["status"]["phase"] = "Available"
                self._save(VOLUMES, unbound)
            return
        # The claim is gone (or is a new claim of the same name): the volume is released and reclaimed.
        if volume.get("status", {}).get("phase") not in ("Released", "Failed"):
            volume = self._set_volume_phase(volume, "Released")
            self.log("volume %s released (claim %s/%s gone)" % (volume["metadata"]["name"], ref.get("namespace"),
                                                                ref.get("name")))
        policy = volume["spec"].get("persistentVolumeReclaimPolicy", "Retain")
        if policy == "Delete" and not volume["metadata"].get("deletionTimestamp"):
            self.log("volume %s: reclaim policy Delete, deleting it" % volume["metadata"]["name"])
            self.store.delete(VOLUMES, "", volume["metadata"]["name"], {})
        elif policy == "Recycle":
            if self.fs:
                self.fs.empty_volume(volume["metadata"]["name"])
            recycled = copy.deepcopy(volume)
            del recycled["spec"]["claimRef"]
            recycled["status"] = {"phase": "Available"}
            self._save(VOLUMES, recycled)

    def _set_volume_phase(self, volume, phase):
        if volume.get("status", {}).get("phase") == phase:
            return volume
        volume = copy.deepcopy(volume)
        volume["status"] = {"phase": phase}
        if phase == "Released":
            volume["status"]["lastPhaseTransitionTime"] = defaults.rfc3339()
        return self._save(VOLUMES, volume)

    # ------------------------------------------------------------ protection finalizers

    def _claim_in_use(self, claim):
        """pvcprotection: a scheduled pod, not finished, whose volumes name the claim."""
        name = claim["metadata"]["name"]
        for pod in self.store.all(PODS, claim["metadata"]["namespace"]):
            if not pod["spec"].get("nodeName") or pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                continue
            if any((v.get("persistentVolumeClaim") or {}).get("claimName") == name
                   for v in pod["spec"].get("volumes", [])):
                return True
        return False

    def _protect_claims(self):
        for claim in list(self.store.all(CLAIMS)):
            if claim["metadata"].get("deletionTimestamp") and not self._claim_in_use(claim):
                self._drop_finalizer(CLAIMS, claim, storage.PVC_PROTECTION)

    def _protect_volumes(self):
        for volume in list(self.store.all(VOLUMES)):
            if volume["metadata"].get("deletionTimestamp") and volume.get("status", {}).get("phase") != "Bound":
                self._drop_finalizer(VOLUMES, volume, storage.PV_PROTECTION)

    def _drop_finalizer(self, rt, obj, finalizer):
        finalizers = obj["metadata"].get("finalizers") or []
        remaining = [f for f in finalizers if f != finalizer]
        if remaining:
            if remaining != finalizers:
                updated = copy.deepcopy(obj)
                updated["metadata"]["finalizers"] = remaining
                self._save(rt, updated)
            return
        self.store.remove(rt, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    # ------------------------------------------------------------ scheduler (VolumeBinding plugin)

    def unschedulable(self, pod):
        """Why a pod cannot be scheduled because of its claims, or None. Claims that are no objects do not
        hold a pod back (the fake's original mapping of claims to directories)."""
        namespace = pod["metadata"]["namespace"]
        for volume in pod["spec"].get("volumes", []):
            name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            claim = self.store.peek(CLAIMS, namespace, name) if name else None
            if claim is None:
                continue
            if claim["metadata"].get("deletionTimestamp"):
                return 'persistentvolumeclaim "%s" is being deleted' % name
            if (claim.get("status") or {}).get("phase") == "Bound":
                continue
            class_name = storage.claim_class(claim)
            sc = self.store.peek(CLASSES, "", class_name) if class_name else None
            if sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
                if not (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE):
                    selected = copy.deepcopy(claim)
                    _annotations(selected)[SELECTED_NODE] = self.settings.node_name
                    self._save(CLAIMS, selected)
                return ""   # waiting for the volume to be provisioned: no Unschedulable condition
            return UNBOUND_MESSAGE
        return None
