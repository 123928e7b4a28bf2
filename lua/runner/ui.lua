-- Everything the operator reads. Machine output (--output json) goes to stdout; human text goes to
-- stdout in text mode and to stderr in json mode, so scripts can parse stdout whatever happens.
--
-- Text from servers (user names, reasons, messages) is untrusted: a hub keeps ESC, CR, LF and BEL in
-- user names, and a name like "\27]52;c;...\7" would write the operator's clipboard. So every byte
-- runbook writes as text goes through one filter here (ui.say, info, warn, error, verbose, table,
-- progress, prompt): control characters (C0, DEL, C1 U+0080-U+009F, the bidirectional overrides) and
-- invalid UTF-8 are shown escaped, visibly ("\x1b", "\r", "\x07", "\u0085", "\xff"), and every secret
-- the process holds (runbook.secrets) is replaced by ***. Two characters are kept because the
-- engine's own text is made of them: TAB, and LF as the end of a line the caller wrote -- except
-- while actions are applied, when each ui.say is one line (the line of one action) and an LF in it
-- can only have come from data. Values from servers that the engine places into its lines (the plan,
-- the report, the confirmation) are passed through ui.escape first, which escapes LF and TAB too.
-- Backslashes are not doubled: a name that contains the four characters "\x1b" prints as they do;
-- --output json is the exact form.
--
-- Styles (bold, colors) are not escape sequences while the text is being put together: ui.style
-- wraps text in a marker made of a per-process random nonce, which the filter turns into SGR
-- sequences after escaping everything else. A server cannot forge the marker; so it can neither
-- send escape sequences itself nor close or open our styles.
local host = require "runbook.host"
local secrets = require "runbook.secrets"
local util = require "runbook.util"

local ui = { output = "text", verbose_level = 0, quiet = false, color = false }

local codes = { bold = "1", dim = "2", red = "31", green = "32", yellow = "33", cyan = "36" }

function ui.configure(opts)
  ui.output = opts.output or "text"
  ui.verbose_level = opts.verbose or 0
  ui.quiet = opts.quiet or false
  local want_color = not opts.no_color and (os.getenv("NO_COLOR") or "") == "" and os.getenv("TERM") ~= "dumb"
  ui.color = want_color and host.isatty(ui.output == "json" and 2 or 1)
  ui.err_color = want_color and host.isatty(2)
end

-- ---- escaping ----

local NAMED = { [9] = "\\t", [10] = "\\n", [13] = "\\r" }

-- U+202A-U+202E and U+2066-U+2069 reorder what a terminal shows ("Trojan Source").
local function invisible_control(cp)
  return (cp >= 0x80 and cp <= 0x9F) or (cp >= 0x202A and cp <= 0x202E) or (cp >= 0x2066 and cp <= 0x2069)
end

local function lead_length(b)
  if b >= 0xC2 and b <= 0xDF then return 2 end
  if b >= 0xE0 and b <= 0xEF then return 3 end
  if b >= 0xF0 and b <= 0xF4 then return 4 end
  return nil
end

-- escape_text(s, keep_lines): s with controls and invalid UTF-8 made visible; LF and TAB kept when
-- keep_lines. Idempotent: what it returns has nothing left to escape.
local function escape_text(s, keep_lines)
  if not s:find("[%z\1-\31\127-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local j = s:find("[%z\1-\31\127-\255]", i)
    if not j then
      out[#out + 1] = s:sub(i)
      break
    end
    if j > i then out[#out + 1] = s:sub(i, j - 1) end
    local b = s:byte(j)
    if b < 0x80 then
      if keep_lines and (b == 9 or b == 10) then
        out[#out + 1] = string.char(b)
      else
        out[#out + 1] = NAMED[b] or string.format("\\x%02x", b)
      end
      i = j + 1
    else
      local len = lead_length(b)
      local seq = len and s:sub(j, j + len - 1)
      if seq and #seq == len and seq:find("^[\128-\255][\128-\191]+$") and utf8.len(seq) == 1 then
        local cp = utf8.codepoint(seq)
        out[#out + 1] = invisible_control(cp) and string.format("\\u%04x", cp) or seq
        i = j + len
      else
        out[#out + 1] = string.format("\\x%02x", b)
        i = j + 1
      end
    end
  end
  return table.concat(out)
end

-- ui.escape(value) -> its text, every control character (LF and TAB too) and invalid byte made
-- visible. For values from servers placed into a line: names, reasons, messages.
function ui.escape(value)
  return escape_text(tostring(value), false)
end

-- ---- styles ----

local nonce -- made when the first style is painted: only runs with colors need one

local function make_nonce()
  local bytes
  local f = io and io.open("/dev/urandom", "rb")
  if f then
    bytes = f:read(12)
    f:close()
  end
  if not bytes or #bytes < 12 then
    bytes = tostring({}) .. tostring(host.monotonic()) .. tostring(host.now()) .. tostring(host.getpid())
  end
  -- Printable, so that a marker that got past the filter (it never should) shows as text.
  return "{" .. bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end) .. "}"
end

local function paint(enabled, code, s)
  if not enabled then return s end
  nonce = nonce or make_nonce()
  return nonce .. code .. "m" .. s .. nonce .. "0m"
end

-- ui.style.red("text"), for the human stream.
ui.style = setmetatable({}, { __index = function(_, name)
  return function(s) return paint(ui.color, codes[name], s) end
end })

local function err_style(name, s) return paint(ui.err_color, codes[name], s) end

-- The filter every text output goes through: secrets out, controls escaped, styles painted.
local function filter(text, keep_lines)
  text = secrets.redact(tostring(text))
  if not (nonce and text:find(nonce, 1, true)) then return secrets.redact(escape_text(text, keep_lines)) end
  local out, pos, active = {}, 1, nil
  while true do
    local s, e = text:find(nonce, pos, true)
    local piece = escape_text(text:sub(pos, (s or #text + 1) - 1), keep_lines)
    -- A style never runs across a line end: closed before it, opened again after, so that a line
    -- cut off, or a pager showing one line, never leaves the terminal coloured.
    if active then piece = piece:gsub("\n", "\27[0m\n\27[" .. active .. "m") end
    out[#out + 1] = piece
    if not s then break end
    local code, after = text:match("^([%d;]+)m()", e + 1)
    if code then
      out[#out + 1] = "\27[" .. code .. "m"
      active = code ~= "0" and code or nil
      pos = after
    else
      pos = e + 1
    end
  end
  return secrets.redact(table.concat(out))
end
ui.filter = filter

-- The width of text as it will show: escaped, without style markers, in characters (UTF-8).
local function shown_width(s)
  s = tostring(s)
  if nonce then s = s:gsub(nonce:gsub("%p", "%%%0") .. "[%d;]+m", "") end
  s = escape_text(s, false)
  return utf8.len(s) or #s
end

-- While actions are applied, each ui.say is the line of one action: an LF in it came from data.
local function one_line()
  return (host.phase()) == "apply"
end

-- A progress line being shown on the terminal (it has no line end yet): anything else written
-- first clears it, so that no message is glued onto the counter; the next update draws it again.
local progress_shown = false
local progress_state = {}

local function clear_progress()
  if not progress_shown then return end
  host.write(2, "\r\27[K")
  progress_shown = false
  for _, st in pairs(progress_state) do st.last = 0 end
end

-- Human-readable report lines (the plan, the results).
function ui.say(s)
  clear_progress()
  host.write(ui.output == "json" and 2 or 1, filter(s or "", not one_line()) .. "\n")
end

-- Machine-readable document, only in json mode. JSON escapes controls itself and stays exact;
-- only secrets are taken out.
function ui.emit_json(text)
  host.write(1, secrets.redact(text) .. "\n")
end

function ui.info(s)
  clear_progress()
  if not ui.quiet then host.write(2, filter(s, true) .. "\n") end
end

function ui.verbose(s, level)
  if ui.verbose_level >= (level or 1) then
    clear_progress()
    host.write(2, filter(err_style("dim", s), true) .. "\n")
  end
end

function ui.warn(s)
  clear_progress()
  host.write(2, filter(err_style("yellow", "warning: ") .. s, true) .. "\n")
end

-- warn_once(key, s): the warning once per run, however often its cause comes up.
local warned = {}
function ui.warn_once(key, s)
  if warned[key] then return end
  warned[key] = true
  ui.warn(s)
end

function ui.error(s)
  clear_progress()
  host.write(2, filter(err_style("red", "runbook: ") .. s, true) .. "\n")
end

-- A question on stderr, answered on the same line (the confirmation).
function ui.prompt(s)
  clear_progress()
  host.write(2, filter(s, true))
end

-- Pads a cell to a width counted in characters as shown (UTF-8, escaped, unstyled), not bytes.
function ui.pad(s, width)
  s = tostring(s)
  local n = shown_width(s)
  return n >= width and s or s .. string.rep(" ", width - n)
end

-- Prints rows as aligned columns; the last column is not padded. Cells are shown escaped.
function ui.table(rows, indent)
  clear_progress()
  local widths = {}
  for _, row in ipairs(rows) do
    for i = 1, #row - 1 do widths[i] = math.max(widths[i] or 0, shown_width(row[i])) end
  end
  for _, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do
      cells[i] = filter(i < #row and ui.pad(cell, widths[i]) or tostring(cell), false)
    end
    host.write(ui.output == "json" and 2 or 1, filter(indent or "", false) .. table.concat(cells, "  ") .. "\n")
  end
end

-- Progress for long phases: a rewritten line on a terminal, a plain line every few seconds otherwise.
-- force: draw now whatever the time since the last update (the final count).
function ui.progress(label, done, total, force)
  if ui.quiet then return end
  local now = host.monotonic()
  local st = progress_state[label]
  if not st then
    st = { started = now, last = 0 }
    progress_state[label] = st
  end
  local finished = total and done >= total
  local tty = host.isatty(2)
  if not finished and not force and now - st.last < (tty and 0.2 or 5) then return end
  st.last = now
  local rate = done / math.max(now - st.started, 1e-3)
  local text
  if total and total > 0 then
    local eta = rate > 0 and (total - done) / rate or 0
    text = string.format("%s: %d/%d (%.0f/s, %ds left)", label, done, total, rate, math.floor(eta + 0.5))
  else
    text = string.format("%s: %d (%.0f/s)", label, done, rate)
  end
  text = filter(text, false)
  if tty then
    host.write(2, "\r\27[K" .. text .. (finished and "\n" or ""))
    progress_shown = not finished
  elseif now - st.started >= 2 then
    host.write(2, text .. "\n")
  end
  if finished then progress_state[label] = nil end
end

-- Waiting for something outside runbook (a rollout, a namespace to go, a schema to appear): what is
-- awaited, its state as it changes, and the time against the timeout, as `kubectl rollout status`
-- and `helm --wait` show it. Nothing for the first second (most waits are shorter); then on a
-- terminal a line rewritten each second, elsewhere a line each time the state changes (and every
-- 30 s while it does not, so a log shows the run is alive).
local waits = {}
function ui.waiting(what, state, elapsed, timeout)
  if ui.quiet or elapsed < 1 then return end
  local now = host.monotonic()
  local w = waits[what]
  if not w then
    w = { last = -math.huge }
    waits[what] = w
  end
  local tty = host.isatty(2)
  if state == w.state and now - w.last < (tty and 1 or 30) then return end
  w.state, w.last = state, now
  local text = filter(string.format("waiting for %s: %s (%ds of %ds)", what, state or "not yet",
    math.floor(elapsed), math.floor(timeout)), false)
  if tty then
    host.write(2, "\r\27[K" .. text)
    progress_shown = true
  else
    host.write(2, text .. "\n")
  end
end

-- The wait is over: its line goes (the action's own result says how it ended).
function ui.waiting_done(what)
  if waits[what] then clear_progress() end
  waits[what] = nil
end

-- Ends a progress line: with done (and total), the last count is shown as it is, so the line never
-- stays frozen at an earlier count (a run that stopped early, a listing of unknown size).
function ui.progress_done(label, done, total)
  local st = progress_state[label]
  if st and done and not ui.quiet and (total == nil or done < total) then
    ui.progress(label, done, total, true)
  end
  if progress_state[label] and progress_shown and not ui.quiet then
    host.write(2, "\n")
    progress_shown = false
  end
  progress_state[label] = nil
end

-- ---- the confirmation ----

-- What the confirmation must let the operator check: where runbook will connect and where each
-- credential comes from (parameters that name URLs, files and the Kubernetes selection).
function ui.show_access(def, ctx)
  local lines = {}
  for _, spec in ipairs(def.params) do
    local value = ctx.params[spec.name]
    if spec.type == "path" or spec.name == "hub" or spec.name == "gitlab" or spec.name:match("url$") then
      if type(value) == "string" and value ~= "" then
        lines[#lines + 1] = string.format("  %s: %s", spec.name, util.redact_url(value))
      elseif spec.name == "token_file" then
        lines[#lines + 1] = "  token_file: none (the token comes from the environment)"
      end
    end
  end
  for _, key in ipairs({ "kubeconfig", "context", "namespace" }) do
    if ctx.options[key] then lines[#lines + 1] = string.format("  --%s: %s", key, ctx.options[key]) end
  end
  if #lines > 0 then
    ui.info("Connecting with:")
    for _, line in ipairs(lines) do ui.info(line) end
  end
end

-- Asks the operator to type the target's name. Exit 3 when refused or impossible.
function ui.confirm(doc, pending, opts)
  if opts.yes then return end
  if not host.isatty(0) then
    util.fail(3, "not applying: confirmation needs a terminal on standard input; review the plan and pass --yes " ..
      "to apply without asking")
  end
  -- Each value escaped: what is typed must match what was shown.
  local E = ui.escape
  local also = ""
  for _, text in ipairs(doc.consequences or {}) do also = also .. "\n" .. ui.style.bold("This also: ") .. E(text) end
  local effect = ""
  if doc.effect and #doc.effect > 0 then
    -- runner.render draws through ui: required here, when a plan with an effect is confirmed.
    effect = "\n" .. ui.style.bold("Effect: ") .. require("runner.render").effect_line(doc, pending)
  end
  ui.prompt(string.format("\n%s will carry out %d action%s on %s.%s%s\nType %s to go on, anything else to stop: ",
    E(doc.runbook), pending, pending == 1 and "" or "s", ui.style.bold(E(doc.target)), also, effect,
    ui.style.bold(E(doc.target))))
  local answer = host.read_line()
  if answer == nil or util.trim(answer) ~= doc.target then
    util.fail(3, "aborted at the confirmation (typed %q, expected %q); nothing was changed", answer or "", doc.target)
  end
end

return ui
