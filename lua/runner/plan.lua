-- Plans are data: what a runbook found and the actions it would take, each a kind, a target, a reason
-- and JSON arguments. A saved plan carries the runbook's hash, the parameters and a checksum of its own
-- bytes, so a later process can apply exactly what was reviewed, and refuses anything else.
local host = require "runbook.host"
local json = require "runbook.json"
local secrets = require "runbook.secrets"
local util = require "runbook.util"

local plan = {}

plan.FORMAT = "runbook-plan/1"
local CHECKSUM_PLACEHOLDER = string.rep("0", 64)
-- The top-level key sits at exactly two spaces of indentation; nested keys are deeper, so an action's
-- own data can never be mistaken for the plan's checksum.
local CHECKSUM_LINE = '\n  "checksum": "sha256:'

-- The object a runbook's plan function receives (as ctx, with the shared context fields mixed in).
local Builder = {}
Builder.__index = Builder

function plan.builder(def, ctx)
  local b = setmetatable(ctx, Builder)
  b.actions, b.skipped, b.notes, b.facts = json.array(), json.array(), json.array(), {}
  b.consequences, b.effects = json.array(), json.array()
  b._def = def
  return b
end

local function check_item(item, what, def)
  if type(item) ~= "table" then error(what .. " must be a table", 3) end
  if type(item.target) ~= "string" or item.target == "" then error(what .. " needs a target (a string)", 3) end
  if type(item.reason) ~= "string" or item.reason == "" then
    error(what .. " for " .. item.target .. " needs a reason (a string)", 3)
  end
  if def and (type(item.kind) ~= "string" or not def.actions[item.kind]) then
    error(string.format("action for %s has kind '%s', which this runbook has no handler for", item.target,
      tostring(item.kind)), 3)
  end
end

-- ctx:add{kind=, target=, reason=, args={...}}: an action the apply will carry out.
function Builder:add(action)
  check_item(action, "an action", self._def)
  local ok, err = pcall(json.encode, action.args or {})
  if not ok then error("action args for " .. action.target .. " are not data: " .. err, 2) end
  local entry = { id = #self.actions + 1, kind = action.kind, target = action.target, reason = action.reason,
                  args = action.args or {} }
  self.actions[#self.actions + 1] = entry
  return entry
end

-- ctx:skip{target=, reason=[, group=]}: something looked at and left alone, with why. The plan lists
-- what was left alone by group: `group` when given ("active within 30 days"), else the reason.
function Builder:skip(item)
  check_item(item, "a skipped item")
  if item.group ~= nil and (type(item.group) ~= "string" or item.group == "") then
    error("a skipped item's group must be a non-empty string", 2)
  end
  self.skipped[#self.skipped + 1] = { target = item.target, reason = item.reason, detail = item.detail, group = item.group }
end

function Builder:note(text)
  self.notes[#self.notes + 1] = tostring(text)
end

-- ctx:consequence(text): what applying the plan destroys or changes beyond its actions' targets
-- ("412 home directories, 2.1 TiB, are deleted with their users"); shown again at the confirmation.
function Builder:consequence(text)
  self.consequences[#self.consequences + 1] = tostring(text)
end

-- ctx:effect(text): one phrase of the plan's effect in the terraform spirit ("25 users deleted",
-- "14 tables dropped (3,112 rows)", "25 home directories kept"): shown as one line at the end of the
-- plan and above the confirmation, and in JSON as `effect`. Counts, not lists: the lists are above.
function Builder:effect(text)
  self.effects[#self.effects + 1] = tostring(text)
end

function Builder:fact(name, value)
  self.facts[name] = value
end

-- The plan document, ready to print or save.
function plan.document(def, ctx, meta)
  -- Secret parameters never reach a plan file: apply reads them again from their source.
  local secret = {}
  for _, spec in ipairs(def.params) do if spec.secret then secret[spec.name] = true end end
  local params = {}
  for k, v in pairs(ctx.params) do if not secret[k] then params[k] = v end end
  return {
    format = plan.FORMAT,
    runbook = def.name,
    runbook_source = def.source,
    runbook_sha256 = def.sha256,
    created = util.format_time(meta.now),
    created_unix = math.floor(meta.now),
    target = meta.target,
    params = params,
    param_sources = meta.sources,
    policy = meta.policy and { path = meta.policy.path, sha256 = meta.policy.sha256 } or nil,
    facts = ctx.facts,
    notes = ctx.notes,
    consequences = #ctx.consequences > 0 and ctx.consequences or nil,
    effect = #ctx.effects > 0 and ctx.effects or nil,
    actions = ctx.actions,
    skipped = ctx.skipped,
    options = next(ctx.options) and ctx.options or nil, -- --kubeconfig, --context, -n as given
    runbook_version = host.version(),
  }
end

-- The file layout: top-level keys sorted, each list item (action, skipped item, note) on a line of its
-- own, and the checksum last: the SHA-256 of the whole text with the checksum's hex digits zeroed.
-- It is written as it is encoded, so a plan of 100,000 actions never exists twice in memory.
local LIST_KEYS = { actions = true, skipped = true, notes = true, consequences = true, effect = true }
local CHUNK = 64 * 1024

-- write(doc, emit): calls emit(text) with consecutive pieces of the file.
function plan.write(doc, emit)
  local hasher = host.hasher()
  local pending, size = {}, 0
  local function out(s)
    s = secrets.redact(s) -- a secret a server echoed into a reason or a fact is not saved (runbook.secrets)
    hasher:update(s)
    pending[#pending + 1] = s
    size = size + #s
    if size >= CHUNK then
      emit(table.concat(pending))
      pending, size = {}, 0
    end
  end
  out("{\n")
  for _, key in ipairs(util.sorted_keys(doc)) do
    local value = doc[key]
    if key ~= "checksum" then
      out('  "' .. key .. '": ')
      if LIST_KEYS[key] and type(value) == "table" and #value > 0 then
        out("[\n")
        for i, item in ipairs(value) do
          out("    " .. json.encode(item) .. (i < #value and ",\n" or "\n"))
        end
        out("  ]")
      else
        out(json.encode(value, { indent = "  ", depth = 1 }))
      end
      out(",\n")
    end
  end
  local tail = "  \"checksum\": \"sha256:%s\"\n}\n"
  hasher:update(tail:format(CHECKSUM_PLACEHOLDER))
  pending[#pending + 1] = tail:format(hasher:hex())
  emit(table.concat(pending))
end

function plan.encode(doc)
  local parts = {}
  plan.write(doc, function(s) parts[#parts + 1] = s end)
  return table.concat(parts)
end

-- save(doc, path): written to a temporary file (0600) and renamed, so a crash leaves no half plan.
-- The temporary file is created new, under a name nobody can guess and plant a file or link at first.
function plan.save(doc, path)
  local tmp = path .. ".tmp." .. host.getpid() .. "." .. host.random_hex(6)
  local out, err = host.create_output(tmp, tonumber("600", 8))
  if not out then util.fail(1, "cannot save the plan: %s", err) end
  local ok, write_err = pcall(plan.write, doc, function(s)
    local written, e = out:write(s)
    if not written then error(e, 0) end
  end)
  local closed, close_err = out:close()
  if not ok or not closed then
    host.remove(tmp)
    util.fail(1, "cannot save the plan: %s", tostring(ok and close_err or write_err))
  end
  local renamed, rename_err = host.rename(tmp, path)
  if not renamed then
    host.remove(tmp)
    util.fail(1, "cannot save the plan: %s", rename_err)
  end
end

-- print(doc): the same document on standard output, streamed.
function plan.print(doc)
  plan.write(doc, function(s) host.write(1, s) end)
end

local function bad(path, fmt, ...)
  util.fail(2, "plan file %s is not usable: " .. fmt, path, ...)
end

local function check_fields(doc, path)
  if doc.format ~= plan.FORMAT then bad(path, "format is %s, expected %s", tostring(doc.format), plan.FORMAT) end
  for _, field in ipairs({ "runbook", "runbook_source", "runbook_sha256", "created", "target" }) do
    if type(doc[field]) ~= "string" then bad(path, "'%s' is missing", field) end
  end
  if math.type(doc.created_unix) ~= "integer" then bad(path, "'created_unix' is missing") end
  if type(doc.params) ~= "table" then bad(path, "'params' is missing") end
  if type(doc.actions) ~= "table" then bad(path, "'actions' is missing") end
  for i, action in ipairs(doc.actions) do
    if type(action) ~= "table" or action.id ~= i or type(action.kind) ~= "string"
        or type(action.target) ~= "string" or type(action.reason) ~= "string" then
      bad(path, "action %d is malformed", i)
    end
    action.args = action.args or {}
    if type(action.args) ~= "table" then bad(path, "action %d is malformed", i) end
  end
  local count = 0
  for _ in pairs(doc.actions) do count = count + 1 end
  if count ~= #doc.actions then bad(path, "'actions' is not a list") end
  doc.skipped = doc.skipped or {}
  doc.notes = doc.notes or {}
  doc.consequences = doc.consequences or {}
  doc.effect = doc.effect or {}
  doc.facts = doc.facts or {}
  doc.param_sources = doc.param_sources or {}
  -- What apply shows and uses besides the actions: all written by `runbook plan`, all checked here, so
  -- an edited plan whose checksum was recomputed fails with exit 2 rather than a Lua error.
  for _, field in ipairs({ "skipped", "notes", "consequences", "effect", "facts", "param_sources" }) do
    if type(doc[field]) ~= "table" then bad(path, "'%s' is malformed", field) end
  end
  for i, item in ipairs(doc.skipped) do
    if type(item) ~= "table" or type(item.target) ~= "string" or type(item.reason) ~= "string"
        or (item.group ~= nil and type(item.group) ~= "string") then
      bad(path, "skipped item %d is malformed", i)
    end
  end
  for i, note in ipairs(doc.notes) do
    if type(note) ~= "string" then bad(path, "note %d is not text", i) end
  end
  for i, text in ipairs(doc.consequences) do
    if type(text) ~= "string" then bad(path, "consequence %d is not text", i) end
  end
  for i, text in ipairs(doc.effect) do
    if type(text) ~= "string" then bad(path, "effect %d is not text", i) end
  end
  for name in pairs(doc.facts) do
    if type(name) ~= "string" then bad(path, "'facts' is malformed") end
  end
  for _, source in pairs(doc.param_sources) do
    if type(source) ~= "string" then bad(path, "'param_sources' is malformed") end
  end
  if doc.policy ~= nil and (type(doc.policy) ~= "table" or type(doc.policy.path) ~= "string"
      or type(doc.policy.sha256) ~= "string") then
    bad(path, "'policy' is malformed")
  end
end

-- Verifies a plan's text (checksum, fields) and returns the document; exit 2 naming any problem.
function plan.parse(text, path)
  local sum = text:match(CHECKSUM_LINE .. '(%x+)"')
  if not sum then
    local doc = json.decode(text)
    if doc == nil then bad(path, "it is not complete JSON (truncated?)") end
    bad(path, "it has no checksum; only files written by `runbook plan -o` can be applied")
  end
  local zeroed = text:gsub(CHECKSUM_LINE .. '%x+"', CHECKSUM_LINE .. CHECKSUM_PLACEHOLDER .. '"', 1)
  if host.sha256(zeroed) ~= sum then
    local doc = json.decode(text)
    if doc == nil then bad(path, "it is not complete JSON (truncated?)") end
    bad(path, "its checksum does not match its content: it was edited or damaged after `runbook plan` wrote it")
  end
  local doc, err = json.decode(text)
  if doc == nil then bad(path, "not JSON: %s", err) end
  if type(doc) ~= "table" then bad(path, "not a plan document") end
  doc.checksum = nil
  check_fields(doc, path)
  return doc
end

-- check_document(doc, path): the field checks of parse, for a plan that comes from elsewhere (a journal).
plan.check_document = check_fields

function plan.load(path)
  local text, err = host.read_file(path)
  if not text then util.fail(2, "cannot read plan file %s", err) end
  return plan.parse(text, path)
end

-- Refuses a plan made with another version of its runbook, or older than max_age seconds.
function plan.check_fresh(doc, def, max_age, now)
  if doc.runbook_sha256 ~= def.sha256 then
    util.fail(2, "runbook %s changed since this plan was made (plan: %s, now: %s); make a new plan",
      doc.runbook, doc.runbook_sha256:sub(1, 12), def.sha256:sub(1, 12))
  end
  if max_age and max_age > 0 and now - doc.created_unix > max_age then
    util.fail(2, "the plan is %s old (made %s), older than --max-age allows; make a new plan",
      util.human_duration(now - doc.created_unix), doc.created)
  end
end

-- A stable digest of the plan's content, recorded in the journal.
function plan.digest(doc)
  return host.sha256(json.encode(doc))
end

return plan
