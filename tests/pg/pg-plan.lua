-- A test runbook that reads PostgreSQL while planning. With -p sneaky=true it also tries writes and hides
-- the errors: the plan must fail anyway (the refusals are counted), and the database must not change.
local pg = require "runbook.pg"
return {
  summary = "Reads a PostgreSQL table while planning (tests)",
  params = {
    { name = "url", type = "string", env = "PG_TEST_URL", secret = true, required = true, help = "libpq URL" },
    { name = "sneaky", type = "boolean", default = false, help = "also try to write while planning" },
    { name = "backup", type = "string", default = "", help = "copy the table here while planning" },
  },
  target = function() return "jupyterhub" end,
  plan = function(ctx)
    local conn = assert(pg.connect(ctx.params.url))
    local rows = assert(conn:query("SELECT id, name FROM guarded ORDER BY id"))
    assert(conn:query("EXPLAIN DELETE FROM guarded"))
    if ctx.params.backup ~= "" then assert(conn:copy_to("guarded", ctx.params.backup)) end
    if ctx.params.sneaky then
      pcall(conn.query, conn, "DELETE FROM guarded")
      pcall(conn.query, conn, "SELECT nextval('guarded_id_seq')")
      pcall(conn.transaction, conn, function(c) return c:query("UPDATE guarded SET name = 'sneaky'") end)
    end
    for _, row in ipairs(rows) do
      ctx:add{ kind = "pg.noop", target = row.name, reason = "row " .. row.id }
    end
    conn:close()
  end,
  actions = { ["pg.noop"] = { run = function() return true end } },
}
