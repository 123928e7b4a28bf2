-- Everything the operator reads. Machine output (--output json) goes to stdout; human text goes to
-- stdout in text mode and to stderr in json mode, so scripts can parse stdout whatever happens.
local host = require "runbook.host"

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

local function paint(enabled, code, s)
  if not enabled then return s end
  return "\27[" .. code .. "m" .. s .. "\27[0m"
end

-- ui.style.red("text"), for the human stream.
ui.style = setmetatable({}, { __index = function(_, name)
  return function(s) return paint(ui.color, codes[name], s) end
end })

local function err_style(name, s) return paint(ui.err_color, codes[name], s) end

-- Human-readable report lines (the plan, the results).
function ui.say(s)
  host.write(ui.output == "json" and 2 or 1, (s or "") .. "\n")
end

-- Machine-readable document, only in json mode.
function ui.emit_json(text)
  host.write(1, text .. "\n")
end

function ui.info(s)
  if not ui.quiet then host.write(2, s .. "\n") end
end

function ui.verbose(s, level)
  if ui.verbose_level >= (level or 1) then host.write(2, err_style("dim", s) .. "\n") end
end

function ui.warn(s)
  host.write(2, err_style("yellow", "warning: ") .. s .. "\n")
end

function ui.error(s)
  host.write(2, err_style("red", "runbook: ") .. s .. "\n")
end

-- Pads a cell to a width counted in characters (UTF-8), not bytes.
function ui.pad(s, width)
  s = tostring(s)
  local n = utf8.len(s) or #s
  return n >= width and s or s .. string.rep(" ", width - n)
end

-- Prints rows as aligned columns; the last column is not padded.
function ui.table(rows, indent)
  local widths = {}
  for _, row in ipairs(rows) do
    for i = 1, #row - 1 do
      local n = utf8.len(tostring(row[i])) or #tostring(row[i])
      widths[i] = math.max(widths[i] or 0, n)
    end
  end
  for _, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do cells[i] = i < #row and ui.pad(cell, widths[i]) or tostring(cell) end
    ui.say((indent or "") .. table.concat(cells, "  "))
  end
end

-- Progress for long phases: a rewritten line on a terminal, a plain line every few seconds otherwise.
local progress_state = {}
function ui.progress(label, done, total)
  if ui.quiet then return end
  local now = host.monotonic()
  local st = progress_state[label]
  if not st then
    st = { started = now, last = 0 }
    progress_state[label] = st
  end
  local finished = total and done >= total
  local tty = host.isatty(2)
  if not finished and now - st.last < (tty and 0.2 or 5) then return end
  st.last = now
  local rate = done / math.max(now - st.started, 1e-3)
  local text
  if total and total > 0 then
    local eta = rate > 0 and (total - done) / rate or 0
    text = string.format("%s: %d/%d (%.0f/s, %ds left)", label, done, total, rate, math.floor(eta + 0.5))
  else
    text = string.format("%s: %d (%.0f/s)", label, done, rate)
  end
  if tty then
    host.write(2, "\r\27[K" .. text .. (finished and "\n" or ""))
  elseif now - st.started >= 2 or finished and now - st.started >= 2 then
    host.write(2, text .. "\n")
  end
  if finished then progress_state[label] = nil end
end

-- Ends a progress line that did not reach its total (listing whose size was unknown).
function ui.progress_done(label)
  if progress_state[label] and host.isatty(2) and not ui.quiet then host.write(2, "\n") end
  progress_state[label] = nil
end

return ui
