-- Fails at run time while planning, in a nested function, to show the traceback.
local function discover(ctx)
  local missing = nil
  return missing.field
end
return {
  summary = "errors while planning",
  plan = function(ctx) discover(ctx) end,
  actions = { ["kv.noop"] = { run = function() return true end } },
}
