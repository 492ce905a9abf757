#!/bin/bash
# Keeps --help true: every verb that `kiln --help` lists answers
# `kiln VERB --help` with its usage line and exit 0, and so do kiln-worker's.
. "$(dirname "$0")/lib.sh"

verbs=$("$KILN" --help | awk '/^commands:/ {on = 1; next} on && NF && $1 !~ /^'"'"'/ {print $1}')
check "kiln --help lists the verbs" [ -n "$verbs" ]
for v in $verbs; do
    out=$("$KILN" "$v" --help 2>&1)
    check "kiln $v --help" sh -c '[ $1 -eq 0 ] && printf "%s" "$2" | grep -q "^usage: kiln $3"' _ $? "$out" "$v"
done
out=$("$KILN_WORKER" --help 2>&1)
check "kiln-worker --help" sh -c '[ $1 -eq 0 ] && printf "%s" "$2" | grep -qi "usage"' _ $? "$out"
for v in create start; do
    out=$("$KILN_WORKER" "$v" --help 2>&1)
    check "kiln-worker $v --help" sh -c '[ $1 -eq 0 ] && printf "%s" "$2" | grep -qi "usage"' _ $? "$out"
done
check "an unknown verb is an error" sh -c '! "$1" frobnicate >/dev/null 2>&1' _ "$KILN"
done_testing
