-- May I? Kubernetes permissions asked in advance (require "runbook.k8s.access"), the way
-- `kubectl auth can-i` asks: a SelfSubjectAccessReview, POSTed to the API server, which answers for
-- the credentials that sent it and stores nothing. A plan asks for what its apply will do, so a
-- context that may only read is refused at plan time rather than failing action after action.
--
--   local access = require "runbook.k8s.access"
--   local allowed, reason = access.can_i(client, "patch", "persistentvolumes")          -- cluster-scoped
--   access.can_i(client, "get", "persistentvolumeclaims", { namespace = "jhub" })
--   local denied = assert(access.missing(client, { { verb = "patch", resource = "persistentvolumes" } }))
--
-- Every authenticated user may ask (the system:basic-user ClusterRole), so asking needs no RBAC rule.
-- The host lets this one POST through while planning: it is a question, not a change (src/http.c).
local json = require "runbook.json"

local access = {}

local PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

-- can_i(client, verb, resource, {group=, namespace=, name=, subresource=}) -> allowed (boolean), reason
-- | nil, message, details. group "" is the core group; no namespace means cluster-wide (or, for a
-- namespaced resource, every namespace).
function access.can_i(client, verb, resource, opts)
  opts = opts or {}
  local attributes = { verb = verb, resource = resource, group = opts.group or "", namespace = opts.namespace,
                       name = opts.name, subresource = opts.subresource }
  local review = { apiVersion = "authorization.k8s.io/v1", kind = "SelfSubjectAccessReview",
                   spec = { resourceAttributes = attributes } }
  local target = "selfsubjectaccessreviews"
  local resp, err, detail = client:request("POST", PATH, { json = review })
  if not resp then return nil, client:failure_message("create", target, err, detail), detail end
  if resp.status ~= 201 and resp.status ~= 200 then return client:status_failure("create", target, resp) end
  local doc = json.decode(resp.body or "")
  local status = type(doc) == "table" and doc.status or nil
  if type(status) ~= "table" or type(status.allowed) ~= "boolean" then
    return nil, string.format("k8s %s: create %s: the answer has no status.allowed", client.context, target)
  end
  local reason = type(status.reason) == "string" and status.reason ~= "" and status.reason or nil
  if type(status.evaluationError) == "string" and status.evaluationError ~= "" then
    reason = (reason and (reason .. "; ") or "") .. status.evaluationError
  end
  -- `denied` true is an explicit no; allowed false alone means no rule allows it. Both are a no.
  return status.allowed == true and status.denied ~= true, reason
end

-- describe(check) -> "patch persistentvolumes (cluster-wide)", "get persistentvolumeclaims in namespace jhub"
function access.describe(check)
  local what = check.verb .. " " .. (check.group and check.group ~= "" and (check.resource .. "." .. check.group)
    or check.resource)
  if check.name then what = what .. "/" .. check.name end
  if check.namespace then return what .. " in namespace " .. check.namespace end
  return what .. " (cluster-wide)"
end

function access.describe_all(checks)
  local parts = {}
  for _, c in ipairs(checks) do parts[#parts + 1] = access.describe(c) end
  return table.concat(parts, ", ")
end

-- missing(client, checks) -> the checks not allowed (each with .reason when the server gave one; empty
-- when all are) | nil, message when the server could not be asked. Each check: {verb=, resource=,
-- group=, namespace=, name=, ...}; other fields (a why) are kept for the caller.
function access.missing(client, checks)
  local denied = {}
  for _, check in ipairs(checks) do
    local allowed, reason = access.can_i(client, check.verb, check.resource, check)
    if allowed == nil then return nil, reason end
    if not allowed then
      local copy = {}
      for k, v in pairs(check) do copy[k] = v end
      copy.reason = reason
      denied[#denied + 1] = copy
    end
  end
  return denied
end

return access
