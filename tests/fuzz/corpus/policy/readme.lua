-- policy.lua, for prune-dormant
days = 180
grace_days = 14
max_actions = 500
protected_users = { "alice", "bob" }
exclude = function(user)
  for _, g in ipairs(user.groups or {}) do if g == "staff" then return "staff member" end end
  return false
end
