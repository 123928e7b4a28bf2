"""SelfSubjectAccessReview: "may I?" answered from the fake's own authorizer (auth.allowed).

POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews with
{"spec": {"resourceAttributes": {"verb", "resource", "group", "namespace", ...}}} answers 201 with the
review and its status {"allowed": bool, "reason": ...}, as pkg/registry/authorization/selfsubjectaccessreview
does: nothing is stored, and any authenticated user may ask (the system:basic-user ClusterRole), so the
question itself is never refused by RBAC. The request is logged with verb "create" and mutating false:
it changes nothing, and tests that count mutations must not count it. nonResourceAttributes are
answered by the same authorizer (the fake has no rules for URLs: admins may, readonly-user may get).
"""

import copy

from . import errors
from .auth import allowed

GROUP = "authorization.k8s.io"
VERSION = "v1"
PLURAL = "selfsubjectaccessreviews"
KIND = "SelfSubjectAccessReview"
API_VERSION = GROUP + "/" + VERSION


def discovery(rest):
    """The APIGroup at /apis/authorization.k8s.io and the APIResourceList under /v1, or None."""
    gv = {"groupVersion": API_VERSION, "version": VERSION}
    if not rest:
        return {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP, "versions": [gv], "preferredVersion": gv}
    if rest == [VERSION]:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": API_VERSION,
                "resources": [{"name": PLURAL, "singularName": "", "namespaced": False, "kind": KIND,
                               "verbs": ["create"]}]}
    return None


def invalid(message):
    return errors.ApiError(422, "Invalid", '%s.%s "" is invalid: %s' % (KIND, GROUP, message))


def review(user, body):
    """The answered review for a request body (already parsed JSON)."""
    if not isinstance(body, dict):
        raise errors.bad_request("the body must be a JSON object")
    if body.get("kind") not in (None, KIND) or body.get("apiVersion") not in (None, API_VERSION):
        raise errors.bad_request("the object must be a %s of %s, not %s %s"
                                 % (KIND, API_VERSION, body.get("kind"), body.get("apiVersion")))
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise invalid("spec: Required value")
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None):
        raise invalid("spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified")
    attributes = resource if resource is not None else non_resource
    if not isinstance(attributes, dict):
        raise invalid("spec: attributes must be an object")
    verb = attributes.get("verb") or ""
    may = bool(verb) and allowed(user, verb)
    if may:
        reason = 'fake RBAC: allowed: user "%s" is a cluster admin' % user.name
    else:
        reason = 'fake RBAC: user "%s" may only get, list and watch' % user.name if verb else "no verb given"
    return {"kind": KIND, "apiVersion": API_VERSION, "metadata": {"creationTimestamp": None},
            "spec": copy.deepcopy(spec), "status": {"allowed": may, "reason": reason}}


def handle(handler, rest, user, body):
    """Serves /apis/authorization.k8s.io[/v1[/selfsubjectaccessreviews]] for httpapi.Handler."""
    if handler.command in ("GET", "HEAD"):
        doc = discovery(rest)
        if doc is None:
            raise errors.not_found_path()
        return handler.respond(200, doc)
    if rest != [VERSION, PLURAL]:
        raise errors.not_found_path()
    if handler.command != "POST":
        raise errors.method_not_allowed()
    handler.entry.update(verb="create", mutating=False, dryRun=False)
    return handler.respond(201, review(user, handler.parse_json(body)))
