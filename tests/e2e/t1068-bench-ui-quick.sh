#!/bin/bash
# bench/ui.sh --quick (issue 11's UI benchmark, its small scenario: 20
# builders, 200 builds seeded by bench/ui-seed.py, one run of each view in
# Debian's Chromium): it works, and its JSON has every view with its numbers
# (first paint, data shown, last API answer, tab CPU, API requests, bytes and
# their time outside the browser, JS/CSS bytes, page bytes)
# above zero.  Times are not checked: this is not a performance gate.
. "$(dirname "$0")/lib.sh"
CHROMIUM=${KILN_CHROMIUM:-/usr/bin/chromium}
require_cmd node curl
[ -x "$CHROMIUM" ] || skip_all "'$CHROMIUM' is not installed (scripts/install-deps)"
[ -d "$KILN_SRC/www/node_modules/playwright-core" ] ||
    skip_all "www/node_modules is missing (scripts/install-deps runs npm ci)"

OUT=$TRASH/ui.json
# bounded: the script's own waits are bounded too; this caps the whole run
timeout -k 10 300 sh "$KILN_SRC/bench/ui.sh" --quick --out "$OUT" "$KILN_BUILD" \
    >"$TRASH/bench.out" 2>"$TRASH/bench.err"
rc=$?
check "bench/ui.sh --quick exits 0 (rc $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || sed 's/^/# /' "$TRASH/bench.out" "$TRASH/bench.err" | tail -n 30
check "it wrote its JSON" [ -s "$OUT" ]
check "... and the markdown table beside it" grep -q '^| board `/` |' "$TRASH/ui.md"
check "it seeded 20 builders and 200 builds" grep -q '^ui-seed: 20 builders, 200 builds' "$TRASH/bench.out"

VIEWS="board builders builder waterfall console grid build"
KEYS="fcp_ms data_ms api_done_ms cpu_to_data_ms api_requests api_transfer_bytes api_decoded_bytes serial_ms js_css_bytes js_css_decoded_bytes page_bytes"
for v in $VIEWS; do
    bad=$(/usr/bin/python3 - "$OUT" "$v" $KEYS <<'PY' 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
v = d["views"].get(sys.argv[2])
if v is None:
    print("no view")
else:
    print(" ".join("%s=%r" % (k, v.get(k)) for k in sys.argv[3:]
                   if not isinstance(v.get(k), (int, float)) or v.get(k) <= 0))
PY
)
    check "view $v: every number > 0${bad:+ (bad: $bad)}" [ -z "$bad" ]
done
# /builders reads the builder list once: the refetch that follows the /ws
# subscription rereads only the last builds (www/src/builders.js)
n=$(/usr/bin/python3 -c "
import json
p = json.load(open('$OUT'))['views']['builders']['api_paths']
print(sum(x.startswith('/api/v2/builders?') for x in p), sum(x.startswith('/api/v2/lastbuilds?') for x in p))")
check "/builders: one builders request, lastbuilds at most twice ($n)" \
    grep -qE '^1 [12]$' <<<"$n"
check "the run's load average and master CPU are recorded" /usr/bin/python3 -c "
import json, sys
d = json.load(open('$OUT'))
sys.exit(not (d['load_before'] and d['master_cpu_s'] >= 0 and d['builders'] == 20 and d['builds'] == 200))"
done_testing
