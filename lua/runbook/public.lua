-- The modules a runbook may `require`: the one list of them, read by the sandbox (runner.sandbox) for
-- runbooks and `runbook exec` scripts alike. A name not here is refused ("module '...' is not available
-- to runbooks"): the engine (commands, plan, journal, ...), runbook.host (files, processes, the terminal)
-- and the plumbing the service clients share (runbook.rest) stay out of a runbook's reach, so that it
-- touches the outside world only through the calls below, whose writes the planning guard refuses while
-- planning and whose messages keep secrets out.
--
-- What belongs here: a module written for runbooks to call, with the API documented in README.md
-- ("Modules") and listed in the man page (`exec`); adding one here makes it part of that API. They are
-- loaded through the engine's require, so a runbook and the engine share one copy.
return {
  ["runbook.http"] = "HTTP with retries, for any JSON API",
  ["runbook.hub"] = "the JupyterHub REST API",
  ["runbook.gitlab"] = "the GitLab REST API",
  ["runbook.k8s"] = "the Kubernetes API",
  ["runbook.k8s.access"] = "Kubernetes permissions asked in advance (kubectl auth can-i)",
  ["runbook.pg"] = "PostgreSQL",
  ["runbook.storage"] = "users' storage on Kubernetes",
  ["runbook.backup"] = "the one way a runbook writes files",
  ["runbook.userbackup"] = "the records of deleted users, saved and read back",
  ["runbook.caps"] = "per-run and per-day caps on what a runbook changes",
  ["runbook.ctxstate"] = "connect once per run: a connection kept in ctx.state",
  ["runbook.dormancy"] = "what the dormant-user runbooks share (thresholds, protection, parameters)",
  ["runbook.json"] = "JSON, with json.null and arrays that stay arrays",
  ["runbook.util"] = "time, URLs, counts and other small helpers",
  ["cjson"] = "lua-cjson itself, for scripts written against it",
}
