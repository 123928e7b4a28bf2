-- What a runbook makes once per phase and keeps in ctx.state (require "runbook.ctxstate"): a client
-- that connected and checked its token, a listing every action needs.
--
--   local function connect(ctx)
--     return ctxstate.once(ctx, "client", function()
--       local client, err = hub.connect{ ... }
--       if not client then util.fail(2, err) end
--       return client
--     end)
--   end
local util = require "runbook.util"

local ctxstate = {}

-- once(ctx, key, make) -> ctx.state[key], made by make(ctx) the first time. A make that raises (a
-- util.fail) keeps nothing, so the next call tries again; one that returns nil is a bug.
function ctxstate.once(ctx, key, make)
  local value = ctx.state[key]
  if value ~= nil then return value end
  value = make(ctx)
  if value == nil then error("ctxstate.once: making '" .. tostring(key) .. "' returned nothing", 2) end
  ctx.state[key] = value
  return value
end

-- k8s(ctx) -> the Kubernetes client of the command line's --kubeconfig/--context/-n, connected once
-- (kept as ctx.state.k8s); no kubeconfig or an unknown context is the operator's to fix: exit 2.
function ctxstate.k8s(ctx)
  return ctxstate.once(ctx, "k8s", function()
    local client, err = require("runbook.k8s").connect(ctx.options) -- loaded when a runbook needs it
    if not client then util.fail(2, err) end
    return client
  end)
end

return ctxstate
