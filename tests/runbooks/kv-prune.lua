-- A test runbook: deletes the keys of tests/lib/kvserver.py whose name starts with a prefix.
-- It exercises every part of the engine: parameters, policy, plan, re-check, concurrency, resume.
local http = require "runbook.http"
local json = require "runbook.json"
local util = require "runbook.util"

local function get_key(ctx, name)
  local resp, err = http.request{ url = ctx.params.url .. "/keys/" .. util.url_escape(name), timeout = 10 }
  if not resp then return nil, err end
  if resp.status == 404 then return false end
  if resp.status ~= 200 then return nil, "GET " .. name .. ": HTTP " .. resp.status end
  return http.decode(resp)
end

return {
  summary = "Delete the keys of a test key-value server whose names start with a prefix",
  description = "Used by the engine's tests.",
  params = {
    { name = "url", type = "string", required = true, env = "KV_URL", help = "server URL" },
    { name = "prefix", type = "string", default = "tmp-", help = "delete keys starting with this",
      check = function(v) return v ~= "", "must not be empty" end },
    { name = "max_actions", type = "integer", default = 0, help = "at most this many deletions (0: no cap)" },
    { name = "concurrency", type = "integer", default = 1, help = "deletions in flight" },
    { name = "adaptive", type = "boolean", default = true, help = "adapt the deletions in flight (false: always concurrency)" },
    { name = "dry_flag", type = "boolean", default = false, help = "a boolean for type tests" },
  },
  policy = { exclude = "function", protected = "list" },
  steps = { "List every key", "Delete each key with the prefix, re-checking its version first" },

  target = function(ctx) return ctx.params.url:match("^%a+://([^/]+)") end,

  plan = function(ctx)
    local resp, err = http.request{ url = ctx.params.url .. "/keys" }
    if not resp then error(err, 0) end
    local doc = assert(http.decode(resp))
    local protected = {}
    for _, name in ipairs(ctx.policy.protected or {}) do protected[name] = true end
    local names = util.sorted_keys(doc.keys)
    ctx:fact("keys_listed", #names)
    for _, name in ipairs(names) do
      local entry = doc.keys[name]
      if not util.starts_with(name, ctx.params.prefix) then
        ctx:skip{ target = name, reason = "outside the prefix" }
      elseif protected[name] then
        ctx:skip{ target = name, reason = "protected by policy" }
      elseif ctx.policy.exclude and ctx.policy.exclude(name, entry) then
        ctx:skip{ target = name, reason = "excluded by policy" }
      elseif ctx.params.max_actions > 0 and #ctx.actions >= ctx.params.max_actions then
        ctx:skip{ target = name, reason = "over the cap of max_actions" }
      else
        ctx:add{ kind = "kv.delete", target = name, reason = "has the prefix " .. ctx.params.prefix,
                 args = { version = entry.version } }
      end
    end
  end,

  actions = {
    ["kv.delete"] = {
      concurrent = true,
      on_failure = "continue",
      check = function(ctx, action)
        local entry, err = get_key(ctx, action.target)
        if entry == nil then return nil, err end
        if entry == false then return true end -- already gone: deleting again is harmless and counts as done
        if entry.version ~= action.args.version then
          return false, string.format("changed since the plan (version %d, planned %d)", entry.version, action.args.version)
        end
        return true
      end,
      run = function(ctx, action)
        local resp, err = http.request{ method = "DELETE", url = ctx.params.url .. "/keys/" .. util.url_escape(action.target) }
        if not resp then return nil, err end
        if resp.status == 204 or resp.status == 404 then return true end
        local doc = json.decode(resp.body)
        return nil, "HTTP " .. resp.status .. (doc and doc.message and (": " .. doc.message) or "")
      end,
    },
  },
}
