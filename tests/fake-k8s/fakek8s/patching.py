"""The three PATCH dialects the apiserver accepts besides apply.

- JSON Patch (RFC 6902), application/json-patch+json
- JSON Merge Patch (RFC 7386), application/merge-patch+json
- Strategic Merge Patch, application/strategic-merge-patch+json: a merge patch
  that merges some lists by a key (containers by name, ...) instead of replacing
  them, and understands the $patch / $retainKeys / $setElementOrder /
  $deleteFromPrimitiveList directives. The real server reads merge keys from the
  Go struct tags; here a table of the usual ones stands in for them.
"""

import copy

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class PatchError(Exception):
    """A patch that cannot be applied (422 on the real server), or a malformed one (400)."""

    def __init__(self, message, code=422):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- RFC 6902

def _unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def _split_pointer(pointer):
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError('JSON pointer must be empty or start with a "/": %r' % pointer, 400)
    return [_unescape(t) for t in pointer[1:].split("/")]


def _list_index(container, token, for_add, path):
    if token == "-" and for_add:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError("invalid array index %r in path %s" % (token, path))
    index = int(token)
    limit = len(container) if for_add else len(container) - 1
    if index > limit:
        raise PatchError("array index %d out of bounds in path %s" % (index, path))
    return index


def _parent(doc, path):
    tokens = _split_pointer(path)
    if not tokens:
        return None, None
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_list_index(node, token, False, path)]
        else:
            raise PatchError("doc is missing path: %s" % path)
    return node, tokens[-1]


def _get(doc, path):
    parent, last = _parent(doc, path)
    if parent is None:
        return doc
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError("doc is missing path: %s" % path)
        return parent[last]
    if isinstance(parent, list):
        return parent[_list_index(parent, last, False, path)]
    raise PatchError("doc is missing path: %s" % path)


def _add(doc, path, value):
    parent, last = _parent(doc, path)
    if parent is None:
        return value
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, last, True, path), value)
    else:
        raise PatchError("doc is missing path: %s" % path)
    return doc


def _remove(doc, path):
    parent, last = _parent(doc, path)
    if parent is None:
        raise PatchError("cannot remove the whole document")
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError("unable to remove nonexistent key: %s: missing value" % last)
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_list_index(parent, last, False, path))
    raise PatchError("doc is missing path: %s" % path)


def apply_json_patch(doc, operations):
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400)
    doc = copy.deepcopy(doc)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError("Unexpected kind: missing op or path in %r" % (op,), 400)
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError("missing value for %s operation" % kind, 400)
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            parent, last = _parent(doc, path)
            if parent is None:
                doc = copy.deepcopy(op["value"])
            elif isinstance(parent, dict):
                parent[last] = copy.deepcopy(op["value"])
            else:
                parent[_list_index(parent, last, False, path)] = copy.deepcopy(op["value"])
        elif kind in ("move", "copy"):
            if "from" not in op:
                raise PatchError("missing from for %s operation" % kind, 400)
            value = copy.deepcopy(_get(doc, op["from"]))
            if kind == "move":
                if path.startswith(op["from"] + "/"):
                    raise PatchError("cannot move %s into its own child %s" % (op["from"], path))
                _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError("testing value %s failed: test failed" % path)
        else:
            raise PatchError("Unexpected kind: %s" % kind, 400)
    return doc


# ---------------------------------------------------------------- RFC 7386

def apply_merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# ---------------------------------------------------------------- strategic merge

# patchMergeKey of list fields, from the Go types (k8s.io/api).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "env": "name", "imagePullSecrets": "name", "volumeMounts": "mountPath",
    "volumeDevices": "devicePath", "conditions": "type", "ownerReferences": "uid",
    "hostAliases": "ip", "topologySpreadConstraints": "topologyKey", "resourceClaims": "name",
    "containerStatuses": "name", "initContainerStatuses": "name",
}
# Lists of scalars with patchStrategy merge: union instead of replace.
PRIMITIVE_MERGE = {"finalizers"}
_DELETE = object()


def _strip_directives(value):
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items()
                if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _ports_key(items):
    # containerPort for container ports, port for service ports: same field name, two structs.
    return "containerPort" if any(isinstance(i, dict) and "containerPort" in i for i in items) else "port"


def _merge_list(field, original, patch):
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    original = copy.deepcopy(original) if isinstance(original, list) else []
    if field in PRIMITIVE_MERGE:
        return original + [v for v in patch if v not in original]
    key = MERGE_KEYS.get(field) or (_ports_key(patch + original) if field == "ports" else None)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return _strip_directives(patch)
    result = original
    for item in patch:
        index = next((n for n, o in enumerate(result) if isinstance(o, dict) and o.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = _merge_map(result[index], item)
    return result


def _merge_map(original, patch):
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return _DELETE
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name, []) if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _merge_map(result.get(key), value)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value)
        else:
            result[key] = value
    if "$retainKeys" in patch:
        result = {k: v for k, v in result.items() if k in patch["$retainKeys"]}
    return result


def apply_strategic_merge_patch(original, patch):
    if not isinstance(patch, dict):
        raise PatchError("json: cannot unmarshal %s into Go value of type map[string]interface {}"
                         % type(patch).__name__, 400)
    merged = _merge_map(original, patch)
    return {} if merged is _DELETE else merged


def apply_patch(content_type, original, patch):
    if content_type == JSON_PATCH:
        return apply_json_patch(original, patch)
    if content_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise PatchError("json: cannot unmarshal into object", 400)
        return apply_merge_patch(original, patch)
    if content_type == STRATEGIC_MERGE_PATCH:
        return apply_strategic_merge_patch(original, patch)
    raise ValueError(content_type)
