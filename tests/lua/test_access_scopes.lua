-- Permissions asked in advance, the parts that need no server: the hub token's scopes (filters and the
-- broader scopes that hold one) and runbook.k8s.access's reading of SelfSubjectAccessReview answers
-- (against a stand-in client whose request() answers as the API server would).
local access = require "runbook.k8s.access"
local hub = require "runbook.hub"
local json = require "runbook.json"
local storage = require "runbook.storage"

-- ---- hub scopes ----
is(hub.token_scopes({ name = "ops", kind = "service" }), nil, "no scopes in the model (JupyterHub < 2.0): unknown")
is(hub.token_scopes({ scopes = { "inherit" } }), nil, "inherit: the owner's scopes, not spelled out: unknown")
local admin = hub.token_scopes({ scopes = { "admin:users", "admin:servers", "list:users", "read:users" } })
ok(hub.has_scope(admin, "delete:users", { name = "x" }), "admin:users holds delete:users")
ok(hub.has_scope(admin, "read:servers", { name = "x" }), "admin:servers holds read:servers")
ok(hub.has_scope(admin, "delete:users"), "  on every user")
local readonly = hub.token_scopes({ scopes = { "list:users", "read:users", "read:servers", "read:users:name" } })
ok(not hub.has_scope(readonly, "delete:users", { name = "x" }), "a read-only token may not delete")
ok(hub.has_scope(readonly, "read:users", { name = "x" }), "  but may read")
local filtered = hub.token_scopes({ scopes = { "delete:users!group=students", "delete:users!user=alice",
                                               "read:users", "read:servers" } })
ok(hub.has_scope(filtered, "delete:users", { name = "bob", groups = { "staff", "students" } }),
  "delete:users!group=students: a member of students")
ok(hub.has_scope(filtered, "delete:users", { name = "alice", groups = {} }), "delete:users!user=alice: alice")
ok(not hub.has_scope(filtered, "delete:users", { name = "carol", groups = { "staff" } }), "  not carol (staff only)")
ok(not hub.has_scope(filtered, "delete:users"), "  not every user")
local both = hub.token_scopes({ scopes = { "delete:users!user=alice", "delete:users" } })
ok(hub.has_scope(both, "delete:users", { name = "zed" }), "an unfiltered grant wins over a filtered one")
ok(hub.has_scope(hub.token_scopes({ scopes = { "admin:users!group=students" } }), "delete:users",
  { name = "s", groups = { "students" } }), "a filtered broader scope holds the narrower one on its users")
is(table.concat(hub.scopes_implying("read:users"), ","), "users,admin:users", "read:users is held by users, admin:users")

-- ---- SelfSubjectAccessReview ----
-- A client whose request() records what it was sent and answers like the API server.
local function stand_in(answer)
  local client = { context = "test", sent = {} }
  function client:request(method, path, opts)
    self.sent[#self.sent + 1] = { method = method, path = path, body = opts.json }
    return answer(opts.json)
  end
  function client:failure_message(verb, target, err) return "k8s test: " .. verb .. " " .. target .. ": " .. err end
  function client:status_failure(verb, target, resp) return nil, "k8s test: " .. verb .. " " .. target .. ": HTTP " .. resp.status end
  return client
end
local function reviewed(allowed, extra)
  return function(review)
    local status = { allowed = allowed }
    for k, v in pairs(extra or {}) do status[k] = v end
    return { status = 201, body = json.encode({ kind = "SelfSubjectAccessReview", spec = review.spec, status = status }) }
  end
end

local client = stand_in(reviewed(true, { reason = "RBAC: allowed by ClusterRoleBinding" }))
local allowed, reason = access.can_i(client, "patch", "persistentvolumes")
is(allowed, true, "allowed: true")
is(reason, "RBAC: allowed by ClusterRoleBinding", "  with the server's reason")
local sent = client.sent[1]
is(sent.method .. " " .. sent.path, "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "  POSTed to the review endpoint")
is(sent.body.kind .. " " .. sent.body.apiVersion, "SelfSubjectAccessReview authorization.k8s.io/v1", "  a SelfSubjectAccessReview")
local attrs = sent.body.spec.resourceAttributes
is(attrs.verb .. " " .. attrs.resource .. " [" .. attrs.group .. "] " .. tostring(attrs.namespace),
  "patch persistentvolumes [] nil", "  core group, no namespace: cluster-wide")
access.can_i(client, "get", "persistentvolumeclaims", { namespace = "jhub" })
is(client.sent[2].body.spec.resourceAttributes.namespace, "jhub", "  a namespace when given")

is(access.can_i(stand_in(reviewed(false)), "patch", "persistentvolumes"), false, "allowed: false")
is(access.can_i(stand_in(reviewed(true, { denied = true })), "patch", "persistentvolumes"), false,
  "denied: true is a no, whatever allowed says")
local _, err_reason = access.can_i(stand_in(reviewed(false, { evaluationError = "webhook timed out" })), "get", "pods")
like(err_reason, "webhook timed out", "an evaluation error is part of the reason")

local nothing, message = access.can_i(stand_in(function() return { status = 404, body = "" } end), "get", "pods")
is(nothing, nil, "a 404 (no such API): nil, message")
like(message, "HTTP 404", "  naming the status")
nothing, message = access.can_i(stand_in(function() return { status = 201, body = "{}" } end), "get", "pods")
is(nothing, nil, "an answer without status.allowed: nil")
like(message, "no status%.allowed", "  saying so")
nothing, message = access.can_i(stand_in(function() return nil, "connection refused" end), "get", "pods")
like(message, "connection refused", "a request that fails: nil, message")

-- missing(): the denied checks, with their own fields kept
local deny_patch = stand_in(function(review) return reviewed(review.spec.resourceAttributes.verb ~= "patch")(review) end)
local checks = storage.needed_access("retain", "jhub")
is(#checks, 3, "storage=retain needs three calls")
is(#storage.needed_access("delete", "jhub"), 2, "storage=delete two (no patch)")
local denied = assert(access.missing(deny_patch, checks))
is(#denied, 1, "missing(): one denied")
is(access.describe(denied[1]), "patch persistentvolumes (cluster-wide)", "  described")
like(denied[1].why, "Retain", "  with its why")
is(access.describe(checks[1]), "get persistentvolumeclaims in namespace jhub", "a namespaced check described")
is(access.describe({ verb = "get", resource = "gafaelfawringresses", group = "gafaelfawr.lsst.io" }),
  "get gafaelfawringresses.gafaelfawr.lsst.io (cluster-wide)", "a resource of a named group")
is(#assert(access.missing(stand_in(reviewed(true)), checks)), 0, "all allowed: none missing")
is(access.missing(stand_in(function() return nil, "down" end), checks), nil, "the server cannot be asked: nil")
done_testing()
