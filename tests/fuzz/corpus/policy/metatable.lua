exclude = setmetatable({}, { __call = function() return true end })
local t = setmetatable({}, { __index = function(t, k) return k end })
days = #t.xyz
