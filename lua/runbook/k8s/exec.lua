-- Exec in a pod over the WebSocket channel protocol (v5.channel.k8s.io, v4 as fallback): every
-- binary message is a channel byte and a payload; 0 stdin, 1 stdout, 2 stderr, 3 the exit Status,
-- 255 (v5) "close this channel". Output streams to a file (hashed as written) or a callback as it
-- arrives, so a file of any size passes through a bounded amount of memory.
--
-- The phase guard is in C (ws_core.connect): an exec is a mutation unless the caller says the
-- command only reads (readonly = true), and then it runs even while planning.
local host = require "runbook.host"
local json = require "runbook.json"
local sched = require "runner.sched"
local ui = require "runner.ui"
local util = require "runbook.util"
local ws = require "runbook.ws_core"

local exec = {}

local STDIN, STDOUT, STDERR, STATUS, CLOSE = 0, 1, 2, 3, 255
local PROTOCOLS = { "v5.channel.k8s.io", "v4.channel.k8s.io" }
local STDIN_FRAME = 32 * 1024
local KEEPALIVE = 15           -- seconds of silence before we ping (proxies drop idle streams)
local MAX_STDERR = 1024 * 1024
local MAX_STATUS = 64 * 1024
local DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024 -- stdout kept in memory when no file or callback takes it

-- "sha256sum -- /srv/x" for messages (and never the stdin).
function exec.command_text(command)
  local parts = {}
  for _, word in ipairs(command) do
    parts[#parts + 1] = word:match("^[%w%-%._/=:,@+]+$") and word or string.format("%q", word)
  end
  local s = table.concat(parts, " ")
  return #s > 200 and s:sub(1, 200) .. "..." or s
end

-- The exit code from a v4/v5 Status: 0, n, or nil, message, status for a failure that is not an exit.
-- Public for the fuzz target (tests/fuzz/exec_status.c).
function exec.exit_from_status(text)
  local status = json.decode(text)
  if type(status) ~= "table" then return nil, "the exec stream ended with an unreadable status: " .. text:sub(1, 200) end
  if status.status == "Success" then return 0, nil, status end
  if status.reason == "NonZeroExitCode" then
    local causes = type(status.details) == "table" and status.details.causes or {}
    for _, cause in ipairs(type(causes) == "table" and causes or {}) do
      -- an exit code is a whole number: "1.5" or "1e300" is no exit code, and neither is a cause that is not an object
      local code = type(cause) == "table" and cause.reason == "ExitCode" and math.tointeger(tonumber(cause.message))
      if code then return code, nil, status end
    end
  end
  return nil, tostring(status.message or status.reason or "exec failed"), status
end

-- Where stdout goes: a file (created exclusively, hashed), a callback, or memory.
local function stdout_sink(opts)
  if opts.output then
    if opts.make_dirs then
      local dir = opts.output:match("^(.*)/[^/]+$")
      if dir and dir ~= "" then
        local ok, err = host.mkdirs(dir)
        if not ok then return nil, "cannot create " .. err end
      end
    end
    local out, err = host.create_output(opts.output)
    if not out then return nil, "cannot create the output file " .. err end
    return {
      write = function(data)
        local ok, werr = out:write(data)
        if not ok then error({ sink_error = werr }) end
      end,
      finish = function() return out:close() end,
      abandon = function()
        pcall(out.close, out)
        host.remove(opts.output)
      end,
    }
  end
  if opts.on_stdout then
    return { write = opts.on_stdout, finish = function() end, abandon = function() end }
  end
  local parts, size, limit = {}, 0, opts.max_output or DEFAULT_MAX_OUTPUT
  return {
    write = function(data)
      size = size + #data
      if size > limit then error({ sink_error = string.format("output larger than %d bytes; pass output= or on_stdout=", limit) }) end
      parts[#parts + 1] = data
    end,
    finish = function() return nil, nil, table.concat(parts) end,
    abandon = function() end,
  }
end

local function send_stdin(conn, protocol, data)
  for i = 1, #data, STDIN_FRAME do
    local ok, err = conn:send(string.char(STDIN) .. data:sub(i, i + STDIN_FRAME - 1))
    if not ok then return nil, "sending stdin: " .. err end
  end
  if protocol == "v5.channel.k8s.io" then
    local ok, err = conn:send(string.char(CLOSE, STDIN))
    if not ok then return nil, "closing stdin: " .. err end
  end
  return true
end

-- Reads the stream to its end, feeding the sinks. Returns status text | nil, message.
-- A quiet stream is pinged; one that answers neither with data nor a pong within answer_timeout is
-- dead (a stalled proxy or node keeps the TCP connection up): without this, only the whole exec's
-- timeout (an hour by default) would end the wait.
local function pump(conn, sink, state, deadline, answer_timeout)
  local channel
  local stderr_parts, stderr_size, status_text = {}, 0, {}
  local quiet_since, pinged_at = host.monotonic(), nil
  local keepalive = math.min(KEEPALIVE, answer_timeout)
  while true do
    local left = deadline - host.monotonic()
    if left <= 0 then return nil, "timed out" end
    local kind, data, message_start = conn:read(math.min(left, keepalive))
    if kind == "data" or kind == "pong" then
      quiet_since, pinged_at = host.monotonic(), nil
    end
    if kind == "pong" then -- nothing more to do
    elseif kind == "data" then
      if message_start then
        channel = data:byte(1)
        data = data:sub(2)
      end
      if #data > 0 then -- the server opens with an empty stdout message: nothing to do with it
        if channel == STDOUT then
          state.bytes = state.bytes + #data
          sink.write(data)
        elseif channel == STDERR then
          if stderr_size < MAX_STDERR then
            stderr_parts[#stderr_parts + 1] = data:sub(1, MAX_STDERR - stderr_size)
            stderr_size = stderr_size + #data
          end
        elseif channel == STATUS then
          if #table.concat(status_text) < MAX_STATUS then status_text[#status_text + 1] = data end
        end
      end
    elseif kind == "close" then
      state.stderr = table.concat(stderr_parts)
      return table.concat(status_text)
    elseif data == "timeout" then
      local now = host.monotonic()
      if pinged_at and now - pinged_at >= answer_timeout then
        return nil, string.format("nothing from the server, not even an answer to a ping, for %ds", math.floor(now - quiet_since))
      end
      if not pinged_at and now - quiet_since >= keepalive then
        conn:send("runbook", "ping")
        pinged_at = now
      end
    else
      state.stderr = table.concat(stderr_parts)
      if #status_text > 0 then return table.concat(status_text) end -- the status came; the close frame did not
      return nil, data
    end
  end
end

-- connect with the API's own answers: 401 refreshes credentials once, 429/5xx with Retry-After wait.
local function open(client, url, opts, what)
  local refreshed = false
  for attempt = 1, 4 do
    local headers, err = client.credentials:headers()
    if not headers then return nil, err end
    local header_lines = {}
    for name, value in pairs(headers) do header_lines[#header_lines + 1] = name .. ": " .. value end
    local options = client:tls_options()
    options.url, options.headers, options.protocols = url, header_lines, opts.protocols or PROTOCOLS
    options.readonly, options.what, options.timeout = opts.readonly == true, what, client.timeout
    local conn, message, detail = ws.connect(options)
    if conn then return conn end
    if detail.kind ~= "http" then return nil, message, detail end
    local retry_after = tonumber(detail.retry_after or "")
    if detail.status == 401 and not refreshed and client.credentials:refresh() then
      refreshed = true
    elseif (detail.status == 429 or detail.status >= 500) and retry_after and retry_after <= 120 and attempt < 4 then
      ui.verbose(string.format("exec %s: HTTP %d, retrying in %ds", what, detail.status, retry_after))
      sched.sleep(retry_after)
    else
      return nil, nil, detail
    end
  end
end

-- run(client, namespace, pod, command, opts) -> result | nil, message, details
-- opts: container=, stdin= (string), readonly=, output= (path: created exclusively, 0600),
--       make_dirs=, on_stdout= (function(chunk)), max_output=, timeout= (seconds, default 3600),
--       protocols= (the sub-protocols offered; default v5 then v4)
-- result: {exit_code=, stderr=, stdout= (kept in memory only without output/on_stdout),
--          sha256=, size= (with output), protocol=}
-- A non-zero exit is a result (exit_code ~= 0), not a failure: the caller knows what the command means
-- (with output=, the file is then removed). A failure (refused, cut, timed out) removes it too.
function exec.run(client, namespace, pod, command, opts)
  opts = opts or {}
  if type(command) ~= "table" or #command == 0 then error("exec needs the command as a list of words", 3) end
  local query = { command = command, container = opts.container, stdout = true, stderr = true,
                  stdin = opts.stdin ~= nil or nil }
  local url = client.server .. "/api/v1/namespaces/" .. util.url_escape(namespace) .. "/pods/" .. util.url_escape(pod)
    .. "/exec?" .. util.query(query)
  local target = "pods/" .. namespace .. "/" .. pod
  local what = string.format("exec of `%s` in %s", exec.command_text(command), target)
  ui.verbose(what, 2)
  local conn, err, detail = open(client, url, opts, what)
  if not conn then
    if err then return nil, client:failure_message("EXEC", target, err, detail), detail end
    return client:status_failure("EXEC", target, { status = detail.status, body = detail.body or "", headers = {} })
  end
  local protocol = conn:protocol()
  if protocol ~= "v5.channel.k8s.io" and protocol ~= "v4.channel.k8s.io" then
    conn:close()
    return nil, string.format("%s: the server chose the exec protocol '%s'; runbook needs v4 or v5.channel.k8s.io",
      what, protocol)
  end
  local sink, sink_err = stdout_sink(opts)
  if not sink then
    conn:close()
    return nil, sink_err
  end
  if opts.stdin then
    if protocol ~= "v5.channel.k8s.io" then
      conn:close()
      sink.abandon()
      return nil, what .. ": sending stdin needs v5.channel.k8s.io (Kubernetes 1.30 or later) to signal its end"
    end
    local ok, send_err = send_stdin(conn, protocol, opts.stdin)
    if not ok then
      conn:close()
      sink.abandon()
      return nil, string.format("%s: %s", what, send_err)
    end
  end
  local state = { bytes = 0 }
  local ok, status_text, pump_err = pcall(pump, conn, sink, state, host.monotonic() + (opts.timeout or 3600),
    client.timeout)
  conn:close()
  if not ok then
    sink.abandon()
    if type(status_text) == "table" and status_text.sink_error then return nil, what .. ": " .. status_text.sink_error end
    error(status_text, 0) -- the caller's callback raised: that is the caller's error
  end
  if not status_text then
    sink.abandon()
    return nil, string.format("%s: the stream was cut after %d bytes of output (%s); the command's outcome is unknown%s",
      what, state.bytes, pump_err, opts.output and ", the partial file was removed" or ""), { kind = "cut", bytes = state.bytes }
  end
  if status_text == "" then
    sink.abandon()
    return nil, what .. ": the stream ended without an exit status", { kind = "cut", bytes = state.bytes }
  end
  local code, failure, status = exec.exit_from_status(status_text)
  if not code then
    sink.abandon()
    return nil, string.format("%s: %s", what, failure), status
  end
  if code ~= 0 and opts.output then
    sink.abandon() -- a failed `cat` leaves nothing worth keeping
    return { exit_code = code, stderr = state.stderr or "", protocol = protocol, status = status }
  end
  local sha256, size, stdout = sink.finish()
  if opts.output and not sha256 then
    host.remove(opts.output)
    return nil, string.format("%s: writing %s failed: %s", what, opts.output, tostring(size))
  end
  return { exit_code = code, stderr = state.stderr or "", stdout = stdout, sha256 = sha256, size = size,
           protocol = protocol, status = status }
end

return exec
