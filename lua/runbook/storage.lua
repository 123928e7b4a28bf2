-- Users' storage on Kubernetes (require "runbook.storage"): the PersistentVolumeClaims KubeSpawner
-- makes for each user, and the volumes behind them. Deleting a hub user makes KubeSpawner delete the
-- user's claim (delete_pvc is on by default), and a volume whose reclaim policy is Delete goes with it:
-- this module finds what a deletion would destroy, keeps it (the volume set to Retain first), checks
-- what happened, and attaches a kept volume to a new claim again.
--
--   local storage = require "runbook.storage"
--   storage.spawner_kind("kubespawner.spawner.KubeSpawner")        -- "kubernetes" | "local" | nil (unknown)
--   local index = assert(storage.index(client, "jhub"))            -- every user claim, with its volume
--   for _, claim in ipairs(index:claims_of("josé")) do print(storage.describe(claim)) end
--   assert(storage.retain(client, claim, { user = "josé", run = "prune-dormant-...", time = "..." }))
--
-- Claims are matched to users by KubeSpawner's annotation hub.jupyter.org/username (the exact name;
-- the label of the same name is an escaped, truncated form). Failures return nil, message.
local host = require "runbook.host"
local json = require "runbook.json"
local util = require "runbook.util"

local storage = {}

storage.CLAIM_SELECTOR = "component=singleuser-storage"
local USER_ANNOTATION = "hub.jupyter.org/username"
local SERVER_ANNOTATION = "hub.jupyter.org/servername"
local USER_LABEL = "hub.jupyter.org/username"
-- What a kept volume carries, so `kubectl get pv -l runbook/retained-by` finds them all and
-- restore-users knows whose it was and what to put back.
storage.RETAINED_LABEL = "runbook/retained-by"
local A_USER, A_CLAIM, A_RUN, A_TIME, A_PREVIOUS =
  "runbook/username", "runbook/claim", "runbook/run", "runbook/retained-at", "runbook/previous-reclaim-policy"
storage.PREVIOUS_POLICY_ANNOTATION = A_PREVIOUS

-- Spawners known to keep nothing per user that deleting the user removes (their servers are local
-- processes, the home directory a local one the hub never deletes).
local LOCAL_SPAWNERS = {
  ["jupyterhub.spawner.LocalProcessSpawner"] = true,
  ["jupyterhub.spawner.SimpleLocalProcessSpawner"] = true,
  ["sudospawner.SudoSpawner"] = true,
}

-- spawner_kind(class) -> "kubernetes" (KubeSpawner or a class of its package: claims to look for),
-- "local" (keeps no per-user storage), or nil when runbook cannot tell (another spawner, or unknown).
function storage.spawner_kind(class)
  if type(class) ~= "string" then return nil end
  if LOCAL_SPAWNERS[class] then return "local" end
  if class:lower():find("kubespawner", 1, true) then return "kubernetes" end
  return nil
end

-- ---- sizes ----

local BINARY = { Ki = 2 ^ 10, Mi = 2 ^ 20, Gi = 2 ^ 30, Ti = 2 ^ 40, Pi = 2 ^ 50, Ei = 2 ^ 60 }
local DECIMAL = { [""] = 1, m = 1e-3, k = 1e3, M = 1e6, G = 1e9, T = 1e12, P = 1e15, E = 1e18 }

-- quantity("10Gi") -> bytes (a Kubernetes resource quantity: 10Gi, 500M, 1.5Ti, 1e9), or nil.
function storage.quantity(text)
  if type(text) ~= "string" then return nil end
  local number, suffix = text:match("^%s*([%d%.]+)(%a*)%s*$")
  if not number then
    local mantissa, exponent = text:match("^%s*([%d%.]+)[eE]([+-]?%d+)%s*$") -- 1e9, 5E+3: no suffix then
    number, suffix = mantissa and (mantissa .. "e" .. exponent), ""
  end
  local n = number and tonumber(number)
  if not n then return nil end
  local factor = BINARY[suffix] or DECIMAL[suffix]
  if not factor then return nil end
  local bytes = math.floor(n * factor)
  return math.tointeger(bytes) or bytes
end

-- human_bytes(n) -> "10 GiB", "2.1 TiB", "512 MiB"
function storage.human_bytes(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" }
  local i = 1
  while n >= 1024 and i < #units do
    n, i = n / 1024, i + 1
  end
  if i == 1 or n >= 100 or n == math.floor(n) then return string.format("%d %s", math.floor(n + 0.5), units[i]) end
  return string.format("%.1f %s", n, units[i])
end

-- ---- finding claims ----

-- field(obj, "spec", "claimRef", "uid") -> the nested value, or nil where any step is missing (or null)
local function field(t, ...)
  for _, key in ipairs({ ... }) do
    if type(t) ~= "table" then return nil end
    t = t[key]
  end
  if t == json.null then return nil end
  return t
end
storage.field = field

-- A claim as plans record it: enough to show it, check it again and keep its volume.
local function summarize(claim, volumes)
  local meta = claim.metadata or {}
  local annotations = meta.annotations or {}
  local volume_name = field(claim, "spec", "volumeName")
  if volume_name == "" then volume_name = nil end
  local pv = volume_name and volumes[volume_name] or nil
  local capacity = field(pv, "spec", "capacity", "storage") or field(claim, "status", "capacity", "storage")
    or field(claim, "spec", "resources", "requests", "storage")
  return {
    name = meta.name,
    namespace = meta.namespace,
    uid = meta.uid,
    user = annotations[USER_ANNOTATION],
    user_label = (meta.labels or {})[USER_LABEL],
    server = annotations[SERVER_ANNOTATION] or "",
    phase = field(claim, "status", "phase") or "Pending",
    terminating = meta.deletionTimestamp ~= nil or nil,
    volume = volume_name,
    volume_found = pv ~= nil,
    capacity = capacity,
    bytes = storage.quantity(capacity) or 0,
    storage_class = field(claim, "spec", "storageClassName"),
    reclaim_policy = field(pv, "spec", "persistentVolumeReclaimPolicy"),
  }
end

local Index = {}
Index.__index = Index

-- claims_of(name) -> the claims of user `name` (possibly empty). A claim without the annotation
-- (made by an old KubeSpawner) counts only when its label is the name itself, which is how
-- KubeSpawner labels names made of lower-case letters and digits; others stay unattributed.
function Index:claims_of(name)
  local found = self.by_user[name]
  if found then return found end
  if name:match("^[a-z0-9]+$") and self.by_label[name] then return self.by_label[name] end
  return {}
end

-- index(client, namespace) -> index | nil, message
-- Lists the claims labelled component=singleuser-storage in namespace once (paginated), and, when
-- there are any, the cluster's PersistentVolumes once, to know each bound volume's size and policy.
function storage.index(client, namespace)
  local claims, err = client:list("persistentvolumeclaims", { namespace = namespace, label_selector = storage.CLAIM_SELECTOR })
  if not claims then return nil, err end
  local volumes = {}
  if #claims > 0 then
    local pvs, pv_err = client:list("persistentvolumes")
    if not pvs then return nil, pv_err end
    for _, pv in ipairs(pvs) do volumes[pv.metadata.name] = pv end
  end
  local index = setmetatable({ namespace = namespace, count = #claims, by_user = {}, by_label = {}, unattributed = {} }, Index)
  for _, claim in ipairs(claims) do
    local s = summarize(claim, volumes)
    if s.user then
      index.by_user[s.user] = index.by_user[s.user] or {}
      table.insert(index.by_user[s.user], s)
    else
      index.unattributed[#index.unattributed + 1] = s
      if s.user_label then
        index.by_label[s.user_label] = index.by_label[s.user_label] or {}
        table.insert(index.by_label[s.user_label], s)
      end
    end
  end
  for _, list in pairs(index.by_user) do
    table.sort(list, function(a, b) return a.name < b.name end)
  end
  return index
end

-- Whether deleting the claim destroys its data: the volume's reclaim policy decides (Recycle scrubs it).
local function data_goes_with_claim(claim)
  return claim.volume ~= nil and claim.reclaim_policy ~= "Retain"
end

-- describe(claim[, mode]) -> "claim-josé (10 GiB, volume pvc-1f2e, reclaim Delete)", and with a mode
-- ("retain" | "delete") what deleting the user will do to it.
function storage.describe(claim, mode)
  local what
  if not claim.volume then
    what = string.format("%s (%s, no volume bound)", claim.name, claim.phase)
  else
    what = string.format("%s (%s, volume %s, reclaim %s)", claim.name, storage.human_bytes(claim.bytes), claim.volume,
      claim.reclaim_policy or "unknown")
  end
  if claim.server ~= "" then what = what .. " of server '" .. claim.server .. "'" end
  if not mode then return what end
  if not claim.volume then return what .. ": no data to keep" end
  if mode == "retain" then
    return what .. (claim.reclaim_policy == "Retain" and ": kept" or ": kept (volume set to Retain first)")
  end
  if data_goes_with_claim(claim) then return what .. ": DELETED with the user" end
  return what .. ": claim deleted, volume kept (its reclaim policy is Retain)"
end

-- at_risk(claims) -> how many of the claims hold data that deleting their users would destroy, and its size
function storage.at_risk(claims)
  local n, bytes = 0, 0
  for _, c in ipairs(claims) do
    if data_goes_with_claim(c) then n, bytes = n + 1, bytes + (c.bytes or 0) end
  end
  return n, bytes
end

-- ---- keeping a volume ----

-- retain(client, claim, {user=, run=, time=}) -> volume manifest as it was before | nil, message
-- Sets the claim's volume to reclaim policy Retain and marks it with whose it was, so deleting the
-- claim leaves the volume (Released) and its data. Safe to repeat: the first policy seen is the one
-- remembered. Refuses a volume no longer bound to that claim.
function storage.retain(client, claim, meta)
  local pv, err = client:get("persistentvolumes", claim.volume)
  if pv == nil then return nil, err end
  if pv == false then return nil, string.format("volume %s of claim %s/%s is gone", claim.volume, claim.namespace, claim.name) end
  local ref = field(pv, "spec", "claimRef") or {}
  if ref.uid ~= claim.uid then
    return nil, string.format("volume %s is no longer bound to claim %s/%s (now: %s)", claim.volume, claim.namespace,
      claim.name, ref.name and (tostring(ref.namespace) .. "/" .. tostring(ref.name)) or "no claim")
  end
  local annotations = field(pv, "metadata", "annotations") or {}
  local patch = {
    metadata = {
      labels = { [storage.RETAINED_LABEL] = "prune-dormant" },
      annotations = {
        [A_USER] = meta.user, [A_CLAIM] = claim.namespace .. "/" .. claim.name, [A_RUN] = meta.run, [A_TIME] = meta.time,
        [A_PREVIOUS] = annotations[A_PREVIOUS] or field(pv, "spec", "persistentVolumeReclaimPolicy") or "Delete",
      },
    },
    spec = { persistentVolumeReclaimPolicy = "Retain" },
  }
  local patched, perr = client:patch("persistentvolumes", claim.volume, patch, { type = "merge" })
  if not patched then return nil, perr end
  if field(patched, "spec", "persistentVolumeReclaimPolicy") ~= "Retain" then
    return nil, "volume " .. claim.volume .. " did not take reclaim policy Retain"
  end
  return pv
end

-- after_delete(client, claim, mode) -> text | nil, message: what became of a claim and its volume
-- once its user was deleted. With mode "retain" a volume that is gone is a failure: data was lost.
function storage.after_delete(client, claim, mode)
  local now, err = client:get("persistentvolumeclaims", claim.name, { namespace = claim.namespace })
  if now == nil then return nil, err end
  local claim_text
  if now == false or field(now, "metadata", "uid") ~= claim.uid then
    claim_text = claim.name .. " deleted by the hub"
  elseif field(now, "metadata", "deletionTimestamp") then
    claim_text = claim.name .. " being deleted"
  else
    claim_text = claim.name .. " left in place by the hub"
  end
  if not claim.volume then return claim_text end
  local pv
  pv, err = client:get("persistentvolumes", claim.volume)
  if pv == nil then return nil, err end
  if pv == false then
    if mode == "retain" then
      return nil, string.format("%s, and volume %s is GONE: its data was not kept", claim_text, claim.volume)
    end
    return claim_text .. ", volume " .. claim.volume .. " deleted"
  end
  return string.format("%s, volume %s kept (%s, reclaim %s)", claim_text, claim.volume,
    field(pv, "status", "phase") or "?", field(pv, "spec", "persistentVolumeReclaimPolicy") or "?")
end

-- ---- attaching a kept volume again ----

-- The claim to create: the old one's name, namespace, labels and annotations (less what the
-- controllers wrote), the volume's class and access modes, and a request of exactly its capacity.
function storage.claim_for(old_claim, pv)
  local meta = old_claim.metadata or {}
  local annotations = {}
  for k, v in pairs(meta.annotations or {}) do
    if not k:match("^pv%.kubernetes%.io/") and not k:match("^volume%.beta%.kubernetes%.io/")
        and not k:match("^volume%.kubernetes%.io/") and k ~= "kubectl.kubernetes.io/last-applied-configuration" then
      annotations[k] = v
    end
  end
  return {
    apiVersion = "v1", kind = "PersistentVolumeClaim",
    metadata = { name = meta.name, namespace = meta.namespace, labels = meta.labels, annotations = annotations },
    spec = {
      accessModes = field(pv, "spec", "accessModes") or field(old_claim, "spec", "accessModes"),
      storageClassName = field(pv, "spec", "storageClassName") or "",
      volumeName = pv.metadata.name,
      resources = { requests = { storage = field(pv, "spec", "capacity", "storage") } },
    },
  }
end

-- volume_state(pv, old_uid) -> "released" (still names the old claim) | "available" | "bound", who
function storage.volume_state(pv, old_uid)
  local ref = field(pv, "spec", "claimRef")
  if not ref then return "available" end
  if ref.uid == old_uid then return "released" end
  return "bound", tostring(ref.namespace) .. "/" .. tostring(ref.name)
end

-- release(client, pv_name, old_uid) -> true | nil, message: clears the volume's claimRef to its old
-- claim (so it becomes Available), only if it still names that claim (a JSON patch with a test).
function storage.release(client, pv_name, old_uid)
  local ops = json.array({
    { op = "test", path = "/spec/claimRef/uid", value = old_uid },
    { op = "remove", path = "/spec/claimRef" },
  })
  local ok, err = client:patch("persistentvolumes", pv_name, ops, { type = "json" })
  if not ok then return nil, err end
  return true
end

-- wait_bound(client, namespace, name, volume, timeout) -> claim | nil, message
function storage.wait_bound(client, namespace, name, volume, timeout)
  local deadline = host.monotonic() + (timeout or 120)
  local last = "not found"
  while true do
    local claim, err = client:get("persistentvolumeclaims", name, { namespace = namespace })
    if claim == nil then return nil, err end
    if claim then
      local phase = field(claim, "status", "phase") or "Pending"
      if phase == "Bound" and field(claim, "spec", "volumeName") == volume then return claim end
      last = phase .. (field(claim, "spec", "volumeName") and (" on " .. claim.spec.volumeName) or "")
    end
    if host.monotonic() >= deadline then
      return nil, string.format("claim %s/%s did not bind to volume %s within %d s (%s)", namespace, name, volume,
        math.floor(timeout or 120), last)
    end
    if not util.sleep(0.5) then return nil, "interrupted while waiting for claim " .. namespace .. "/" .. name end
  end
end

-- restore_policy(client, pv_name) -> true | nil, message: puts back the reclaim policy the volume had
-- before retain() and removes runbook's marks, once the volume serves its user again.
function storage.restore_policy(client, pv_name, previous)
  local patch = {
    metadata = {
      labels = { [storage.RETAINED_LABEL] = json.null },
      annotations = { [A_USER] = json.null, [A_CLAIM] = json.null, [A_RUN] = json.null, [A_TIME] = json.null,
                      [A_PREVIOUS] = json.null },
    },
    spec = { persistentVolumeReclaimPolicy = previous },
  }
  local ok, err = client:patch("persistentvolumes", pv_name, patch, { type = "merge" })
  if not ok then return nil, err end
  return true
end

-- ---- permissions, asked in advance ----

-- needed_access(mode, namespace) -> the Kubernetes calls the functions above make for a user being
-- deleted with storage=mode, as checks for runbook.k8s.access (access.missing): the claim and its volume are read
-- again (prune-dormant's check, after_delete), and with "retain" the volume is patched (retain;
-- volumes are cluster-scoped). Each check has a `why`.
function storage.needed_access(mode, namespace)
  local checks = {
    { verb = "get", resource = "persistentvolumeclaims", namespace = namespace,
      why = "to read each claim again before its user is deleted" },
    { verb = "get", resource = "persistentvolumes", why = "to read each volume again" },
  }
  if mode == "retain" then
    checks[#checks + 1] = { verb = "patch", resource = "persistentvolumes",
                            why = "to set each volume to reclaim policy Retain (storage=retain)" }
  end
  return checks
end

-- reattach_access(namespace) -> the Kubernetes calls restore-users makes to attach a kept volume to a
-- new claim in `namespace` (release, the claim's creation, wait_bound, restore_policy), as checks for
-- runbook.k8s.access, each with a `why`.
function storage.reattach_access(namespace)
  return {
    { verb = "get", resource = "persistentvolumes", why = "to read each volume again" },
    { verb = "patch", resource = "persistentvolumes",
      why = "to free each volume from its deleted claim and put back its reclaim policy" },
    { verb = "get", resource = "persistentvolumeclaims", namespace = namespace,
      why = "to look for the claim and wait until it is Bound" },
    { verb = "create", resource = "persistentvolumeclaims", namespace = namespace,
      why = "to create each claim again under its old name" },
  }
end

return storage
