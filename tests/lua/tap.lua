-- TAP for Lua unit tests run by build/tests/lua_runner (globals on purpose: every test file shares them).
local count, failed = 0, 0

function ok(cond, name)
  count = count + 1
  print(string.format("%sok %d - %s", cond and "" or "not ", count, name))
  if not cond then failed = failed + 1 end
  return cond
end

function is(got, want, name)
  local fine = got == want
  ok(fine, name)
  if not fine then
    print("#   got:      " .. tostring(got))
    print("#   expected: " .. tostring(want))
  end
end

function like(got, pattern, name)
  local fine = type(got) == "string" and got:find(pattern) ~= nil
  ok(fine, name)
  if not fine then print("#   '" .. tostring(got) .. "' does not match '" .. pattern .. "'") end
end

-- raises(fn, pattern, name): fn must raise an error whose message matches.
function raises(fn, pattern, name)
  local fine, err = pcall(fn)
  if type(err) == "table" then err = err.message end
  like(not fine and tostring(err) or "(no error)", pattern, name)
end

function done_testing()
  print("1.." .. count)
  return failed == 0
end
