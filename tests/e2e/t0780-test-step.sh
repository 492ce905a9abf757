#!/bin/bash
# asan-too
# The test step with kiln-worker: a TAP suite printed by a shell script,
# a pytest-shaped JUnit XML file read from the worker after the command, a
# `go test -json` stream replayed from a fixture; each lands in
# test_result_sets/results, the state string is "N tests, F failed, S
# skipped", the counts are properties and numbers; a failed test is
# FAILURE, a malformed, a binary and an oversized report each end the step
# FAILURE with a message, a missing report too; the master keeps serving.
# The same reports through Debian's buildbot-worker.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-build.sh"

FIX=$TRASH/fix
mkdir -p "$FIX"
cat > "$FIX/tap.sh" <<'TAP'
#!/bin/sh
echo "building the suite"
echo "TAP version 13"
echo "1..4"
echo "ok 1 - parses"
echo "not ok 2 - adds"
echo "  ---"
echo "  message: 'expected 3, got 4'"
echo "  ..."
echo "ok 3 - slow # SKIP no network"
echo "ok 4 - prints"
TAP
cat > "$FIX/pass.sh" <<'TAP'
#!/bin/sh
printf '1..2\nok 1 - a\nok 2 - b # skip later\n'
TAP
# pytest's --junitxml shape
cat > "$FIX/junit.sh" <<'SH2'
#!/bin/sh
mkdir -p reports
cat > reports/junit.xml <<'XML'
<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4" time="0.051" timestamp="2026-12-02T17:00:00.000000" hostname="h"><testcase classname="tests.test_calc" name="test_add" file="tests/test_calc.py" line="3" time="0.001" /><testcase classname="tests.test_calc" name="test_sub" file="tests/test_calc.py" line="7" time="0.002"><failure message="assert 1 == 2">def test_sub():
&gt;       assert 1 == 2
E       assert 1 == 2</failure></testcase><testcase classname="tests.test_calc" name="test_skip" file="tests/test_calc.py" line="11" time="0.000"><skipped type="pytest.skip" message="not today">tests/test_calc.py:11: not today</skipped></testcase><testcase classname="tests.test_calc" name="test_mul" file="tests/test_calc.py" line="15" time="0.001" /></testsuite></testsuites>
XML
SH2
cat > "$FIX/go.json" <<'GO'
{"Time":"2026-12-02T17:00:00Z","Action":"start","Package":"example.com/m"}
{"Time":"2026-12-02T17:00:00Z","Action":"run","Package":"example.com/m","Test":"TestA"}
{"Time":"2026-12-02T17:00:00Z","Action":"output","Package":"example.com/m","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Time":"2026-12-02T17:00:00Z","Action":"pass","Package":"example.com/m","Test":"TestA","Elapsed":0.01}
{"Time":"2026-12-02T17:00:00Z","Action":"run","Package":"example.com/m","Test":"TestB"}
{"Time":"2026-12-02T17:00:00Z","Action":"skip","Package":"example.com/m","Test":"TestB","Elapsed":0}
{"Time":"2026-12-02T17:00:00Z","Action":"pass","Package":"example.com/m","Elapsed":0.02}
GO
printf '<?xml version="1.0"?><testsuite name="x"><testcase name="a"></testsuite>' > "$FIX/bad.xml"
head -c 4096 /dev/urandom > "$FIX/binary.bin"
printf '\0\1\2' >> "$FIX/binary.bin"
python3 -c "
import sys
print('<testsuite name=\"big\">' + ''.join('<testcase name=\"t%d\"/>' % i for i in range(3000)) + '</testsuite>')" > "$FIX/big.xml"

M=$TRASH/master
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1"), max_builds = 4 }
worker { name = "bbw", password = secret("bbw") }
local function b(name, step, workers)
  builder { name = name, workers = workers or { "w1" }, steps = { step } }
end
b("tap", test { command = "sh $FIX/tap.sh", format = "tap" })
b("pass", test { command = "sh $FIX/pass.sh", format = "auto" })
b("junit", test { command = "sh $FIX/junit.sh", reports = { "reports/junit.xml" } })
b("gotest", test { command = "cat $FIX/go.json", format = "gotest" })
b("both", test { name = "unit", command = "sh $FIX/tap.sh; sh $FIX/junit.sh", format = "tap",
                 reports = { "reports/junit.xml" }, report_format = "junit" })
b("bad", test { command = "cp $FIX/bad.xml r.xml", reports = { "r.xml" } })
b("binary", test { command = "cp $FIX/binary.bin r.out", reports = { "r.out" } })
b("huge", test { command = "cp $FIX/big.xml r.xml", reports = { "r.xml" }, max_report_bytes = 20000 })
b("missing", test { command = "true", reports = { "none.xml" } })
b("rcfail", test { command = "sh $FIX/pass.sh; exit 3", format = "tap" })
b("bb-junit", test { command = "sh $FIX/junit.sh", reports = { "reports/junit.xml" } }, { "bbw" })
b("bb-bad", test { command = "cp $FIX/bad.xml r.xml", reports = { "r.xml" } }, { "bbw" })
b("warns", compile { command = "echo 'a.c:1:1: warning: x [-Wfoo]'; echo 'a.c:2:1: warning: y [-Wbar]'" })
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
printf 'bb-secret-%s' "$$" > "$M/secrets/bbw"
start_master_w1 "$M"

state() { api "builds/$1/steps/${2:-1}" | jpy 'd["steps"][0]["state_string"]'; }
step_results() { api "builds/$1/steps/${2:-1}" | jpy 'd["steps"][0]["results"]'; }
prop() { api "builds/$1/properties" | jpy "d['properties'][0].get('$2')"; }
sets() { api "builds/$1/test_result_sets" | jpy "[(s['description'], s['tests_passed'], s['tests_failed'], s['tests_skipped'], s['complete']) for s in d['test_result_sets']]"; }
results_of() {
    local set; set=$(api "builds/$1/test_result_sets" | jpy "d['test_result_sets'][${2:-0}]['test_result_setid']")
    api "test_result_sets/$set/results?order=test_resultid" | jpy "[(r['test_name'], r['value']) for r in d['test_results']]"
}
number() { api "builders/$1/numbers/$2" | jpy "d['numbers'][0]['value'] if d['numbers'] else None"; }

b=$(force_build tap)
check "TAP on stdout with a failing test: FAILURE" build_results_is "$b" 2
check "state string '4 tests, 1 failed, 1 skipped (failure)' ($(state "$b"))" [ "$(state "$b")" = "4 tests, 1 failed, 1 skipped (failure)" ]
check "one complete set 'stdout' ($(sets "$b"))" [ "$(sets "$b")" = '[["stdout", 2, 1, 1, true]]' ]
r=$(results_of "$b")
check "its results, in order ($r)" [ "$r" = '[["parses", "1"], ["adds", "0"], ["slow", "skipped"], ["prints", "1"]]' ]
check "tests-total property ($(prop "$b" tests-total))" [ "$(prop "$b" tests-total)" = '[4, "Test"]' ]
check "tests-failed property" [ "$(prop "$b" tests-failed)" = '[1, "Test"]' ]
check "tests-passed property" [ "$(prop "$b" tests-passed)" = '[2, "Test"]' ]
check "tests-skipped property" [ "$(prop "$b" tests-skipped)" = '[1, "Test"]' ]
check "number tests_total ($(number tap tests_total))" [ "$(number tap tests_total)" = 4.0 -o "$(number tap tests_total)" = 4 ]
check "number tests_failed" [ "$(number tap tests_failed)" = 1.0 -o "$(number tap tests_failed)" = 1 ]
check "number tests_skipped" [ "$(number tap tests_skipped)" = 1.0 -o "$(number tap tests_skipped)" = 1 ]
check "the stdio log still holds the output" grep -q "building the suite" <<<"$(log_text "$b" 1)"

b=$(force_build pass)
check "passing TAP (format auto) with a skip: SUCCESS" build_results_is "$b" 0
check "state '2 tests, 0 failed, 1 skipped' ($(state "$b"))" [ "$(state "$b")" = "2 tests, 0 failed, 1 skipped" ]

b=$(force_build junit)
check "a pytest JUnit report read from the worker: FAILURE (one failed)" build_results_is "$b" 2
check "its set ($(sets "$b"))" [ "$(sets "$b")" = '[["reports/junit.xml", 2, 1, 1, true]]' ]
r=$(results_of "$b")
check "its results ($r)" [ "$r" = '[["tests.test_calc.test_add", "1"], ["tests.test_calc.test_sub", "0"], ["tests.test_calc.test_skip", "skipped"], ["tests.test_calc.test_mul", "1"]]' ]
check "state ($(state "$b"))" [ "$(state "$b")" = "4 tests, 1 failed, 1 skipped (failure)" ]

b=$(force_build gotest)
check "go test -json replayed: SUCCESS" build_results_is "$b" 0
check "state ($(state "$b"))" [ "$(state "$b")" = "2 tests, 0 failed, 1 skipped" ]

b=$(force_build both)
check "stdout and a report: two sets ($(sets "$b"))" [ "$(sets "$b")" = '[["stdout", 2, 1, 1, true], ["reports/junit.xml", 2, 1, 1, true]]' ]
check "the summary adds them up ($(state "$b"))" [ "$(state "$b")" = "8 tests, 2 failed, 2 skipped (failure)" ]

b=$(force_build bad)
check "a malformed JUnit file: FAILURE" build_results_is "$b" 2
diag "$(log_text "$b" 1 | grep -a "report")"
check "with a message in the log" grep -q "bad test report 'r.xml': " <<<"$(log_text "$b" 1)"
b=$(force_build binary)
check "a binary report: FAILURE" build_results_is "$b" 2
diag "$(log_text "$b" 1 | grep -a "report")"
check "with a message in the log" grep -q "bad test report 'r.out': " <<<"$(log_text "$b" 1)"
b=$(force_build huge)
check "a report over max_report_bytes: FAILURE" build_results_is "$b" 2
check "with a message in the log" grep -q "bad test report 'r.xml': the report is larger than max_report_bytes (20000)" <<<"$(log_text "$b" 1)"
b=$(force_build missing)
check "a missing report: FAILURE" build_results_is "$b" 2
diag "$(log_text "$b" 1 | grep -a "report\|open")"
check "with a message in the log" grep -q "bad test report 'none.xml': the worker could not send the file" <<<"$(log_text "$b" 1)"
b=$(force_build rcfail)
check "passing tests but a failing command: FAILURE" build_results_is "$b" 2
check "the master keeps serving" [ "$(api builders/tap | jpy 'd["builders"][0]["name"]')" = tap ]

b=$(force_build warns)
check "compile records its warnings as a number ($(number warns warnings))" [ "$(number warns warnings)" = 2.0 -o "$(number warns warnings)" = 2 ]

if have_buildbot_worker; then
    W=$TRASH/bbworker
    start_buildbot_worker "$W" bbw "$M/secrets/bbw"
    check "buildbot-worker attaches" wait_for 40 worker_connected bbw
    b=$(force_build bb-junit)
    check "buildbot-worker: the JUnit report is read ($(sets "$b"))" [ "$(sets "$b")" = '[["reports/junit.xml", 2, 1, 1, true]]' ]
    check "buildbot-worker: FAILURE with its summary ($(state "$b"))" [ "$(state "$b")" = "4 tests, 1 failed, 1 skipped (failure)" ]
    b=$(force_build bb-bad)
    check "buildbot-worker: a malformed report is FAILURE" build_results_is "$b" 2
    check "with a message in the log" grep -q "bad test report 'r.xml': " <<<"$(log_text "$b" 1)"
fi

mkdir -p "$TRASH/badcfg"
echo 'local t = test { command = "make check", format = "xunit" }' > "$TRASH/badcfg/master.lua"
out=$("$KILN" checkconfig "$TRASH/badcfg" 2>&1)
check "checkconfig names a bad format ($out)" grep -q "master.lua:1: test: 'format' must be \"auto\", \"tap\", \"junit\" or \"gotest\" (got 'xunit')" <<<"$out"
echo 'local t = test { command = "make check" }' > "$TRASH/badcfg/master.lua"
out=$("$KILN" checkconfig "$TRASH/badcfg" 2>&1)
check "checkconfig wants a source of results ($out)" grep -q "master.lua:1: test: needs 'format'" <<<"$out"
echo 'local t = test { command = "make check", reports = { "../x.xml" } }' > "$TRASH/badcfg/master.lua"
out=$("$KILN" checkconfig "$TRASH/badcfg" 2>&1)
check "checkconfig refuses a report outside the workdir ($out)" grep -q "must not contain '..'" <<<"$out"
done_testing
