-- The command line (documented in doc/runbook.1, COMMANDS and OPTIONS): parses arguments, runs a
-- command, and turns every failure into one clear message and the contract's exit status:
-- 0 done, 1 failure, 2 bad usage or input, 3 aborted at the confirmation, 4 done with actions skipped.
local host = require "runbook.host"
local util = require "runbook.util"
local ui = require "runner.ui"

local cli = {}

-- Every option; `commands` lists where one that is not global applies.
local OPTIONS = {
  { long = "output", value = "FORMAT", help = "text (default) or json: machine-readable on stdout" },
  { long = "journal-dir", value = "DIR", help = "where journals go (default $XDG_STATE_HOME/runbook or ~/.local/state/runbook)" },
  { long = "verbose", short = "v", count = true, help = "more detail on stderr (-vv: every HTTP request)" },
  { long = "quiet", short = "q", help = "only errors and results" },
  { long = "no-color", help = "no colour even on a terminal (NO_COLOR is honoured too)" },
  { long = "help", short = "h", help = "help for the command" },
  { long = "runbook-path", value = "DIR", list = true, help = "look for site runbooks in DIR (also RUNBOOK_PATH)" },
  { long = "kubeconfig", value = "FILE", help = "Kubernetes configuration file" },
  { long = "context", value = "NAME", help = "kubeconfig context" },
  { long = "namespace", short = "n", value = "NS", help = "Kubernetes namespace" },
  { long = "param", short = "p", value = "KEY=VALUE", list = true, commands = "plan run apply",
    help = "set a runbook parameter (repeatable); with apply, asserts the plan's value" },
  { long = "policy", value = "FILE", commands = "plan run apply resume", help = "site policy file (Lua)" },
  { long = "out", short = "o", value = "PLAN", commands = "plan run", help = "save the plan to PLAN (mode 0600)" },
  { long = "inventory", value = "FILE", commands = "plan run",
    help = "every target an inventory names, one after another (-o is then a directory)" },
  { long = "yes", short = "y", commands = "apply run resume", help = "do not ask for confirmation" },
  { long = "skipped-ok", commands = "apply run resume",
    help = "exit 0, not 4, when actions were skipped because their target changed (normal on a busy hub)" },
  { long = "detailed-exitcode", commands = "plan",
    help = "exit 0 when there is nothing to do, 2 when actions are pending, 1 on any error (as terraform)" },
  { long = "force", commands = "apply", help = "apply a plan although a journal shows it was applied or begun already" },
  { long = "dry-run", commands = "run", help = "stop after the plan" },
  { long = "max-age", value = "DURATION", commands = "apply", help = "refuse plans older than this (default 24h; 0: no limit)" },
  { long = "write", commands = "exec", help = "allow the script to change things" },
  { long = "version", help = "print versions and exit" },
}

local USAGE = {
  list = "runbook list",
  show = "runbook show NAME | PLAN.json",
  plan = "runbook plan NAME [-p KEY=VALUE]... [--policy FILE] [-o PLAN] | --inventory FILE [-o DIR]",
  apply = "runbook apply PLAN [--yes] [--policy FILE] [--max-age DURATION]",
  run = "runbook run NAME [-p KEY=VALUE]... [--policy FILE] [--inventory FILE] [--dry-run] [--yes]",
  resume = "runbook resume JOURNAL [--yes]",
  history = "runbook history [NAME]",
  exec = "runbook exec [--write] FILE.lua [ARG]... [-- SCRIPT-OPTIONS]",
  version = "runbook version",
}
local COMMAND_ORDER = { "list", "show", "plan", "apply", "run", "resume", "history", "exec", "version" }
local SUMMARY = {
  list = "list the available runbooks",
  show = "describe a runbook: parameters, policy keys, steps",
  plan = "rehearse: discover the state and print (or save) the actions, changing nothing",
  apply = "carry out a saved plan after confirmation, re-checking each action first",
  run = "plan, confirm and apply in one go",
  resume = "finish an interrupted apply from its journal",
  history = "what was done, to what, when and by which run, from the journals",
  exec = "run a Lua script with the runbook modules (read-only unless --write)",
  version = "print the versions of runbook and the libraries it uses",
}

local EXAMPLES = {
  list = { "runbook list", "runbook list --output json" },
  show = { "runbook show prune-dormant", "runbook show plan.json          # a saved plan, as apply will show it" },
  plan = { "runbook plan prune-dormant -p hub=https://hub.example.org -p days=180 -o plan.json",
           "runbook plan prune-dormant --policy site.lua --detailed-exitcode   # 2: something to do",
           "runbook plan reset-sqlite --inventory hubs.lua -o plans/" },
  apply = { "runbook apply plan.json", "runbook apply plan.json --yes --skipped-ok   # in a CronJob" },
  run = { "runbook run prune-dormant -p hub=http://127.0.0.1:8081 --dry-run",
          "runbook run wipe-hub-db -n hub-a --context prod" },
  resume = { "runbook resume prune-dormant-20261204T031500Z-4242.journal", "runbook resume ~/.local/state/runbook/X.journal --yes" },
  history = { "runbook history                 # every run, newest last", "runbook history alice           # everything done to alice" },
  exec = { "runbook exec --context prod -n hub-a pods.lua", "runbook exec --write fix.lua ARG... -- SCRIPT-OPTIONS" },
  version = { "runbook version" },
}

local function find_option(name, short)
  for _, opt in ipairs(OPTIONS) do
    if (short and opt.short == name) or (not short and opt.long == name) then return opt end
  end
end

local function usage_error(fmt, ...)
  util.fail(2, fmt .. " (see runbook --help)", ...)
end

-- parse(args) -> command, positional, options. Options may come before or after the command;
-- for exec everything after the script belongs to the script.
function cli.parse(args)
  local opts = { param = {}, ["runbook-path"] = {}, verbose = 0 }
  local command, positional = nil, {}
  local i = 1
  local function take(opt, inline, flag)
    if opt.value then
      local v = inline
      if v == nil then
        i = i + 1
        v = args[i]
        if v == nil then usage_error("option %s needs a value (%s)", flag, opt.value) end
      end
      if opt.list then table.insert(opts[opt.long], v) else opts[opt.long] = v end
    elseif inline ~= nil then
      usage_error("option %s takes no value", flag)
    elseif opt.count then
      opts[opt.long] = opts[opt.long] + 1
    else
      opts[opt.long] = true
    end
  end
  local script_args = false -- after `exec FILE --`: all the script's
  while i <= #args do
    local a = args[i]
    if script_args then
      positional[#positional + 1] = a
    elseif command == "exec" and #positional >= 1 and a == "--" then
      script_args = true
    elseif command == "exec" and #positional >= 1 and a:sub(1, 1) == "-" and #a > 1
        and find_option(a:match("^%-%-([^=]+)") or a:sub(2, 2), a:sub(2, 2) ~= "-") then
      -- One of runbook's own options after the script would silently become the script's argument.
      usage_error("option %s comes after the script: put it before the script (runbook exec %s FILE.lua), or after " ..
        "-- to pass it to the script", a, a)
    elseif command == "exec" and #positional >= 1 then
      positional[#positional + 1] = a
    elseif a == "--" then
      for k = i + 1, #args do positional[#positional + 1] = args[k] end
      break
    elseif a:sub(1, 2) == "--" then
      local name, inline = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local opt = find_option(name)
      if not opt then usage_error("unknown option --%s", name) end
      take(opt, inline, "--" .. name)
    elseif a:sub(1, 1) == "-" and #a > 1 then
      local letters = a:sub(2)
      local first = find_option(letters:sub(1, 1), true)
      if not first then usage_error("unknown option -%s", letters:sub(1, 1)) end
      if first.value then
        take(first, #letters > 1 and letters:sub(2) or nil, "-" .. letters:sub(1, 1))
      else
        for c in letters:gmatch(".") do
          local opt = find_option(c, true)
          if not opt or opt.value then usage_error("unknown option -%s in %s", c, a) end
          take(opt, nil, "-" .. c)
        end
      end
    elseif not command then
      command = a
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  return command, positional, opts
end

local function check_options_apply(command, opts)
  for _, opt in ipairs(OPTIONS) do
    local given = opts[opt.long]
    local is_given = given ~= nil and given ~= false and not (type(given) == "table" and #given == 0)
      and not (opt.count and given == 0)
    if is_given and opt.commands and not (" " .. opt.commands .. " "):find(" " .. command .. " ", 1, true) then
      usage_error("option --%s does not apply to `runbook %s`", opt.long, command)
    end
  end
end

-- option_lines(command, which): "own" -- the options of that command only; "global" -- those of
-- every command; nil -- all.
local function option_lines(command, which)
  local lines = {}
  for _, opt in ipairs(OPTIONS) do
    local own = opt.commands and command and (" " .. opt.commands .. " "):find(" " .. command .. " ", 1, true)
    local applies = (which == "own" and own) or (which == "global" and not opt.commands) or (which == nil)
    if applies then
      local flag = (opt.short and ("-" .. opt.short .. ", ") or "    ") .. "--" .. opt.long .. (opt.value and (" " .. opt.value) or "")
      lines[#lines + 1] = string.format("  %-30s %s", flag, opt.help)
    end
  end
  return table.concat(lines, "\n")
end

function cli.help(command)
  if command and USAGE[command] then
    local parts = { "usage: " .. USAGE[command], "", (SUMMARY[command]:gsub("^%l", string.upper)) .. "." }
    local own = option_lines(command, "own")
    if own ~= "" then parts[#parts + 1] = "\nOptions:\n" .. own end
    parts[#parts + 1] = "\nGlobal options:\n" .. option_lines(command, "global")
    parts[#parts + 1] = "\nExamples:\n  " .. table.concat(EXAMPLES[command], "\n  ")
    return table.concat(parts, "\n") .. "\n"
  end
  local lines = { "usage: runbook COMMAND [OPTIONS] [ARGS]", "",
    "Carries out JupyterHub maintenance procedures safely: rehearse (plan), confirm, apply, resume.", "",
    "Commands:" }
  for _, name in ipairs(COMMAND_ORDER) do lines[#lines + 1] = string.format("  %-9s %s", name, SUMMARY[name]) end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Options:"
  lines[#lines + 1] = option_lines(nil)
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Exit status: 0 done, 1 failure, 2 bad usage or input, 3 aborted at the confirmation,"
  lines[#lines + 1] = "4 done but some actions were skipped because their precondition no longer held"
  lines[#lines + 1] = "(--skipped-ok makes that 0; plan --detailed-exitcode: 0 nothing to do, 2 pending, 1 error)."
  lines[#lines + 1] = "`runbook COMMAND --help` describes one command; `runbook show NAME` describes a runbook."
  return table.concat(lines, "\n") .. "\n"
end

-- "90s", "15m", "24h", "7d" or plain seconds.
local function parse_duration(text)
  local n, unit = tostring(text):match("^(%d+%.?%d*)([smhd]?)$")
  if not n then usage_error("bad duration '%s': write e.g. 90s, 15m, 24h or 7d", text) end
  local scale = { [""] = 1, s = 1, m = 60, h = 3600, d = 86400 }
  return tonumber(n) * scale[unit]
end

local function needs(positional, count, command)
  if #positional < count then usage_error("`runbook %s` needs %s", command, USAGE[command]:match("^runbook %S+ (.*)$")) end
  if #positional > count then usage_error("unexpected argument '%s' for `runbook %s`", positional[count + 1], command) end
end

-- What main needs to know about a command that fails.
local failing = {}

function cli.main(args)
  local ok, result = pcall(function()
    local command, positional, opts = cli.parse(args)
    if opts.output and opts.output ~= "text" and opts.output ~= "json" then
      usage_error("--output takes text or json, not '%s'", opts.output)
    end
    ui.configure({ output = opts.output, verbose = opts.verbose, quiet = opts.quiet, no_color = opts["no-color"] })
    if opts.version and not command then command = "version" end
    if opts.help then
      host.write(1, cli.help(command))
      return 0
    end
    if not command then
      host.write(2, cli.help(nil))
      return 2
    end
    if command == "help" then
      host.write(1, cli.help(positional[1]))
      return 0
    end
    if not USAGE[command] then usage_error("unknown command '%s'%s", command, util.suggest(command, COMMAND_ORDER)) end
    check_options_apply(command, opts)
    -- `-o json` is the kubectl habit for an output format; here -o saves the plan, so a file named
    -- "json" would be written instead.
    local format = opts.out and opts.out:lower()
    if format == "json" or format == "text" or format == "yaml" or format == "yml" or format == "wide" then
      usage_error("-o saves the plan to a file; for %s on standard output use --output %s (to save a plan in a file " ..
        "named '%s', write -o ./%s)", opts.out, format == "text" and "text" or "json", opts.out, opts.out)
    end
    opts.max_age = opts["max-age"] and parse_duration(opts["max-age"]) or 24 * 3600
    opts.cluster = { kubeconfig = opts.kubeconfig, context = opts.context, namespace = opts.namespace }
    local commands = require "runner.commands"
    if command == "list" or command == "version" then
      needs(positional, 0, command)
    elseif command == "exec" then
      if #positional < 1 then usage_error("`runbook exec` needs a script: %s", USAGE.exec) end
    elseif command == "history" then
      if #positional > 1 then usage_error("unexpected argument '%s' for `runbook history`", positional[2]) end
    else
      needs(positional, 1, command)
    end
    failing.detailed, failing.command = opts["detailed-exitcode"], command
    return commands[command](positional, opts)
  end)
  if ok then return result end
  local code, message = 1, "internal error: " .. tostring(result)
  if util.is_failure(result) then code, message = result.code, result.message end
  ui.error(message)
  -- With --output json, a failure is a document too: a script reading stdout learns why.
  if ui.output == "json" then
    ui.emit_json(require("runbook.json").encode({ error = { message = message, exit_status = code },
                                                   command = failing.command }))
  end
  -- terraform's convention: 2 means "changes pending", so every failure is 1.
  if failing.detailed then return 1 end
  return code
end

return cli
