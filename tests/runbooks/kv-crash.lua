-- Fails while planning: a bug in a nested function (how=bug: the traceback is shown), or a message
-- raised without a position, as modules report the outside world from inside an iterator (how=message).
local function discover(ctx)
  local missing = nil
  return missing.field
end
return {
  summary = "errors while planning",
  params = { { name = "how", type = "string", default = "bug", help = "bug or message" } },
  plan = function(ctx)
    if ctx.params.how == "message" then error("kv 127.0.0.1: GET /keys: HTTP 503: try again later", 0) end
    discover(ctx)
  end,
  actions = { ["kv.noop"] = { run = function() return true end } },
}
