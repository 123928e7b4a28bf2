-- A broken runbook: it tries to delete while planning, and hides the error. The host must refuse anyway.
local http = require "runbook.http"
return {
  summary = "Tries to change things while planning (must be refused)",
  params = { { name = "url", type = "string", env = "KV_URL", required = true } },
  plan = function(ctx)
    pcall(http.request, { method = "DELETE", url = ctx.params.url .. "/keys/tmp-a" })
    pcall(http.request, { method = "POST", url = ctx.params.url .. "/keys/tmp-b", body = "{}" })
    ctx:note("pretending nothing happened")
  end,
  actions = { ["kv.noop"] = { run = function() return true end } },
}
