-- TAP for Lua unit tests run by build/tests/lua_runner, one test file a process (globals on purpose: the
-- test file uses them). Every test file ends with done_testing(), which prints its plan: a file that
-- returns or exits early prints none, and tests/01-units.t fails it.
local count, failed, planned = 0, 0, false

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
  if planned then error("done_testing() called twice", 2) end
  planned = true
  print("1.." .. count)
  return failed == 0
end

-- For lua_runner, once the test file has run: did it reach done_testing() with every test passing?
function tap_passed()
  if not planned then print("# the test file ended without calling done_testing(): no plan") end
  return planned and failed == 0
end
