#!/usr/bin/env bash
# Shell completion: drives completions/runbook.bash's _runbook through COMP_WORDS/COMP_CWORD as bash
# would (words split at '=' too), for commands, options per command (checked against each command's
# --help), runbook names (built-in and site, asked from the runbook being completed), -p parameter
# names and values, and file names. Then completions/_runbook through a real interactive zsh in a
# pseudo-terminal (zsh/zpty), with compadd wrapped to print the matches.
. "$(dirname "$0")/lib/tap.sh"
BASH_COMP="$TOP/completions/runbook.bash"
unset RUNBOOK_PATH

# complete WORD...: the words of the line, the last one being completed; prints COMPREPLY sorted,
# space-separated. COMP_WORDS[0] is $RUNBOOK, so the completion asks the binary under test.
complete_line() {
  bash -c '
    . "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
    _runbook
    printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " " | sed "s/ $//"' bash "$BASH_COMP" "$RUNBOOK" "$@"
}

bash -n "$BASH_COMP"; ok $? "runbook.bash parses"
is "$(bash -c '. "$1"; complete -p runbook' bash "$BASH_COMP")" "complete -F _runbook runbook" "it registers _runbook for runbook"

# --- commands ---
is "$(complete_line "")" "apply exec help history list plan resume run show version" "commands"
is "$(complete_line re)" "resume" "a command from its prefix"
is "$(complete_line --output json pl)" "plan" "a command after global options"
is "$(complete_line help ap)" "apply" "commands after help"

# --- options: exactly those --help lists for each command ---
help_options() {  # the long options `runbook COMMAND --help` lists
  "$RUNBOOK" "$1" --help 2>/dev/null </dev/null | grep -oE -- '--[a-z][a-z-]*' | sort -u | tr '\n' ' ' | sed 's/ $//'
}
for command in list show plan apply run resume history exec version; do
  want=$(help_options "$command")
  got=$(complete_line "$command" -- | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/ $//')
  is "$got" "$want" "options of $command match its --help"
done
like "$(complete_line plan prune-dormant -)" "(^| )-p( |$)" "short options too (-p)"
unlike "$(complete_line list -)" "(^| )-p( |$)" "  but not those of other commands"
is "$(complete_line plan prune-dormant --dr)" "" "--dry-run is run's, not plan's"
is "$(complete_line run prune-dormant --dr)" "--dry-run" "--dry-run for run"

# --- option values ---
is "$(complete_line plan x --output "")" "json text" "--output values"
is "$(complete_line --output = j)" "json" "--output=VALUE split at '=' by bash"
is "$(complete_line --output=j)" "--output=json" "--output=VALUE as one word"
is "$(complete_line apply p.json --max-age "")" "0 1h 24h 7d" "--max-age values"

# --- runbook names, asked from the binary ---
builtin=$("$RUNBOOK" list 2>/dev/null </dev/null | awk '{print $1}' | sort | tr '\n' ' ' | sed 's/ $//')
for command in plan run show; do
  is "$(complete_line "$command" "")" "$builtin" "runbook names after $command (runbook list)"
done
is "$(complete_line plan prune)" "prune-dormant" "a runbook name from its prefix"
is "$(complete_line --output json run -v "")" "$builtin" "after options before and after the command"
is "$(complete_line apply "")" "$(cd "$PWD" && compgen -f -- "" | sort | tr '\n' ' ' | sed 's/ $//')" "no runbook names after apply (files)"
is "$(complete_line --runbook-path "$TOP/tests/runbooks" show kv-p)" "kv-prune" "site runbooks of --runbook-path on the line"
is "$(RUNBOOK_PATH="$TOP/tests/runbooks" complete_line plan kv-pr)" "kv-prune" "site runbooks of RUNBOOK_PATH"

# --- -p parameter names and values, from `runbook show NAME --output json` ---
is "$(complete_line plan prune-dormant -p da)" "days=" "-p da<TAB> -> days="
want=$("$RUNBOOK" show prune-dormant --output json 2>/dev/null </dev/null |
  "$PY" -c 'import json,sys; print(" ".join(sorted(p["name"] + "=" for p in json.load(sys.stdin)["params"])))')
is "$(complete_line run prune-dormant -p "")" "$want" "-p <TAB>: every parameter of the runbook"
is "$(complete_line plan reset-sqlite -p name)" "namespace_selector= namespaces=" "another runbook's parameters"
is "$(complete_line plan prune-dormant --param gr)" "grace_days=" "--param too"
is "$(complete_line plan prune-dormant --param = gr)" "grace_days=" "--param=KEY split at '=' by bash"
is "$(complete_line plan prune-dormant -p include_admins = "")" "false true" "boolean values"
is "$(complete_line plan prune-dormant -p include_admins=t)" "include_admins=true" "boolean values, one word"
is "$(complete_line plan -p da)" "" "nothing before the runbook is named"
is "$(complete_line --runbook-path "$TOP/tests/runbooks" plan kv-prune -p pre)" "prefix=" "a site runbook's parameters"
is "$(complete_line plan "$TOP/tests/runbooks/kv-prune.lua" -p pre)" "prefix=" "a runbook file's parameters"
# A plan file's runbook: the completion reads only these two lines of it.
printf '{\n  "runbook": "prune-dormant",\n  "runbook_source": "built-in",\n}\n' > "$SCRATCH/plan.json"
is "$(complete_line apply "$SCRATCH/plan.json" -p da)" "days=" "-p after apply: the plan's runbook"

# --- file names ---
mkdir -p "$SCRATCH/files/sub"; touch "$SCRATCH/files/plan-1.json" "$SCRATCH/files/plan-2.json" "$SCRATCH/files/site.lua"
F="$SCRATCH/files"
is "$(complete_line apply "$F/pl")" "$F/plan-1.json $F/plan-2.json" "files after apply"
is "$(complete_line resume "$F/")" "$F/plan-1.json $F/plan-2.json $F/site.lua $F/sub" "files after resume"
# resume offers the unfinished journals of the journal directory by name (runbook resume NAME finds them)
JD="$SCRATCH/jd"; mkdir -p "$JD"
printf '{"type":"plan"}\n{"type":"start","id":1}\n' > "$JD/prune-dormant-20261204T010000Z-1.journal"
printf '{"type":"plan"}\n{"type":"finish"}\n' > "$JD/prune-dormant-20261203T010000Z-2.journal"
is "$(complete_line --journal-dir "$JD" resume prune)" "prune-dormant-20261204T010000Z-1" "resume: unfinished journals by name"
is "$(XDG_STATE_HOME="$SCRATCH/xdg" complete_line resume prune)" "" "  from the journal directory in use only"
mkdir -p "$SCRATCH/xdg/runbook"; cp "$JD/prune-dormant-20261204T010000Z-1.journal" "$SCRATCH/xdg/runbook/"
is "$(XDG_STATE_HOME="$SCRATCH/xdg" complete_line resume prune)" "prune-dormant-20261204T010000Z-1" "  the default one too"
is "$(complete_line plan prune-dormant --policy "$F/s")" "$F/site.lua $F/sub" "files after --policy"
is "$(complete_line run prune-dormant -o "$F/plan-")" "$F/plan-1.json $F/plan-2.json" "files after -o"
is "$(complete_line --journal-dir "$F/")" "$F/sub" "directories after --journal-dir"
is "$(complete_line plan "$F/si")" "$F/site.lua" "a runbook file where a name goes"
is "$(complete_line exec "$F/site.lua" "$F/plan-1")" "$F/plan-1.json" "files for a script's arguments"
is "$(complete_line plan prune-dormant -p token_file = "$F/si")" "$F/site.lua" "path parameters complete files"

# --- zsh: completions/_runbook in a real interactive zsh ---
ZSH_COMP_DIR="$TOP/completions"
if ! command -v zsh >/dev/null 2>&1; then
  ok 1 "zsh is installed (vendor/debian-packages.txt)"
  done_testing; exit
fi
zsh -n "$ZSH_COMP_DIR/_runbook"; ok $? "_runbook parses (zsh -n)"
# zsh_complete LINE: the matches zsh offers for "LINE<TAB>", sorted, space-separated.
cat > "$SCRATCH/capture.zsh" <<'ZSH'
# capture.zsh FPATH-DIR DUMP COMMAND LINE: an interactive zsh in a pseudo-terminal completes LINE; compadd is
# wrapped so that each match is printed between two markers instead of inserted. compinit keeps its
# dump in DUMP (scanning fpath takes seconds; the dump makes later runs take a tenth of one), and
# only the completion functions zsh itself needs are on fpath besides ours. COMMAND is the name of
# the binary under test (runbook-asan under make check-asan): it is completed as runbook is.
zmodload zsh/zpty || exit 2
setup=$(mktemp)
cat > $setup <<SETUP
PROMPT= RPROMPT= PS2=
fpath=($1 \${(M)fpath:#*/Completion/(Base|Unix|Zsh)} \${fpath:#*/Completion/*})
autoload -U compinit && compinit -u -d $2
compdef _runbook $3
bindkey '^I' complete-word
zstyle ':completion:*' insert-tab false
mark() { print -r -- '<<MARK>>' }
compprefuncs=(mark)
comppostfuncs=(mark exit)
compadd() {
  # calls that only collect matches into an array are the completion system's own business
  if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "\$@"; return; fi
  local -a __hits
  builtin compadd -A __hits "\$@"
  local -A o; zparseopts -E -A o P: p: S: s:
  local h
  for h in \$__hits; do print -r -- "\${o[-P]}\${o[-p]}\$h\${o[-s]}\${o[-S]}"; done
}
print -r -- READY
SETUP
zpty z zsh -f -i
zpty -w z ". $setup"
local line
repeat 40; do zpty -r z line; [[ $line == READY* ]] && break; done
zpty -w -n z "$4"$'\t'
integer inside=0
while zpty -r z line; do
  line=${${line//$'\r'/}%$'\n'}
  if [[ $line == *'<<MARK>>'* ]]; then (( inside++ )) && break; continue; fi
  (( inside )) && [[ -n $line ]] && print -r -- $line
done
zpty -d z
rm -f $setup
ZSH
zsh_complete() {
  (cd "$SCRATCH" && timeout 20 zsh -f "$SCRATCH/capture.zsh" "$ZSH_COMP_DIR" "$SCRATCH/zcompdump" "$(basename "$RUNBOOK")" "$*") |
    grep -v '^[[:space:]]*$' | sort -u | tr '\n' ' ' | sed 's/ $//'
}
is "$(zsh_complete "$RUNBOOK ")" "apply exec help history list plan resume run show version" "zsh: commands"
is "$(zsh_complete "$RUNBOOK show ")" "$builtin" "zsh: runbook names (runbook list)"
is "$(zsh_complete "$RUNBOOK plan prune-dormant -p da")" "days=" "zsh: -p da<TAB> -> days="
is "$(zsh_complete "$RUNBOOK plan prune-dormant -p include_admins=")" "false true" "zsh: boolean values"
is "$(zsh_complete "$RUNBOOK --runbook-path $TOP/tests/runbooks plan kv-prune -p pre")" "prefix=" "zsh: a site runbook's parameters"
like "$(zsh_complete "$RUNBOOK run prune-dormant --")" "--dry-run.*--yes" "zsh: run's options"
unlike "$(zsh_complete "$RUNBOOK plan prune-dormant --")" "--dry-run|--yes" "zsh: not on plan"
is "$(zsh_complete "$RUNBOOK apply $F/pl")" "$F/plan-1.json $F/plan-2.json" "zsh: files after apply"

done_testing
