# bash completion for runbook(1). Installed as share/bash-completion/completions/runbook; or
#   source completions/runbook.bash
# Runbook names and parameter names come from the runbook being completed (`runbook list
# --output json`, `runbook show NAME --output json`), so site runbooks (--runbook-path,
# RUNBOOK_PATH) complete too and nothing here goes stale when a runbook changes.
# Needs nothing beyond bash itself (bash-completion's helpers are not required).

_runbook_commands="list show plan apply run resume history exec version help"

# Options every command takes, then the ones that apply to some commands only (cli.lua OPTIONS).
_runbook_global_opts="--output --journal-dir --verbose -v --quiet -q --no-color --help -h
  --runbook-path --kubeconfig --context --namespace -n --version"
_runbook_command_opts() {
  case $1 in
    plan)   echo "--param -p --policy --out -o --inventory --detailed-exitcode" ;;
    run)    echo "--param -p --policy --out -o --inventory --yes -y --dry-run --skipped-ok" ;;
    apply)  echo "--param -p --policy --yes -y --max-age --skipped-ok --force" ;;
    resume) echo "--policy --yes -y --skipped-ok" ;;
    exec)   echo "--write" ;;
  esac
}

# Options followed by a value (as a separate word or after `=`).
_runbook_takes_value() {
  case $1 in
    --output|--journal-dir|--runbook-path|--kubeconfig|--context|--namespace|-n|--param|-p|--policy|--out|-o|--max-age|\
    --inventory)
      return 0 ;;
  esac
  return 1
}

# The runbook program to ask: the one being completed, else runbook on PATH.
_runbook_program() {
  local prog=${words[0]}
  [[ $prog == "~/"* ]] && prog=$HOME/${prog#"~/"}
  if [[ -n $prog ]] && command -v -- "$prog" >/dev/null 2>&1; then
    printf '%s' "$prog"
  else
    printf 'runbook'
  fi
}

# --runbook-path values already on the line, so site runbooks are found as the command would find them.
_runbook_path_args() {
  local i
  for ((i = 1; i < ${#words[@]}; i++)); do
    case ${words[i]} in
      --runbook-path) [[ -n ${words[i+1]} ]] && printf '%s\n' --runbook-path "${words[i+1]}" ;;
      --runbook-path=?*) printf '%s\n' "${words[i]}" ;;
    esac
  done
}

# Runbook names, from `runbook list --output json` (compact JSON: one "name":"..." per runbook).
_runbook_names() {
  local -a path_args
  mapfile -t path_args < <(_runbook_path_args)
  "$(_runbook_program)" list --output json "${path_args[@]}" 2>/dev/null </dev/null |
    grep -o '"name":"[^"]*"' | sed 's/^"name":"//; s/"$//'
}

# "name type" per parameter of a runbook, from `runbook show NAME --output json`. Only the "params"
# array is read (it ends where "policy" begins: keys are sorted), so a policy key called "name" or
# "type" cannot be mistaken for a parameter. In each parameter object "name" comes before "type".
_runbook_params() {
  local -a path_args
  mapfile -t path_args < <(_runbook_path_args)
  "$(_runbook_program)" show "$1" --output json "${path_args[@]}" 2>/dev/null </dev/null |
    sed -n 's/.*"params":\[\(.*\)\],"policy":.*/\1/p' |
    grep -o '"\(name\|type\)":"[^"]*"' | sed 's/^"[a-z]*":"//; s/"$//' | paste -d ' ' - -
}

# The runbook a `-p` belongs to: the NAME after plan/run, or for apply the plan file's runbook
# (its recorded source when that is a file, else its name).
_runbook_of_line() {
  local command=$1 arg=$2
  case $command in
    plan|run) printf '%s' "$arg" ;;
    apply)
      [[ -r $arg ]] || return
      local source name
      source=$(sed -n 's/^  "runbook_source": "\(.*\)",$/\1/p' "$arg" | head -n 1)
      name=$(sed -n 's/^  "runbook": "\(.*\)",$/\1/p' "$arg" | head -n 1)
      if [[ -n $source && $source != built-in ]]; then printf '%s' "$source"; else printf '%s' "$name"; fi ;;
  esac
}

# Journals that did not finish, by name, from the journal directory (--journal-dir on the line, else
# runbook's default): what `runbook resume NAME` finds there. A finished journal ends with a finish line.
_runbook_journals() {
  local dir=$journal_dir f
  [[ -z $dir ]] && dir=${XDG_STATE_HOME:-$HOME/.local/state}/runbook
  for f in "$dir"/*.journal; do
    [[ -f $f ]] || continue
    tail -n 1 -- "$f" 2>/dev/null | grep -q '"type":"finish"' && continue
    f=${f##*/}
    printf '%s\n' "${f%.journal}"
  done
}

_runbook_files() {  # _runbook_files [-d]: file (or directory) names
  compopt -o filenames 2>/dev/null
  if [[ $1 == -d ]]; then
    mapfile -t COMPREPLY < <(compgen -d -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
}

# The value of `-p`: KEY= from the runbook's parameters, then for KEY=VALUE what the type allows.
_runbook_complete_param() {
  local runbook=$1 spec key type
  [[ -n $runbook ]] || return
  if [[ $cur != *=* ]]; then
    local -a names=()
    while read -r key type; do [[ -n $key ]] && names+=("$key="); done < <(_runbook_params "$runbook")
    mapfile -t COMPREPLY < <(compgen -W "${names[*]}" -- "$cur")
    compopt -o nospace 2>/dev/null
    return
  fi
  key=${cur%%=*}
  while read -r spec type; do
    [[ $spec == "$key" ]] || continue
    case $type in
      boolean) mapfile -t COMPREPLY < <(compgen -W "$key=true $key=false" -- "$cur") ;;
      path)
        local value=${cur#*=} f
        compopt -o filenames 2>/dev/null
        COMPREPLY=()
        while IFS= read -r f; do COMPREPLY+=("$key=$f"); done < <(compgen -f -- "$value") ;;
    esac
  done < <(_runbook_params "$runbook")
}

# Completes $cur as the value of OPTION.
_runbook_value() {
  case $1 in
    --output) mapfile -t COMPREPLY < <(compgen -W "text json" -- "$cur") ;;
    --journal-dir|--runbook-path) _runbook_files -d ;;
    --kubeconfig|--policy|--out|-o|--inventory) _runbook_files ;;
    --max-age) mapfile -t COMPREPLY < <(compgen -W "1h 24h 7d 0" -- "$cur") ;;
    --context)  # kubectl reads the same kubeconfig files, if it is installed
      if command -v kubectl >/dev/null 2>&1; then
        local -a kc=()
        [[ -n $kubeconfig ]] && kc=(--kubeconfig "$kubeconfig")
        mapfile -t COMPREPLY < <(compgen -W "$(kubectl config get-contexts -o name "${kc[@]}" 2>/dev/null)" -- "$cur")
      fi ;;
    -p|--param) _runbook_complete_param "$(_runbook_of_line "$command" "$arg")" ;;
  esac
}

_runbook() {
  # Rejoin what COMP_WORDBREAKS split at '=' (--output=json, -p days=90): words/cword are the line
  # as runbook will see it.
  local -a words=()
  local cword=0 i w joined=0
  for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
    w=${COMP_WORDS[i]}
    if ((i > 1)) && [[ $w == "=" || $joined == 1 ]]; then
      words[${#words[@]}-1]+=$w
      [[ $w == "=" ]] && joined=1 || joined=0
    else
      words+=("$w")
      joined=0
    fi
    ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
  done
  local cur=${words[cword]}
  # Readline replaces only the text after the last '=': each answer loses what comes before it.
  local raw=${COMP_WORDS[COMP_CWORD]}
  [[ $raw == "=" ]] && raw=""
  local strip=$((${#cur} - ${#raw}))

  # The command, its first argument, and whether the word being completed is an option's value.
  # Options may come before or after the command, as runbook's own parser allows.
  local command="" arg="" n_args=0 value_of="" kubeconfig="" journal_dir=""
  for ((i = 1; i < cword; i++)); do
    w=${words[i]}
    if [[ $command == exec && $n_args -ge 1 ]]; then
      n_args=$((n_args + 1))   # after the script, every word is the script's
    elif [[ $w == -* && $w != *=* ]] && _runbook_takes_value "$w"; then
      ((i + 1 == cword)) && value_of=$w
      [[ $w == --kubeconfig ]] && kubeconfig=${words[i+1]}
      [[ $w == --journal-dir ]] && journal_dir=${words[i+1]}
      ((i++))
    elif [[ $w == -* ]]; then
      :
    elif [[ -z $command ]]; then
      command=$w
    else
      n_args=$((n_args + 1))
      ((n_args == 1)) && arg=$w
    fi
  done

  COMPREPLY=()
  if [[ $command == exec && $n_args -ge 1 ]]; then
    _runbook_files
  elif [[ -n $value_of ]]; then
    _runbook_value "$value_of"
  elif [[ $cur == --*=* ]] && _runbook_takes_value "${cur%%=*}"; then
    local opt=${cur%%=*}
    cur=${cur#*=}
    _runbook_value "$opt"
    for ((i = 0; i < ${#COMPREPLY[@]}; i++)); do COMPREPLY[i]=$opt=${COMPREPLY[i]}; done
  elif [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$_runbook_global_opts $(_runbook_command_opts "$command")" -- "$cur")
  elif [[ -z $command ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$_runbook_commands" -- "$cur")
  elif ((n_args == 0)); then
    case $command in
      show|plan|run)
        if [[ $cur == */* || $cur == *.lua ]]; then
          _runbook_files   # a runbook file works wherever a name does
        else
          mapfile -t COMPREPLY < <(compgen -W "$(_runbook_names)" -- "$cur")
        fi ;;
      apply|exec) _runbook_files ;;
      resume)
        _runbook_files
        if [[ $cur != */* ]]; then
          local -a names=()
          mapfile -t names < <(compgen -W "$(_runbook_journals)" -- "$cur")
          COMPREPLY+=("${names[@]}")
        fi ;;
      help) mapfile -t COMPREPLY < <(compgen -W "$_runbook_commands" -- "$cur") ;;
    esac
  fi

  if ((strip > 0)); then
    for ((i = 0; i < ${#COMPREPLY[@]}; i++)); do COMPREPLY[i]=${COMPREPLY[i]:strip}; done
  fi
  return 0
}

complete -F _runbook runbook runbook-portable
