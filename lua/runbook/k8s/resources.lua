-- Names of API resources and their URL paths. Built-in resources are known by their plural name
-- ("pods", "deployments", also "deployments.apps"); custom resources are given as a table
-- {group=, version=, resource=, namespaced=} or as "PLURAL.GROUP/VERSION"
-- ("gafaelfawringresses.gafaelfawr.lsst.io/v1alpha1"). An unknown name is the caller's mistake: it raises.
local util = require "runbook.util"

local resources = {}

local function core(kind, namespaced) return { group = "", version = "v1", kind = kind, namespaced = namespaced } end
local function grouped(group, version, kind, namespaced)
  return { group = group, version = version, kind = kind, namespaced = namespaced }
end

local KNOWN = {
  pods = core("Pod", true), services = core("Service", true), configmaps = core("ConfigMap", true),
  secrets = core("Secret", true), serviceaccounts = core("ServiceAccount", true),
  persistentvolumeclaims = core("PersistentVolumeClaim", true), events = core("Event", true),
  endpoints = core("Endpoints", true), namespaces = core("Namespace", false), nodes = core("Node", false),
  persistentvolumes = core("PersistentVolume", false),
  deployments = grouped("apps", "v1", "Deployment", true), replicasets = grouped("apps", "v1", "ReplicaSet", true),
  statefulsets = grouped("apps", "v1", "StatefulSet", true), daemonsets = grouped("apps", "v1", "DaemonSet", true),
  jobs = grouped("batch", "v1", "Job", true), cronjobs = grouped("batch", "v1", "CronJob", true),
  ingresses = grouped("networking.k8s.io", "v1", "Ingress", true),
  networkpolicies = grouped("networking.k8s.io", "v1", "NetworkPolicy", true),
  roles = grouped("rbac.authorization.k8s.io", "v1", "Role", true),
  rolebindings = grouped("rbac.authorization.k8s.io", "v1", "RoleBinding", true),
}

-- resolve(spec) -> {group, version, resource, namespaced, kind}
function resources.resolve(spec, level)
  level = (level or 1) + 1
  if type(spec) == "table" then
    if type(spec.resource) ~= "string" or type(spec.version) ~= "string" then
      error("a custom resource needs {group=, version=, resource=}", level)
    end
    return { group = spec.group or "", version = spec.version, resource = spec.resource,
             namespaced = spec.namespaced ~= false, kind = spec.kind }
  end
  if type(spec) ~= "string" then error("a resource is a name (\"pods\") or {group=, version=, resource=}", level) end
  local plural, group, version = spec:match("^([%l%d]+)%.([%w%.%-]+)/([%w]+)$")
  if plural then return { group = group, version = version, resource = plural, namespaced = true } end
  plural, group = spec:match("^([%l%d]+)%.([%w%.%-]+)$")
  local known = KNOWN[plural or spec]
  if known and (not group or group == known.group) then
    return { group = known.group, version = known.version, resource = plural or spec, namespaced = known.namespaced,
             kind = known.kind }
  end
  error(string.format("unknown resource '%s'; give custom resources as {group=, version=, resource=} or "
    .. "'PLURAL.GROUP/VERSION'", spec), level)
end

-- path(res, namespace, name, subresource) -> "/api/v1/namespaces/NS/pods/NAME/exec"
function resources.path(res, namespace, name, subresource)
  local parts = { res.group == "" and ("/api/" .. res.version) or ("/apis/" .. res.group .. "/" .. res.version) }
  if res.namespaced and namespace then parts[#parts + 1] = "namespaces/" .. util.url_escape(namespace) end
  parts[#parts + 1] = res.resource
  if name then parts[#parts + 1] = util.url_escape(name) end
  if subresource then parts[#parts + 1] = subresource end
  return table.concat(parts, "/")
end

-- How an object is named in messages and plans: "pods/hub-a/hub-xyz", "namespaces/hub-a".
function resources.label(res, namespace, name)
  if res.namespaced and namespace then return res.resource .. "/" .. namespace .. (name and ("/" .. name) or "") end
  return res.resource .. (name and ("/" .. name) or "")
end

return resources
