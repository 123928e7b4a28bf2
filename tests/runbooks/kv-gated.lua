-- A test runbook shaped like wipe-hub-db: close a gate, delete keys (stopping at the first failure),
-- open the gate again. When a run stops halfway, on_stop reopens the gate; `resume` closes it again
-- before going on, because closing is a converging action (repeat_on_resume).
local http = require "runbook.http"
local util = require "runbook.util"

local function put(ctx, name, value)
  local resp, err = http.request{ method = "PUT", url = ctx.params.url .. "/keys/" .. name, json = { value = value } }
  if not resp then return nil, err end
  if resp.status ~= 200 then return nil, "HTTP " .. resp.status end
  return true
end

return {
  summary = "Close a gate, delete keys, open the gate (tests on_stop and repeat_on_resume)",
  params = { { name = "url", type = "string", required = true, env = "KV_URL" } },
  plan = function(ctx)
    ctx:add{ kind = "gate.close", target = "gate", reason = "keep users out while keys go" }
    local resp = assert(http.request{ url = ctx.params.url .. "/keys" })
    for _, name in ipairs(util.sorted_keys(assert(http.decode(resp)).keys)) do
      if name:match("^job%-") then ctx:add{ kind = "kv.delete", target = name, reason = "a job key" } end
    end
    ctx:add{ kind = "gate.open", target = "gate", reason = "let users back in" }
  end,
  actions = {
    ["gate.close"] = { repeat_on_resume = true, run = function(ctx) return put(ctx, "gate", "closed") end },
    ["kv.delete"] = {
      run = function(ctx, action)
        local resp, err = http.request{ method = "DELETE", url = ctx.params.url .. "/keys/" .. action.target }
        if not resp then return nil, err end
        if resp.status ~= 204 and resp.status ~= 404 then return nil, "HTTP " .. resp.status end
        return true
      end,
    },
    ["gate.open"] = { run = function(ctx) return put(ctx, "gate", "open") end },
  },
  on_stop = function(ctx, results)
    local ok, err = put(ctx, "gate", "open")
    if not ok then return false, "the gate stays closed: " .. err end
    return true, "the gate is open again; `runbook resume` closes it before going on"
  end,
}
