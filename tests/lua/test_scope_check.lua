-- hub.scope_check: what a token lacks for what apply will do, counted target by target, and the one
-- refusal built from it (prune-dormant's and restore-users' plan-time pre-flight).
local hub = require "runbook.hub"

local ROLE = { name = "restore-users", scopes = { "admin:users", "groups" } }
local me = { kind = "service", name = "ops", scopes = { "list:users", "read:users" } }

-- Everything granted: no refusal.
local full = hub.scope_check(hub.token_scopes({ scopes = { "admin:users", "admin:groups" } }))
ok(full:need("admin:users", { name = "a", groups = {} }, "users to re-create"), "admin:users granted: need() is true")
ok(full:need("groups", { groups = { "staff" } }, "users to put back in their groups"), "admin:groups holds groups")
is(#full:missing(), 0, "  nothing missing")
is(full:refusal(me, ROLE), nil, "  no refusal")

-- A read-only token, seven users, two of them in a group.
local ro = hub.scope_check(hub.token_scopes(me))
for i = 1, 7 do
  local name = "u" .. i
  ro:need("admin:users", { name = name, groups = {} }, "users to re-create")
  if i <= 2 then ro:record("groups", false, name, "users to put back in their groups") end
  ro:need("users:activity", { name = name, groups = {} }, "users whose last activity is restored")
end
is(table.concat(ro:missing(), ","), "admin:users,groups,users:activity", "missing: in the order first needed")
local text = ro:refusal(me, ROLE)
like(text, "^the hub token cannot do what apply would do: it lacks\n", "the refusal's first line")
like(text, "\n  admin:users, for 7 of the 7 users to re%-create %(u1, u2, u3, u4, u5, %.%.%.%)\n",
  "  a scope no broader one holds: no '(or )'; five names, then ...")
like(text, "\n  groups %(or admin:groups%), for 2 of the 2 users to put back in their groups %(u1, u2%)\n",
  "  a scope held by a broader one names it; its own count")
like(text, "\n  users:activity %(or users or admin:users%), for 7 of the 7 users whose last activity is restored",
  "  each scope with what it is for")
like(text, "The token belongs to service 'ops'; its scopes: list:users, read:users%.", "  who the token is, what it has")
like(text, 'c%.JupyterHub%.load_roles = %[{"name": "restore%-users", "scopes": %["admin:users", "groups"%], ' ..
  '"services": %["ops"%]}%]\nthen plan again%. Nothing was changed%.$', "  the role to grant, to the service")
like(hub.scope_check(hub.token_scopes({ scopes = {} })):refusal({ kind = "user", name = "op", scopes = {} }, ROLE) or "",
  "^$", "nothing needed: no refusal even with no scopes")
local user_check = hub.scope_check(hub.token_scopes({ scopes = {} }))
user_check:need("admin:users", { name = "x", groups = {} }, "users to re-create")
local user_text = user_check:refusal({ kind = "user", name = "op", scopes = {} }, ROLE)
like(user_text, "belongs to user 'op'; its scopes: none%.", "a user's token: named as a user, no scopes: none")
like(user_text, '"users": %["op"%]}%]', "  the role is granted to the user")

-- Filtered scopes: admin:users on alice only creates alice; a group filter cannot create anyone
-- (a user who does not exist yet is in no group).
local filtered = hub.scope_check(hub.token_scopes({ scopes = { "admin:users!user=alice", "admin:users!group=staff" } }))
ok(filtered:need("admin:users", { name = "alice", groups = {} }, "users to re-create"), "admin:users!user=alice: alice")
ok(not filtered:need("admin:users", { name = "bob", groups = {} }, "users to re-create"), "  not bob")
like(filtered:refusal(me, ROLE), "admin:users, for 1 of the 2 users to re%-create %(bob%)", "  1 of 2 missing, named")
local groups = hub.token_scopes({ scopes = { "groups!group=staff" } })
ok(hub.has_scope(groups, "groups", { groups = { "staff" } }), "groups!group=staff: on group staff")
ok(not hub.has_scope(groups, "groups", { groups = { "physics" } }), "  not on physics")
ok(hub.has_scope(hub.token_scopes({ scopes = { "groups" } }), "read:groups"), "groups holds read:groups")

done_testing()
