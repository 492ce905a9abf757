#!/bin/bash
# The layer rules (docs/ARCHITECTURE.md, "Layers") hold for the real tree,
# and scripts/check-layers really catches a part that includes one it must
# not: its self-test, and a violation injected into a copy of this tree.
. "$(dirname "$0")/lib.sh"

CL=$KILN_SRC/scripts/check-layers

"$CL" --selftest > "$TRASH/selftest.out" 2>&1
rc=$?
check "check-layers --selftest passes" [ "$rc" = 0 ]
[ "$rc" = 0 ] || sed 's/^/# /' "$TRASH/selftest.out"

"$CL" > "$TRASH/real.out" 2>&1
rc=$?
grep -E '^(not ok|# )' "$TRASH/real.out" | sed 's/^/# /'
check "the real tree keeps the layer rules" [ "$rc" = 0 ]
check "the real tree's check prints a TAP plan for every part" grep -qx '1\.\.8' "$TRASH/real.out"

# a copy of the real tree, with one bad include injected into the client
mkdir -p "$TRASH/copy"
cp -r "$KILN_SRC/src" "$TRASH/copy/src"
f=$TRASH/copy/src/client/cmd-workers.c
before=$("$CL" --root "$TRASH/copy" | grep -c '^not ok')
echo '#include "master/master.h"' >> "$f"
"$CL" --root "$TRASH/copy" > "$TRASH/copy.out" 2>&1
rc=$?
check "an injected client -> master include fails the check" [ "$rc" = 1 ]
line=$(wc -l < "$f" | tr -d ' ')
check "it is named with file and line" grep -qF "# src/client/cmd-workers.c:$line: includes 'master/master.h' (client may include: common)" "$TRASH/copy.out"
check "one more part fails than before" [ "$(grep -c '^not ok' "$TRASH/copy.out")" = $((before + 1)) ]
done_testing
