"""API errors shaped like the real apiserver's metav1.Status answers.

Messages and reasons follow k8s.io/apimachinery/pkg/api/errors so that a client
written against a real cluster sees the same text here.
"""


class ApiError(Exception):
    """An error answered as a Status object (or, for APF's 429, plain text)."""

    def __init__(self, code, reason, message, details=None, headers=None, plain=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}
        self.plain = plain  # a text body instead of a Status (APF rejections)

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": self.message, "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def qualified(rt):
    """The resource name used in messages: 'pods', 'deployments.apps'."""
    return rt.plural + ("." + rt.group if rt.group else "")


def _details(rt, name, **extra):
    details = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural  # the real server puts the resource here, not the Kind
    details.update(extra)
    return details


def not_found(rt, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (qualified(rt), name), _details(rt, name))


def already_exists(rt, name):
    return ApiError(409, "AlreadyExists", '%s "%s" already exists' % (qualified(rt), name), _details(rt, name))


def conflict(rt, name, why):
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s' % (qualified(rt), name, why),
                    _details(rt, name))


def stale_conflict(rt, name):
    return conflict(rt, name, "the object has been modified; please apply your changes to the latest version and try again")


def forbidden(rt, name, why, causes=None):
    target = '%s "%s"' % (qualified(rt), name) if name else qualified(rt)
    extra = {"causes": causes} if causes else {}
    return ApiError(403, "Forbidden", "%s is forbidden: %s" % (target, why), _details(rt, name, **extra))


def rbac_forbidden(rt, name, user, verb, namespace, subresource=""):
    resource = rt.plural + ("/" + subresource if subresource else "")
    where = ' in the namespace "%s"' % namespace if namespace else " at the cluster scope"
    why = 'User "%s" cannot %s resource "%s" in API group "%s"%s' % (user, verb, resource, rt.group, where)
    return forbidden(rt, name, why)


def invalid(rt, name, kind, causes):
    """422 with field causes, like errors.NewInvalid: the message names the qualified kind
    (`Deployment.apps`, `StorageClass.storage.k8s.io`) and prints the causes as a field.ErrorList
    aggregate does: one alone, several as `[a, b]`."""
    texts = []
    for c in causes:
        text = "%s: %s" % (c["field"], c["message"])
        if text not in texts:
            texts.append(text)
    qualified_kind = kind + ("." + rt.group if rt.group and kind == rt.kind else "")
    message = '%s "%s" is invalid: %s' % (qualified_kind, name,
                                         texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]")
    details = _details(rt, name, causes=causes)
    details["kind"] = kind  # NewInvalid puts the Kind here
    return ApiError(422, "Invalid", message, details)


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def unsupported_media_type(content_type, accepted):
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    + ", ".join(accepted))


def not_found_path():
    """What the real server answers for a path it has no route for."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def internal(message):
    return ApiError(500, "InternalError", "Internal error occurred: %s" % message,
                    {"causes": [{"message": message}]})


def expired_continue():
    return ApiError(410, "Expired",
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter, or use the continue token "
                    "in this response to retrieve the remainder of the results. Continuing with the provided "
                    "token results in an inconsistent list - objects that were created, modified, or deleted "
                    "between the time the first chunk was returned and now may show up in the list.")


def too_many_requests():
    """API Priority and Fairness rejection: http.Error, so a text body, not a Status."""
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    headers={"Retry-After": "1"}, plain="Too many requests, please try again later.\n")
