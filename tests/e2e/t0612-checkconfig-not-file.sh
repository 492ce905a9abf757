#!/bin/bash
# asan-too
# Issue 9: a FIFO as master.lua hung `kiln checkconfig` (and `kiln master`)
# in open(); /dev/zero was read up to the size cap and a directory gave a
# read error.  Anything but a regular file is refused at once, by name.
. "$(dirname "$0")/lib.sh"

# refused DIR KIND VERB...: the verb exits 1 within 10 s naming the file and its kind
refused() {
    local dir=$1 kind=$2; shift 2
    out=$(timeout 10 "$KILN" "$@" 2>&1); rc=$?
    diag "$*: exit $rc: $out"
    [ "$rc" = 1 ] && printf '%s' "$out" | grep -qF "'$dir/master.lua' is not a regular file (it is $kind)"
}

mkdir -p "$TRASH/fifo" "$TRASH/dir/master.lua" "$TRASH/zero"
mkfifo "$TRASH/fifo/master.lua"
ln -s /dev/zero "$TRASH/zero/master.lua"
check "checkconfig: a FIFO is refused at once" refused "$TRASH/fifo" "a FIFO" checkconfig "$TRASH/fifo"
check "checkconfig: a directory is refused" refused "$TRASH/dir" "a directory" checkconfig "$TRASH/dir"
check "checkconfig: /dev/zero is refused" refused "$TRASH/zero" "a character device" checkconfig "$TRASH/zero"
check "kiln master: a FIFO is refused at once" refused "$TRASH/fifo" "a FIFO" master -d "$TRASH/fifo"
done_testing
