-- How a plan reads on a terminal: what will be done, grouped by kind, and what was left alone,
-- grouped by reason. Long lists are cut with a count; the full list is in --output json and -o files.
-- Everything in a plan may come from a server (names, reasons, facts) or from a plan file someone
-- else wrote: each value is passed through ui.escape (E below) before it is placed in a line.
local ui = require "runner.ui"
local util = require "runbook.util"

local render = {}

local SHOWN_PER_GROUP = 20

local E = ui.escape

local function value_text(v)
  if type(v) == "table" then
    local items = {}
    for _, x in ipairs(v) do items[#items + 1] = E(x) end
    return "{" .. table.concat(items, ",") .. "}"
  end
  return E(v)
end

-- A fact that is a list of objects ({{days = 30, would_delete = 33}, ...}) is a small table.
local function is_rows(v)
  return type(v) == "table" and type(v[1]) == "table"
end

local function say_rows(name, rows)
  local columns, seen = {}, {}
  for _, row in ipairs(rows) do
    for _, key in ipairs(util.sorted_keys(type(row) == "table" and row or {})) do
      if not seen[key] then columns[#columns + 1], seen[key] = key, true end
    end
  end
  table.sort(columns)
  local lines = { {} }
  for i, key in ipairs(columns) do lines[1][i] = E(key:gsub("_", " "):upper()) end
  for _, row in ipairs(rows) do
    local line = {}
    for i, key in ipairs(columns) do
      local v = type(row) == "table" and row[key]
      line[i] = v == nil and "" or value_text(v)
    end
    lines[#lines + 1] = line
  end
  ui.say("  " .. E(name:gsub("_", " ")) .. ":")
  ui.table(lines, "    ")
end

-- A note may span lines (an EXPLAIN): each line escaped, the later ones indented under the first.
local function say_note(label, text)
  local first = true
  for line in (tostring(text) .. "\n"):gmatch("(.-)\n") do
    ui.say(first and (label .. E(line)) or ("  " .. E(line)))
    first = false
  end
end

local function group_by(items, key_of)
  local groups, order = {}, {}
  for _, item in ipairs(items) do
    local key = key_of(item)
    if not groups[key] then
      groups[key] = {}
      order[#order + 1] = key
    end
    table.insert(groups[key], item)
  end
  return groups, order
end

-- Left-alone items are listed by the group their runbook gave ("active within 30 days"), else by
-- their reason without its parenthesised detail ("no database at /x (already reset?)").
local function skip_group(item)
  if item.group then return item.group end
  return (tostring(item.reason):gsub(" %(.*%)$", ""))
end

function render.plan(doc, opts)
  local verbose = opts and opts.verbose or 0
  local limit = verbose > 0 and math.huge or SHOWN_PER_GROUP
  local s = ui.style
  ui.say(string.format("%s %s on %s", s.bold("Plan:"), E(doc.runbook), s.bold(E(doc.target))))
  ui.say(string.format("  made %s with runbook %s (sha256 %s)", E(doc.created),
    E(doc.runbook_source), E(doc.runbook_sha256:sub(1, 12))))
  if doc.policy then ui.say("  policy " .. E(doc.policy.path)) end
  local rows = {}
  for _, name in ipairs(util.sorted_keys(doc.params)) do
    local source = doc.param_sources[name]
    rows[#rows + 1] = { "  " .. E(name), value_text(doc.params[name]), source and s.dim("(" .. E(source) .. ")") or "" }
  end
  if #rows > 0 then
    ui.say(s.bold("Parameters:"))
    ui.table(rows)
  end
  local facts = util.sorted_keys(doc.facts)
  if #facts > 0 then
    ui.say(s.bold("Found:"))
    local fact_rows, tables = {}, {}
    for _, name in ipairs(facts) do
      if is_rows(doc.facts[name]) then
        tables[#tables + 1] = name
      else
        fact_rows[#fact_rows + 1] = { "  " .. E(name:gsub("_", " ")), value_text(doc.facts[name]) }
      end
    end
    ui.table(fact_rows)
    for _, name in ipairs(tables) do say_rows(name, doc.facts[name]) end
  end
  for _, note in ipairs(doc.notes) do say_note(s.yellow("Note: "), note) end

  ui.say("")
  if #doc.actions == 0 then
    ui.say(s.bold("Actions: none.") .. " Nothing to do.")
  else
    ui.say(string.format("%s %d", s.bold("Actions:"), #doc.actions))
    local groups, order = group_by(doc.actions, function(a) return a.kind end)
    for _, kind in ipairs(order) do
      local list = groups[kind]
      ui.say(string.format("  %s (%d)", s.cyan(E(kind)), #list))
      local action_rows = {}
      for n, a in ipairs(list) do
        if n > limit then break end
        action_rows[#action_rows + 1] = { "    " .. E(a.target), s.dim(E(a.reason)) }
      end
      ui.table(action_rows)
      if #list > limit then ui.say(string.format("    ... and %d more (-v lists all; --output json or -o FILE has them)", #list - limit)) end
    end
  end
  for _, text in ipairs(doc.consequences or {}) do say_note(s.bold(s.yellow("Consequence: ")), text) end
  if #doc.skipped > 0 then
    ui.say("")
    ui.say(string.format("%s %d, by reason", s.bold("Left alone:"), #doc.skipped))
    local groups, order = group_by(doc.skipped, skip_group)
    table.sort(order, function(a, b) return #groups[a] > #groups[b] or (#groups[a] == #groups[b] and a < b) end)
    for _, key in ipairs(order) do
      local list = groups[key]
      ui.say(string.format("  %s (%d)", E(key), #list))
      local shown = {}
      for n, item in ipairs(list) do
        if n > math.min(limit, 5) and verbose == 0 then break end
        shown[#shown + 1] = { "    " .. E(item.target), s.dim(E(item.reason)) }
      end
      ui.table(shown)
      if #shown < #list then ui.say(string.format("    ... and %d more", #list - #shown)) end
    end
  end
  -- Last, so that a long list never scrolls it away: what the plan does, in one line.
  if #doc.actions > 0 then
    ui.say("")
    ui.say(s.bold("Plan: ") .. render.effect_line(doc))
  end
end

-- The plan's effect in one line: its runbook's own words ("25 users deleted; 25 home directories
-- kept") or, for a runbook that gives none, the number of actions.
function render.effect_line(doc, pending)
  pending = pending or #doc.actions
  local words = {}
  for _, text in ipairs(doc.effect or {}) do words[#words + 1] = E(text) end
  local count = string.format("%d action%s", pending, pending == 1 and "" or "s")
  if #words == 0 then return count end
  return table.concat(words, "; ") .. " (" .. count .. ")"
end

return render
