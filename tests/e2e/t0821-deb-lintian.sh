#!/bin/bash
# asan-too
# deb_build and deb_lintian on a real Debian source package made here (a
# native package whose binary has no manual page: lintian's warning
# no-manual-page), built by kiln-worker with dpkg-buildpackage: the .changes
# file is the property deb-changes; lintian's W: line makes the step
# WARNINGS with a "1 Warnings" log, lintian-warnings = 1 as property and
# number; suppress_tags silences it (SUCCESS, 0); E: lines (a lintian
# stand-in on the PATH) make it FAILURE with an "N Errors" log, and a
# lintian that fails is FAILURE; flunk_on_failure is false by default (the
# build only WARNINGS).
. "$(dirname "$0")/lib.sh"
require_cmd dpkg-buildpackage
require_cmd dh
require_cmd lintian

FIX=$TRASH/fix
P=$FIX/hello-1.0
mkdir -p "$P/debian/source" "$FIX/bin"
printf '#!/bin/sh\necho hello\n' > "$P/hello.sh"
cat > "$P/debian/control" <<'EOF2'
Source: kiln-hello
Section: misc
Priority: optional
Maintainer: Kiln Tests <kiln@example.org>
Build-Depends: debhelper-compat (= 13)
Standards-Version: 4.6.2
Rules-Requires-Root: no

Package: kiln-hello
Architecture: all
Depends: ${misc:Depends}
Description: tiny package built by Kiln's tests
 It prints hello.
EOF2
cat > "$P/debian/changelog" <<'EOF2'
kiln-hello (1.0) unstable; urgency=medium

  * Initial release.

 -- Kiln Tests <kiln@example.org>  Wed, 02 Dec 2026 12:00:00 +0000
EOF2
printf '#!/usr/bin/make -f\n%%:\n\tdh $@\n\noverride_dh_auto_install:\n\tinstall -D -m 0755 hello.sh debian/kiln-hello/usr/bin/kiln-hello\n' \
    > "$P/debian/rules"
chmod +x "$P/debian/rules"
echo '3.0 (native)' > "$P/debian/source/format"
cat > "$P/debian/copyright" <<'EOF2'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: kiln-hello

Files: *
Copyright: 2026 Kiln Tests
License: MIT
EOF2
# a lintian stand-in with errors (a real package with errors costs a build)
cat > "$FIX/bin/lintian" <<'EOF2'
#!/bin/sh
echo "N: checking $2"
echo "E: kiln-hello: no-copyright-file"
echo "E: kiln-hello: missing-dependency-on-libc"
echo "W: kiln-hello: no-manual-page [usr/bin/kiln-hello]"
echo "I: kiln-hello: an info line"
exit 1
EOF2
chmod +x "$FIX/bin/lintian"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "deb", workers = { "w1" }, steps = {
  shell { command = "rm -rf hello-1.0 && cp -r $P ." },
  deb_build { workdir = "build/hello-1.0" },
  deb_lintian { workdir = "build/hello-1.0" },
  deb_lintian { name = "quiet", workdir = "build/hello-1.0", suppress_tags = { "no-manual-page" },
                fileloc = "../kiln-hello_1.0_*.changes" },
} }
builder { name = "errors", workers = { "w1" }, steps = {
  deb_lintian { env = { PATH = "$FIX/bin:/usr/bin:/bin" }, fileloc = "x.changes" },
} }
builder { name = "missing", workers = { "w1" }, steps = {
  deb_lintian { fileloc = "none.changes", flunk_on_failure = true },
} }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"
start_worker "$TRASH/w1" w1 "$M/secrets/w1"
check "worker attaches" wait_for 60 worker_connected w1

run() { local br; br=$(force "$1") || return 1; wait_for 300 request_done "$br" || return 1; build_of_request "$br"; }
state() { api "builds/$1/steps/$2" | jpy 'd["steps"][0]["state_string"]'; }
step_results() { api "builds/$1/steps/$2" | jpy 'd["steps"][0]["results"]'; }
prop() { api "builds/$1/properties" | jpy "d['properties'][0].get('$2')"; }
number() { api "builders/$1/numbers/$2" | jpy "d['numbers'][0]['value'] if d['numbers'] else None"; }
logs() { local sid; sid=$(api "builds/$1/steps/$2" | jpy 'd["steps"][0]["stepid"]'); api "steps/$sid/logs" | jpy "[l['name'] for l in d['logs']]"; }
log_named() {
    local sid lid; sid=$(api "builds/$1/steps/$2" | jpy 'd["steps"][0]["stepid"]')
    lid=$(api "steps/$sid/logs" | jpy "[l['logid'] for l in d['logs'] if l['name'] == '$3'][0]")
    api "logs/$lid/contents" | jpy '"".join(c["content"] for c in d["logchunks"])'
}
is_num() { python3 -c "import sys; sys.exit(0 if float('$1') == float('$2') else 1)" 2>/dev/null; }

b=$(run deb)
check "dpkg-buildpackage: SUCCESS" [ "$(step_results "$b" 2)" = 0 ]
check "the .deb exists on the worker" test -f "$TRASH/w1/deb/build/kiln-hello_1.0_all.deb"
check "deb-changes property ($(prop "$b" deb-changes))" \
    [ "$(prop "$b" deb-changes)" = '["kiln-hello_1.0_amd64.changes", "DebPbuilder"]' ]
check "lintian: WARNINGS on its warning" [ "$(step_results "$b" 3)" = 1 ]
check "state string ($(state "$b" 3))" [ "$(state "$b" 3)" = "Lintian: 1 warnings, 0 errors (warnings)" ]
check "a log '1 Warnings' ($(logs "$b" 3))" [ "$(logs "$b" 3)" = '["stdio", "1 Warnings"]' ]
check "holding the W: line" grep -q "^W: kiln-hello: no-manual-page" <<<"$(log_named "$b" 3 "1 Warnings")"
# two deb_lintian steps: the property is the last one's, the series has both
check "property lintian-warnings, the last step's ($(prop "$b" lintian-warnings))" \
    [ "$(prop "$b" lintian-warnings)" = '[0, "DebLintian"]' ]
v=$(api "builders/deb/numbers/lintian-warnings" | jpy "sorted(n['value'] for n in d['numbers'][:2])")
check "number lintian-warnings: 1 then 0 ($v)" [ "$v" = "[0.0, 1.0]" -o "$v" = "[0, 1]" ]
check "suppress_tags silences it: SUCCESS" [ "$(step_results "$b" 4)" = 0 ]
check "its state ($(state "$b" 4))" [ "$(state "$b" 4)" = "Lintian: 0 warnings, 0 errors" ]
check "the build is WARNINGS" build_results_is "$b" 1

b=$(run errors)
check "E: lines: the step FAILURE" [ "$(step_results "$b" 1)" = 2 ]
check "but the build only WARNINGS (flunk_on_failure false)" build_results_is "$b" 1
check "logs ($(logs "$b" 1))" [ "$(logs "$b" 1)" = '["stdio", "1 Warnings", "2 Errors"]' ]
check "the errors log" [ "$(log_named "$b" 1 "2 Errors")" = $'E: kiln-hello: no-copyright-file\nE: kiln-hello: missing-dependency-on-libc' ]
check "lintian-errors property" [ "$(prop "$b" lintian-errors)" = '[2, "DebLintian"]' ]
check "number lintian-errors" is_num "$(number errors lintian-errors)" 2

b=$(run missing)
check "lintian on a missing file fails: FAILURE" build_results_is "$b" 2
check "no warnings nor errors counted ($(state "$b" 1))" [ "$(state "$b" 1)" = "Lintian: 0 warnings, 0 errors (failure)" ]
done_testing
