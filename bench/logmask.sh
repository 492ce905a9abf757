#!/bin/sh
# bench/logmask.sh [BUILD_DIR] [REPS]: the cost of secret masking (src/master/logmask.c).
#   1. bench/logmask-bench.c: 50 MB of compiler-like output through the masker in
#      64 KiB pieces, no secret vs five (token, password, access key, URL with
#      credentials, multi-line private key): CPU seconds and MB/s;
#   2. the 50 MB log step end to end: one master and one kiln-worker, a shell step
#      printing 50 MB of the same kind of output (the secrets in it a few times),
#      two masters (no secret configured; the five), REPS builds each (default 3),
#      alternating: force -> finished (kiln force --wait) and master CPU per build.
# Prints a human summary and one JSON line ("logmask-bench-e2e {...}").  Loopback
# only; throwaway masters in a temp dir.  Never a test gate.
set -eu
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
[ -x "$BUILD/kiln" ] || BUILD=$SRC/build
REPS=${2:-3}
KILN=$BUILD/kiln
WORKER=$BUILD/src/worker/kiln-worker
[ -x "$KILN" ] && [ -x "$WORKER" ] || { echo "logmask.sh: no kiln binaries in $BUILD (run ninja first)" >&2; exit 1; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-logmask.XXXXXX")
PIDS=
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$DIR"; }
trap cleanup EXIT INT TERM

# 1. the masker alone
cc -O2 -Wall -Wextra -Werror -I"$SRC/src" -I"$BUILD/src" -include "$SRC/src/common/banned.h" \
    -D_GNU_SOURCE -o "$DIR/logmask-bench" "$SRC/bench/logmask-bench.c" \
    "$BUILD/src/master/libkiln-master.a" "$BUILD/src/common/libkiln-common.a"
"$DIR/logmask-bench" 50000000 3

# 2. the log step: 1 MB of build output (the five secrets in it), printed 50 times
/usr/bin/python3 - "$DIR" <<'PY'
import os, sys
d = sys.argv[1]
secrets = ["ghp_R4nd0mT0kenValue1234567890abcdefXYZ", "S3cure!pass#2026 word",
           "AKIAIOSFODNN7EXAMPLE", "https://deploy:hunter2hunter2@git.example.org/repo.git",
           "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9u\n"
           "ZQAAAAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQAAACDm0fPq7w1t2mJmU6Sb8j2l\n"
           "-----END OPENSSH PRIVATE KEY-----"]
os.makedirs(os.path.join(d, 'secrets'))
for i, s in enumerate(secrets):
    open(os.path.join(d, 'secrets', 's%d' % i), 'w').write(s)
lines = ["gcc -O2 -g -Wall -Wextra -I../src -D_GNU_SOURCE -MD -MQ src/master/build.c.o "
         "-o src/master/build.c.o -c ../src/master/build.c",
         "../src/master/build.c:412:17: warning: unused variable 'len' [-Wunused-variable]",
         "  412 |         size_t len = strlen(name);", "      |                ^~~",
         "[123/456] Compiling C object src/worker/kiln-worker.p/runner.c.o",
         "make[2]: Entering directory '/home/build/project/lib'",
         "PASS: test-suite 17 - string handling with UTF-8 input (0.003 s)"]
out, n, i = [], 0, 0
while n < 1000000:
    l = lines[i % len(lines)] if i % 5000 else "+ git clone %s # %s" % (secrets[3], secrets[i // 5000 % 3])
    out.append(l)
    n += len(l) + 1
    i += 1
open(os.path.join(d, 'sample.txt'), 'w').write("\n".join(out) + "\n")
PY
printf 'pw1' > "$DIR/secrets/pw"   # 3 bytes: shorter than any masked secret

start_pair() { # NAME SECRETS_LUA: starts a master (NAME) and its worker, one warm-up build
    m="$DIR/m-$1"
    mkdir -p "$m"
    cp -r "$DIR/secrets" "$m/"
    cat > "$m/master.lua" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
local used = { $2 }
worker { name = "w", password = secret("pw") }
builder { name = "log50m", workers = { "w" }, steps = {
  shell { name = "log50m", command = { "sh", "-c", "for i in \$(seq 50); do cat '$DIR/sample.txt'; done" } } } }
force_scheduler { name = "force", builders = { "log50m" } }
LUA
    "$KILN" master -d "$m" 2>"$m/master.log" &
    echo $! > "$m/pid"
    PIDS="$PIDS $!"
    i=0
    while [ ! -s "$m/ports" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
    [ -s "$m/ports" ] || { echo "logmask.sh: master did not start" >&2; cat "$m/master.log" >&2; exit 1; }
    echo "http://$(awk '$1=="http" {print $2}' "$m/ports")" > "$m/url"
    "$WORKER" create "$m/w" --master "$(awk '$1=="workers" {print $2}' "$m/ports")" --name w \
        --password-file "$DIR/secrets/pw" >/dev/null
    "$WORKER" start "$m/w" 2>"$m/w.log" &
    PIDS="$PIDS $!"
    KILN_URL=$(cat "$m/url") "$KILN" force log50m --wait --timeout 300 >/dev/null   # warm-up (and attach)
}
one_build() { # NAME: one build, appends "NAME wall_s master_cpu_s" to samples
    m="$DIR/m-$1"
    mpid=$(cat "$m/pid")
    c0=$(awk '{print $14 + $15}' "/proc/$mpid/stat")
    t0=$(date +%s.%N)
    KILN_URL=$(cat "$m/url") "$KILN" force log50m --wait --timeout 300 >/dev/null
    t1=$(date +%s.%N)
    c1=$(awk '{print $14 + $15}' "/proc/$mpid/stat")
    echo "$1 $(echo "$t1 - $t0" | bc) $(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l)" >> "$DIR/samples"
}
start_pair none ''
start_pair secrets 'secret("s0"), secret("s1"), secret("s2"), secret("s3"), secret("s4")'
for r in $(seq "$REPS"); do   # alternating, so both see the same machine
    one_build none
    one_build secrets
done

/usr/bin/python3 - "$DIR/samples" <<'PY'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
res = {}
for k in ('none', 'secrets'):
    w = [float(r[1]) for r in rows if r[0] == k]
    c = [float(r[2]) for r in rows if r[0] == k]
    res[k] = {'wall_s': statistics.median(w), 'master_cpu_s': statistics.median(c), 'n': len(w),
              'wall': w, 'cpu': c}
o = res['secrets']['wall_s'] / res['none']['wall_s'] - 1
print("50 MB log step, force -> finished (median of %d): no secret %.2f s, 5 secrets %.2f s (%+.0f%%)"
      % (res['none']['n'], res['none']['wall_s'], res['secrets']['wall_s'], 100 * o))
print("  master CPU per build: no secret %.2f s, 5 secrets %.2f s"
      % (res['none']['master_cpu_s'], res['secrets']['master_cpu_s']))
res['overhead'] = o
print("logmask-bench-e2e " + json.dumps(res))
PY
