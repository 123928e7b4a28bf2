"""Object storage with the semantics of the apiserver's generic registry.

One lock guards everything (state is small; correctness beats throughput in a
test fake). Every change gets the next value of a global resourceVersion
counter, like etcd's revision, and is appended to an event log that watches and
controllers read. Readers always get deep copies.
"""

import base64
import collections
import copy
import json
import random
import threading
import time
import uuid

from . import defaults, errors, patching, resources, storage
from .selectors import fields_match, labels_match

IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
EVENT_LOG_SIZE = 20000
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.String alphabet: no vowels, no confusables


def random_suffix(n=5):
    return "".join(random.choice(_SUFFIX_ALPHABET) for _ in range(n))


def spec_part(rt, obj):
    """What metadata.generation tracks: everything but metadata (and status when it is a subresource)."""
    skip = {"metadata", "apiVersion", "kind"} | ({"status"} if rt.status else set())
    return {k: v for k, v in obj.items() if k not in skip}


class Store:
    def __init__(self, legacy_namespace_conflict=False):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.revision = 1000
        self.objects = {rt.key: {} for rt in resources.RESOURCE_TYPES}
        self.events = collections.deque(maxlen=EVENT_LOG_SIZE)
        self.continue_floor = 0          # continue tokens issued before this revision are expired
        self.legacy_namespace_conflict = legacy_namespace_conflict
        self.next_ip = 1
        self.listeners = []              # callables(event_type, rt, obj) run under the lock
        self.delete_requested_at = {}    # pod uid -> when a graceful delete was asked (the kubelet's clock)

    # ------------------------------------------------------------ internals

    def events_since(self, revision):
        """Events after `revision`, oldest first; the log is in revision order, so walk it from the end."""
        fresh = []
        for event in reversed(self.events):
            if event[0] <= revision:
                break
            fresh.append(event)
        fresh.reverse()
        return fresh

    def _bump(self):
        self.revision += 1
        return self.revision

    def _record(self, rt, event_type, obj):
        self.events.append((self.revision, rt.key, event_type, copy.deepcopy(obj)))
        for listener in self.listeners:
            listener(event_type, rt, obj)
        self.changed.notify_all()

    def _put(self, rt, obj, event_type):
        obj["metadata"]["resourceVersion"] = str(self._bump())
        meta = obj["metadata"]
        self.objects[rt.key][(meta.get("namespace", ""), meta["name"])] = obj
        self._record(rt, event_type, obj)
        return obj

    def _drop(self, rt, namespace, name):
        obj = self.objects[rt.key].pop((namespace, name), None)
        if obj is not None:
            obj["metadata"]["resourceVersion"] = str(self._bump())
            self._record(rt, "DELETED", obj)
        return obj

    def allocate_ip(self, prefix="10.96.0."):
        with self.lock:
            self.next_ip += 1
            return "%s%d" % (prefix, self.next_ip % 250 + 2)

    def _find(self, rt, namespace, name):
        obj = self.objects[rt.key].get((namespace if rt.namespaced else "", name))
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    # ------------------------------------------------------------ reads

    def get(self, rt, namespace, name):
        with self.lock:
            return copy.deepcopy(self._find(rt, namespace, name))

    def peek(self, rt, namespace, name):
        """The stored object itself, or None; only for code holding the lock."""
        return self.objects[rt.key].get((namespace if rt.namespaced else "", name))

    def all(self, rt, namespace=None):
        """Stored objects (not copies) for code holding the lock, sorted by key."""
        items = sorted(self.objects[rt.key].items())
        return [o for (ns, _), o in items if namespace is None or ns == namespace]

    def list(self, rt, namespace, label_reqs, field_reqs, limit=0, continue_token=None):
        """Items and list metadata; paginates like the etcd3 storage does."""
        with self.lock:
            start = ""
            if continue_token:
                token_rv, start = self._decode_continue(continue_token)
                if token_rv < self.continue_floor:
                    raise errors.expired_continue()
            matching = []
            # etcd orders by the key string ("ns/name"), the same string continue tokens compare:
            # sorting (ns, name) tuples instead puts "nublado/x" and "nublado-a/y" in another order.
            def key_of(item):
                (ns, name), _ = item
                return "%s/%s" % (ns, name) if rt.namespaced else name
            for (ns, name), obj in sorted(self.objects[rt.key].items(), key=key_of):
                if namespace and ns != namespace:
                    continue
                key = "%s/%s" % (ns, name) if rt.namespaced else name
                if start and key < start:
                    continue
                if labels_match(label_reqs, obj["metadata"].get("labels")) and fields_match(field_reqs, obj):
                    matching.append((key, obj))
            meta = {"resourceVersion": str(self.revision)}
            if limit and len(matching) > limit:
                last_key = matching[limit - 1][0]
                meta["continue"] = self._encode_continue(self.revision, last_key + "\x00")
                meta["remainingItemCount"] = len(matching) - limit
                matching = matching[:limit]
            return [copy.deepcopy(o) for _, o in matching], meta

    @staticmethod
    def _encode_continue(rv, start):
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def _decode_continue(token):
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            if data.get("v") != "meta.k8s.io/v1":
                raise ValueError("continue key is not valid: incorrect encoded start resourceVersion "
                                 "(version meta.k8s.io/v1)")
            return int(data["rv"]), str(data["start"])
        except (ValueError, KeyError, TypeError) as e:
            raise errors.bad_request("continue key is not valid: %s" % e)

    def expire_continue_tokens(self):
        with self.lock:
            self.continue_floor = self._bump()

    # ------------------------------------------------------------ writes

    def _check_namespace_open(self, rt, namespace, name):
        if not rt.namespaced:
            return
        ns = self.peek(resources.BY_KEY[("", "namespaces")], "", namespace)
        if ns is None:
            raise errors.not_found(resources.BY_KEY[("", "namespaces")], namespace)
        if ns["metadata"].get("deletionTimestamp") or ns.get("status", {}).get("phase") == "Terminating":
            why = "unable to create new content in namespace %s because it is being terminated" % namespace
            causes = [{"reason": "NamespaceTerminating", "message": "namespace %s is being terminated" % namespace,
                       "field": "metadata.namespace"}]
            raise errors.forbidden(rt, name, why, causes)

    def _normalize(self, rt, namespace, obj):
        """Kind, apiVersion and namespace of a request body, checked against the URL."""
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request is not a JSON object")
        if obj.get("apiVersion", rt.api_version) != rt.api_version or obj.get("kind", rt.kind) != rt.kind:
            raise errors.bad_request("the API version in the data (%s) does not match the expected API version (%s)"
                                     % (obj.get("apiVersion"), rt.api_version)
                                     if obj.get("apiVersion", rt.api_version) != rt.api_version else
                                     "%s in version \"%s\" cannot be handled as a %s: the kind %s does not match"
                                     % (obj.get("kind"), rt.version, rt.kind, obj.get("kind")))
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if meta is None or not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent "
                                         "on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def create(self, rt, namespace, obj, dry_run=False):
        obj = self._normalize(rt, namespace, copy.deepcopy(obj))
        meta = obj["metadata"]
        with self.lock:
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise errors.invalid(rt, "", rt.kind, [{"reason": "FieldValueRequired", "field": "metadata.name",
                                                            "message": "Required value: name or generateName is "
                                                                       "required"}])
                meta["name"] = meta["generateName"] + random_suffix()
            defaults.validate_name(rt, meta["name"])
            self._check_namespace_open(rt, namespace, meta["name"])
            if self.peek(rt, namespace, meta["name"]) is not None:
                raise errors.already_exists(rt, meta["name"])
            for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
                meta.pop(key, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = defaults.rfc3339()
            if rt.generation:
                meta["generation"] = 1
            if rt.status and rt.plural != "namespaces":
                obj.pop("status", None)  # status is the controllers' business
            defaults.apply_defaults(rt, obj, self.allocate_ip)
            storage.admit_create(self, rt, obj)
            defaults.validate(rt, obj)
            if dry_run:
                return copy.deepcopy(obj)
            return copy.deepcopy(self._put(rt, obj, "ADDED"))

    def _merge_update(self, rt, old, new, subresource):
        """The object to store for an update: immutable metadata kept, status or spec taken from the right side."""
        if subresource == "status":
            merged = copy.deepcopy(old)
            merged["status"] = new.get("status", {})
            return merged
        merged = new
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if key in old["metadata"]:
                merged["metadata"][key] = old["metadata"][key]
            else:
                merged["metadata"].pop(key, None)
        if rt.status:
            if "status" in old:
                merged["status"] = old["status"]
            else:
                merged.pop("status", None)
        return merged

    def update(self, rt, namespace, name, obj, dry_run=False, subresource=None, internal=False):
        """PUT: optimistic concurrency on metadata.resourceVersion, 404 if absent."""
        obj = self._normalize(rt, namespace, copy.deepcopy(obj))
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                     % (meta["name"], name))
        meta["name"] = name
        with self.lock:
            old = self._find(rt, namespace, name)
            sent_rv = meta.get("resourceVersion")
            if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
                raise errors.stale_conflict(rt, name)
            merged = self._merge_update(rt, old, obj, subresource)
            if not internal:
                defaults.apply_defaults(rt, merged, self.allocate_ip)
                defaults.validate(rt, merged)
                if subresource != "status":
                    storage.validate_update(self, rt, old, merged)
            if rt.generation and spec_part(rt, merged) != spec_part(rt, old):
                merged["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
            merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if merged == old:
                return copy.deepcopy(old)  # a no-op update does not bump resourceVersion, as in etcd3 storage
            if dry_run:
                return copy.deepcopy(merged)
            if self._finalized(merged):
                self._drop(rt, namespace if rt.namespaced else "", name)
                return copy.deepcopy(merged)
            return copy.deepcopy(self._put(rt, merged, "MODIFIED"))

    @staticmethod
    def _finalized(obj):
        """ShouldDeleteDuringUpdate: deleting, no finalizers left, no grace period running."""
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return False
        if obj.get("kind") == "Namespace":
            return not obj.get("spec", {}).get("finalizers")
        return not meta.get("deletionGracePeriodSeconds")

    def patch(self, rt, namespace, name, content_type, patch, dry_run=False, subresource=None):
        with self.lock:
            current = copy.deepcopy(self._find(rt, namespace, name))
            try:
                patched = patching.apply_patch(content_type, current, patch)
            except patching.PatchError as e:
                if e.code == 400:
                    raise errors.bad_request(str(e))
                raise errors.ApiError(422, "Invalid", str(e))
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch produced something that is not an object")
            # The patch is applied to the current object, so its resourceVersion is a precondition only
            # when the patch itself sets one; update() does that check.
            patched.setdefault("metadata", {})
            if patched.get("metadata", {}).get("name", name) != name:
                raise errors.bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                         % (patched["metadata"]["name"], name))
            return self.update(rt, namespace, name, patched, dry_run=dry_run, subresource=subresource)

    def set_object(self, rt, obj):
        """Store an object as given (controllers and the control API): fills in metadata, no validation."""
        with self.lock:
            meta = obj["metadata"]
            namespace = meta.get("namespace", "") if rt.namespaced else ""
            old = self.peek(rt, namespace, meta["name"])
            if old is None:
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", defaults.rfc3339())
                if rt.generation:
                    meta.setdefault("generation", 1)
                return copy.deepcopy(self._put(rt, obj, "ADDED"))
            if rt.generation and spec_part(rt, obj) != spec_part(rt, old):
                meta["generation"] = old["metadata"].get("generation", 1) + 1
            return copy.deepcopy(self._put(rt, obj, "MODIFIED"))

    def remove(self, rt, namespace, name):
        """Final removal (after grace periods and finalizers), for controllers."""
        with self.lock:
            return self._drop(rt, namespace if rt.namespaced else "", name)

    # ------------------------------------------------------------ delete

    def delete(self, rt, namespace, name, options, dry_run=False):
        """DELETE: returns (http status, body), following registry/generic/registry/store.go."""
        with self.lock:
            obj = self._find(rt, namespace, name)
            self._check_preconditions(rt, name, obj, options.get("preconditions") or {})
            if rt.plural == "namespaces":
                return self._delete_namespace(rt, obj, options, dry_run)
            if rt.plural == "pods":
                return self._delete_pod(rt, obj, options, dry_run)
            result = copy.deepcopy(obj)
            meta = result["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            policy = self._propagation(options, rt)
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            if finalizers:
                if not meta.get("deletionTimestamp"):
                    meta["deletionTimestamp"] = defaults.rfc3339()
                    meta["deletionGracePeriodSeconds"] = 0
                meta["finalizers"] = finalizers
                if not dry_run:
                    result = copy.deepcopy(self._put(rt, result, "MODIFIED"))
                return 200, result
            if not dry_run:
                self._drop(rt, namespace if rt.namespaced else "", name)
            return 200, self._deleted_answer(rt, result)

    @staticmethod
    def _deleted_answer(rt, obj):
        if rt.return_deleted:
            return obj
        details = {"name": obj["metadata"]["name"]}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
        details["uid"] = obj["metadata"]["uid"]
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    @staticmethod
    def _propagation(options, rt):
        if options.get("orphanDependents") is not None:
            return "Orphan" if options["orphanDependents"] else "Background"
        policy = options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.ApiError(422, "Invalid", 'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: '
                                  'Unsupported value: "%s": supported values: "Foreground", "Background", "Orphan", '
                                  'nil' % policy)
        return policy or "Background"

    @staticmethod
    def _check_preconditions(rt, name, obj, preconditions):
        uid = preconditions.get("uid")
        if uid and uid != obj["metadata"]["uid"]:
            raise errors.conflict(rt, name, "Precondition failed: UID in precondition: %s, UID in object meta: %s"
                                  % (uid, obj["metadata"]["uid"]))
        rv = preconditions.get("resourceVersion")
        if rv and rv != obj["metadata"]["resourceVersion"]:
            raise errors.conflict(rt, name, "Precondition failed: ResourceVersion in precondition: %s, "
                                  "ResourceVersion in object meta: %s" % (rv, obj["metadata"]["resourceVersion"]))

    def _delete_pod(self, rt, obj, options, dry_run):
        """Graceful deletion: a scheduled, running pod keeps existing with a deletionTimestamp until the
        kubelet (the pod controller here) reports its containers stopped."""
        result = copy.deepcopy(obj)
        meta, spec = result["metadata"], result.get("spec", {})
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        if not spec.get("nodeName") or result.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            grace = 0
        grace = max(0, int(grace))
        if grace == 0 and not meta.get("finalizers"):
            if not dry_run:
                self._drop(rt, meta["namespace"], meta["name"])
            return 200, result
        current = meta.get("deletionGracePeriodSeconds")
        if current is None or grace < current:
            meta["deletionTimestamp"] = defaults.rfc3339(time.time() + grace)
            meta["deletionGracePeriodSeconds"] = grace
            if not dry_run:
                self.delete_requested_at[meta["uid"]] = time.time()
                result = copy.deepcopy(self._put(rt, result, "MODIFIED"))
        return 200, result

    def _delete_namespace(self, rt, obj, options, dry_run):
        name = obj["metadata"]["name"]
        if name in IMMORTAL_NAMESPACES:
            raise errors.forbidden(rt, name, "this namespace may not be deleted")
        result = copy.deepcopy(obj)
        meta = result["metadata"]
        if not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = defaults.rfc3339()
            result.setdefault("status", {})["phase"] = "Terminating"
            policy = options.get("propagationPolicy")
            if policy in ("Orphan", "Foreground"):
                meta["finalizers"] = ["orphan" if policy == "Orphan" else "foregroundDeletion"]
            if not dry_run:
                result = copy.deepcopy(self._put(rt, result, "MODIFIED"))
            return 200, result
        if result.get("spec", {}).get("finalizers"):
            if self.legacy_namespace_conflict:
                # Kubernetes before 1.17 (PR #84122) answered a repeat DELETE with this Conflict.
                raise errors.conflict(rt, name, "The system is ensuring all content is removed from this "
                                      "namespace.  Upon completion, this namespace will automatically be purged "
                                      "by the system.")
            return 200, result
        if not dry_run:
            self._drop(rt, "", name)
        return 200, result
