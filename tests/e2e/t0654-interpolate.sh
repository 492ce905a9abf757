#!/bin/bash
# asan-too
# interpolate("..."): Buildbot's Interpolate in commands, list elements and
# env values, rendered at step start: %(prop:x)s with its :-, :~, :+ and
# :?|a|b forms, %(src:CODEBASE:attr)s, %(worker:x)s, %(secret:x)s (masked
# in the stored log); a missing property without a default ends the step
# EXCEPTION with the reason in its log; checkconfig refuses a bad template.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
properties = { jobs = 3, empty = "", on = true }
worker { name = "w1", password = secret("w1") }
builder { name = "i", workers = { "w1" }, steps = {
  shell { name = "props", command = interpolate("echo p=%(prop:jobs)s d=%(prop:nope:-dflt)s t=%(prop:empty:~alt)s s=%(prop:jobs:+set)s c=%(prop:on:?|yes|no)s") },
  shell { name = "src", command = { "echo", interpolate("src=[%(src::branch)s] w=%(worker:workername)s b=%(prop:buildername)s") } },
  shell { name = "secret", command = "echo token=$TOKEN", env = { TOKEN = interpolate("%(secret:deploy)s") } },
  shell { name = "missing", command = interpolate("echo %(prop:not_there)s") },
} }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
printf 'deploy-token-%s' "$$" > "$M/secrets/deploy"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

br=$(force i)
check "the build completes" wait_for 60 request_done "$br"
b=$(build_of_request "$br")
out=$(log_text "$b" 1)
check "prop and its modifiers render as Buildbot's ($out)" grep -q "^op=3 d=dflt t=alt s=set c=yes" <<<"$out"
out=$(log_text "$b" 2)
check "src, worker and a list element ($out)" grep -q "^osrc=\[\] w=w1 b=i" <<<"$out"
out=$(log_text "$b" 3)
check "a secret reaches the command and is masked in the log ($out)" grep -q "^otoken=<secret>" <<<"$out"
out=$(log_text "$b" 4)
check "a missing property without default: the reason in the log ($out)" grep -q "cannot render 'command': property 'not_there' at offset .* is not set" <<<"$out"
check "and the step is EXCEPTION" [ "$(api "builds/$b/steps/4" | jpy 'd["steps"][0]["results"]')" = 4 ]
check "so is the build" build_results_is "$b" 4

mkdir -p "$TRASH/bad"
echo 'local s = shell { command = interpolate("echo %(prop:x") }' > "$TRASH/bad/master.lua"
out=$("$KILN" checkconfig "$TRASH/bad" 2>&1)
check "checkconfig refuses a bad template ($out)" grep -q "master.lua:1: interpolate: unterminated" <<<"$out"
echo 'local s = shell { command = interpolate("echo %(secret:absent)s") }' > "$TRASH/bad/master.lua"
out=$("$KILN" checkconfig "$TRASH/bad" 2>&1)
check "and a template naming a secret that does not exist ($out)" grep -q "secret 'absent' not found" <<<"$out"
done_testing
