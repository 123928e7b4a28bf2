-- Tries to leave the sandbox in the way named by the `how` parameter; every way must fail.
return {
  summary = "tries to escape the sandbox",
  params = { { name = "how", type = "string", required = true } },
  plan = function(ctx)
    local how = ctx.params.how
    if how == "io" then return io.open("/etc/passwd") end
    if how == "execute" then return os.execute("true") end
    if how == "host" then return require("runbook.host").write(1, "escaped") end
    if how == "loadfile" then return loadfile("/etc/passwd") end
    if how == "bytecode" then return load("\27Lua") end
    if how == "debug" then return debug.getregistry() end
    if how == "global" then undeclared_global = 1 end
  end,
  actions = { ["kv.noop"] = { run = function() return true end } },
}
