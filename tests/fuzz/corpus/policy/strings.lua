local s = string.format("%s-%d", "x", 3) .. string.rep("ab", 10, ",")
protected_users = { s:upper(), (s:gsub("x", "y")) }
exclude = function(u) return u.name:match("^ana") ~= nil end
