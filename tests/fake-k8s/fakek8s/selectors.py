"""Label and field selectors with the grammar of k8s.io/apimachinery/pkg/labels and /fields."""

import re

from .errors import bad_request

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_SET_REQ = re.compile(r"^(\S+?)\s+(in|notin)\s*\((.*)\)$")
_CMP_REQ = re.compile(r"^([^=!<>\s]+)\s*(==|=|!=|<|>)\s*(.*)$")


def _split_top_level(text):
    """Split on commas that are not inside parentheses: 'a in (x,y),b' -> ['a in (x,y)', 'b']."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _check_key(key, selector):
    if not _LABEL_KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise bad_request('unable to parse requirement: key: Invalid value: "%s": name part must consist of '
                          "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                          "character (selector %r)" % (key, selector))


def _check_value(value, selector):
    if not _LABEL_VALUE.match(value) or len(value) > 63:
        raise bad_request('unable to parse requirement: values[0][%s]: Invalid value: "%s": a valid label must be '
                          "an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
                          "and end with an alphanumeric character (selector %r)" % (value, value, selector))


def parse_label_selector(text):
    """A list of (key, op, values) requirements; raises a 400 ApiError when malformed."""
    requirements = []
    if text is None or not text.strip():
        return requirements
    for raw in _split_top_level(text):
        req = raw.strip()
        if not req:
            raise bad_request("couldn't parse the selector string %r: found ',', expected: identifier" % text)
        if req.startswith("!"):
            key = req[1:].strip()
            _check_key(key, text)
            requirements.append((key, "!", []))
            continue
        m = _SET_REQ.match(req)
        if m:
            key, op, inner = m.group(1), m.group(2), m.group(3)
            values = [v.strip() for v in inner.split(",")] if inner.strip() else []
            _check_key(key, text)
            for v in values:
                _check_value(v, text)
            requirements.append((key, op, values))
            continue
        m = _CMP_REQ.match(req)
        if m:
            key, op, value = m.group(1), m.group(2), m.group(3).strip()
            _check_key(key, text)
            if op in ("<", ">"):
                if not re.match(r"^-?\d+$", value):
                    raise bad_request("unable to parse requirement: for 'Gt', 'Lt' operators, the value must "
                                      "be an integer (selector %r)" % text)
            else:
                _check_value(value, text)
            requirements.append((key, "=" if op == "==" else op, [value]))
            continue
        if re.search(r"\s", req):
            raise bad_request("couldn't parse the selector string %r: unable to parse requirement: "
                              "found '%s', expected: in, notin, =, ==, !=, gt, lt" % (text, req.split()[1]))
        _check_key(req, text)
        requirements.append((req, "exists", []))
    return requirements


def label_selector_from_match(selector):
    """Requirements from a LabelSelector object (matchLabels + matchExpressions) as deployments carry."""
    requirements = [(k, "=", [v]) for k, v in (selector or {}).get("matchLabels", {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in (selector or {}).get("matchExpressions", []):
        requirements.append((expr["key"], ops[expr["operator"]], expr.get("values", [])))
    return requirements


def labels_match(requirements, labels):
    labels = labels or {}
    for key, op, values in requirements:
        present = key in labels
        value = labels.get(key)
        if op == "=" and not (present and value == values[0]):
            return False
        if op == "!=" and present and value == values[0]:
            return False
        if op == "in" and not (present and value in values):
            return False
        if op == "notin" and present and value in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
        if op in ("<", ">"):
            try:
                number = int(value)
            except (TypeError, ValueError):
                return False
            if (op == "<" and not number < int(values[0])) or (op == ">" and not number > int(values[0])):
                return False
    return True


# Field labels each resource supports, as its GetAttrs/field conversion functions do.
FIELD_GETTERS = {
    "metadata.name": lambda o: o["metadata"].get("name", ""),
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
    "status.phase": lambda o: (o.get("status") or {}).get("phase", ""),
    "spec.nodeName": lambda o: (o.get("spec") or {}).get("nodeName", ""),
    "spec.restartPolicy": lambda o: (o.get("spec") or {}).get("restartPolicy", ""),
    "spec.serviceAccountName": lambda o: (o.get("spec") or {}).get("serviceAccountName", ""),
    "status.podIP": lambda o: (o.get("status") or {}).get("podIP", ""),
    "type": lambda o: o.get("type", ""),
    "name": lambda o: o["metadata"].get("name", ""),  # "a bug, but we need to support it" (claims, volumes)
}
EXTRA_FIELDS = {
    "pods": ("status.phase", "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "status.podIP"),
    "namespaces": ("status.phase",),
    "secrets": ("type",),
    "persistentvolumeclaims": ("name",),
    "persistentvolumes": ("name",),
}


def parse_field_selector(text, rt):
    """A list of (field, op, value); unknown fields are a 400 as on the real server."""
    requirements = []
    if text is None or not text.strip():
        return requirements
    allowed = ("metadata.name", "metadata.namespace") + EXTRA_FIELDS.get(rt.plural, ())
    for raw in text.split(","):
        m = re.match(r"^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$", raw)
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (text, raw))
        name, op, value = m.group(1), m.group(2), m.group(3)
        if name not in allowed:
            if rt.custom:
                raise bad_request('"%s" is not a known field selector: only "metadata.name", "metadata.namespace"'
                                  % name)
            raise bad_request("field label not supported: %s" % name)
        requirements.append((name, "!=" if op == "!=" else "=", value))
    return requirements


def fields_match(requirements, obj):
    for name, op, value in requirements:
        actual = FIELD_GETTERS[name](obj)
        if (op == "=") != (actual == value):
            return False
    return True
