#!/usr/bin/env bash
# make install into a DESTDIR: the binary, the man page, the bash and zsh completions, the runbooks
# and the JSON Schemas land where distributions look for them; the installed binary works from
# another directory (runbooks are embedded); man finds and renders the page; make uninstall leaves
# no file behind. The same with another PREFIX and a MANDIR override.
. "$(dirname "$0")/lib/tap.sh"
# A make started by `make test` passes its jobserver and flags down; this make is a separate one.
unset MAKEFLAGS MFLAGS MAKELEVEL
unset RUNBOOK_PATH

DEST="$SCRATCH/dest"
make -s -C "$TOP" install DESTDIR="$DEST" PREFIX=/usr/local >"$SCRATCH/install.log" 2>&1
ok $? "make install DESTDIR=... PREFIX=/usr/local" || sed 's/^/#   /' "$SCRATCH/install.log"
P="$DEST/usr/local"
is "$(stat -c %a "$P/bin/runbook" 2>/dev/null)" 755 "bin/runbook, mode 0755"
is "$(stat -c %a "$P/share/man/man1/runbook.1" 2>/dev/null)" 644 "share/man/man1/runbook.1"
is "$(stat -c %a "$P/share/bash-completion/completions/runbook" 2>/dev/null)" 644 "share/bash-completion/completions/runbook"
is "$(stat -c %a "$P/share/zsh/vendor-completions/_runbook" 2>/dev/null)" 644 "share/zsh/vendor-completions/_runbook"
is "$(cd "$P/share/runbook/runbooks" 2>/dev/null && ls | tr '\n' ' ')" "$(cd "$TOP/runbooks" && ls | tr '\n' ' ')" \
   "share/runbook/runbooks: the shipped runbooks"
is "$(cd "$P/share/runbook/schema" 2>/dev/null && ls | tr '\n' ' ')" "$(cd "$TOP/doc/schema" && ls | tr '\n' ' ')" \
   "share/runbook/schema: the JSON Schemas"

# --- the installed binary, from another directory, with a clean environment ---
mkdir -p "$SCRATCH/elsewhere"
in_elsewhere() { (cd "$SCRATCH/elsewhere" && env -i HOME="$SCRATCH/home" PATH="$P/bin:/usr/bin:/bin" "$@"); }
out=$(in_elsewhere runbook list 2>&1); rc=$?
is "$rc" 0 "the installed runbook list exits 0 from another directory"
is "$(printf '%s\n' "$out" | awk '{print $1}' | tr '\n' ' ')" "$(cd "$TOP/runbooks" && ls | sed 's/\.lua$//' | tr '\n' ' ')" \
   "  it lists every shipped runbook (embedded in the binary)"
unlike "$out" "cannot be loaded" "  all of them load"
out=$(in_elsewhere runbook show prune-dormant 2>&1)
like "$out" "^prune-dormant: " "the installed runbook show works"
out=$(in_elsewhere runbook version 2>&1)
like "$out" "runbook $(cat "$TOP/VERSION")" "the installed runbook version names the version"

# --- the installed man page ---
out=$(MANWIDTH=80 MANPATH="$P/share/man" man runbook 2>"$SCRATCH/man.err" </dev/null); rc=$?
is "$rc" 0 "man finds the installed page through MANPATH"
like "$out" "rehearse, confirm, apply and resume" "  and renders it"
is "$(cat "$SCRATCH/man.err")" "" "  without a warning"
out=$(groff -man -Tutf8 -ww -z "$P/share/man/man1/runbook.1" 2>&1)
is "$out" "" "groff -man -ww: no warnings"

# --- the installed completions load ---
is "$(bash -c '. "$1" && complete -p runbook' bash "$P/share/bash-completion/completions/runbook")" \
   "complete -F _runbook runbook" "the installed bash completion registers _runbook"
reply=$(PATH="$P/bin:$PATH" bash -c '. "$1"; COMP_WORDS=(runbook show pru); COMP_CWORD=2; _runbook; echo "${COMPREPLY[*]}"' \
  bash "$P/share/bash-completion/completions/runbook")
is "$reply" "prune-dormant" "  and completes runbook names from the installed binary"
if command -v zsh >/dev/null; then
  zsh -n "$P/share/zsh/vendor-completions/_runbook"; ok $? "the installed zsh completion parses"
  is "$(head -n 1 "$P/share/zsh/vendor-completions/_runbook")" "#compdef runbook runbook-portable" "  and declares what it completes"
fi

# --- uninstall leaves no file ---
make -s -C "$TOP" uninstall DESTDIR="$DEST" PREFIX=/usr/local >"$SCRATCH/uninstall.log" 2>&1
ok $? "make uninstall" || sed 's/^/#   /' "$SCRATCH/uninstall.log"
is "$(find "$DEST" ! -type d | sed "s|^$DEST||")" "" "  no file is left behind"
ok $([ ! -e "$P/share/runbook" ]; echo $?) "  share/runbook is gone"

# --- another PREFIX, MANDIR overridden ---
make -s -C "$TOP" install DESTDIR="$DEST" PREFIX=/opt/runbook MANDIR=/usr/share/man >"$SCRATCH/install2.log" 2>&1
ok $? "make install PREFIX=/opt/runbook MANDIR=/usr/share/man" || sed 's/^/#   /' "$SCRATCH/install2.log"
ok $([ -x "$DEST/opt/runbook/bin/runbook" ] && [ -f "$DEST/usr/share/man/man1/runbook.1" ] &&
     [ -f "$DEST/opt/runbook/share/bash-completion/completions/runbook" ]; echo $?) "  each file under its own directory"
make -s -C "$TOP" uninstall DESTDIR="$DEST" PREFIX=/opt/runbook MANDIR=/usr/share/man >/dev/null 2>&1
is "$(find "$DEST" ! -type d | sed "s|^$DEST||")" "" "  uninstalled with the same variables, nothing is left"

done_testing
