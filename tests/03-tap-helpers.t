#!/usr/bin/env bash
# The TAP helpers themselves: `like` and `unlike` with a pattern that spans lines must match it across
# lines as a whole. grep alone takes each line of such a pattern as a pattern of its own and passes when
# any one matches, so an assertion on two lines passed when only its first line was there.
. "$(dirname "$0")/lib/tap.sh"

two_lines=$'the token lacks\n  delete:users'
like "$two_lines" "lacks"$'\n'"  delete:users" "a pattern on two lines matches the two lines"
got=$( ( like $'the token lacks\n  read:users' "lacks"$'\n'"  delete:users" "inner" ) | head -n 1)
like "$got" "^not ok" "it fails when only its first line is there"
got=$( ( like $'nothing\n  delete:users' "lacks"$'\n'"  delete:users" "inner" ) | head -n 1)
like "$got" "^not ok" "  and when only its second line is there"
like $'first\nsecond line' '^second line$' "a one-line pattern still anchors ^ and \$ at each line"
got=$( ( unlike $'the token lacks\n  delete:users' "lacks"$'\n'"  delete:users" "inner" ) | head -n 1)
like "$got" "^not ok" "unlike fails on a text that has both lines"
unlike $'the token lacks\n  read:users' "lacks"$'\n'"  delete:users" "  and passes on one that has only the first"
done_testing
