#!/bin/bash
# asan-too
# `kiln copy-db FROM TO` (issue 14): a stopped SQLite master holding real
# builds (forced and from a sendchange; logs big enough for compressed
# chunks, TAP test results, properties with quotes and non-ASCII text, an
# uploaded artifact) is copied into a throwaway PostgreSQL (scripts/pg-start)
# and checked; a second copy into it is refused, naming a table with rows,
# and changes nothing; PostgreSQL is copied back into a new SQLite file,
# which Python's sqlite3 finds identical to the original (every table, row
# and column type, the schema and PRAGMA user_version); a master started on
# the copy serves the same builds, properties, test results, changes and
# logs.  Refused too: a running master's BASEDIR, a source not at this
# kiln's schema version, a URL of another kind, missing arguments.
. "$(dirname "$0")/lib.sh"
require_cmd curl psql
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
    skip_all "no PostgreSQL server in /usr/lib/postgresql/*/bin (scripts/install-deps)"

PGDIR=$TRASH/pg # pg_server's (lib.sh), started below

PY=/usr/bin/python3
M=$TRASH/master
W=$TRASH/w1
FIX=$TRASH/fix
mkdir -p "$FIX"
cat > "$FIX/suite.tap" <<'SUITE'
TAP version 13
1..4
ok 1 - parses
ok 2 - adds
ok 3 - network # SKIP no network here
ok 4 - prints ünïcode
SUITE
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
properties = { project_name = "copydb", jobs = 4, big = 9007199254740993 }
worker { name = "w1", password = secret("w1"), properties = { arch = "x86_64" } }
builder { name = "full", workers = { "w1" }, properties = { flavour = "débug" }, steps = {
  shell { name = "noisy", command = "echo 'héllo wörld ✓'; seq 1 40000; echo 'to stderr' >&2" },
  set_property { property = "quoted", value = "it's \"quoted\" \\\\ back\\\\slash\ttab\nnewline; DROP TABLE builds;--" },
  set_property_from_command { command = "echo 41.5", property = "measured" },
  test { name = "tap", command = "cat '$FIX/suite.tap'", format = "tap" },
  test { name = "tapfile", command = "cp '$FIX/suite.tap' r.tap", reports = { "r.tap" }, report_format = "tap" },
  shell { name = "mkbin", command = "head -c 3000 /dev/urandom > a.bin" },
  file_upload { workersrc = "a.bin", masterdest = "a.bin" },
} }
builder { name = "broken", workers = { "w1" }, steps = {
  test { name = "tap", command = "printf '1..2\\\\nok 1 - fine\\\\nnot ok 2 - broken\\\\n'", format = "tap" },
  shell { name = "fails", command = "echo boom; exit 3" },
} }
force_scheduler { name = "force", builders = { "full", "broken" } }
single_branch { name = "main", builders = { "full" }, change_filter = { branch = "main" } }
LUA
printf 'copydb-%s' "$$" > "$M/secrets/w1"
printf 'hook-%s' "$$" > "$M/secrets/hook"
out=$("$KILN" checkconfig "$M" 2>&1); rc=$?
check "master.lua passes checkconfig ($(tr '\n' ' ' <<<"$out"))" [ "$rc" = 0 ]
check "master starts" start_master "$M"
start_worker "$W" w1 "$M/secrets/w1"
check "kiln-worker attaches" wait_for 30 worker_connected w1

br1=$(force full); br2=$(force broken); br3=$(force full)
check "three forced requests ($br1 $br2 $br3)" test -n "$br1" -a -n "$br2" -a -n "$br3"
out=$("$KILN" sendchange --master "$URL" --token "hook-$$" --who "Zoë Dev <zoe@example.org>" \
    --branch main --revision 0123abcd --repository https://example.org/r.git --project demo \
    --comments "Fix the frobnicator's \"edge\" case" --property ticket=KILN-14 src/frob.c "doc/a b.md" 2>&1); rc=$?
check "sendchange: exit 0 ($out)" [ "$rc" = 0 ]
# every build finished: 3 forced + 1 from the change, none still running
all_done() {
    [ "$(api 'builds?limit=100' | jpy 'sum(1 for b in d["builds"] if b["complete"])')" = 4 ] &&
        [ "$(api 'buildrequests?complete=false' | jpy 'd["meta"]["total"]')" = 0 ]
}
check "four builds finish" wait_for 240 all_done
b1=$(build_of_request "$br1"); b2=$(build_of_request "$br2")
check "the full build succeeds (build $b1)" build_results_is "$b1" 0
check "the broken build fails (build $b2)" build_results_is "$b2" 2
check "the change's build ran" [ "$(api 'builds?limit=100' | jpy 'sum(1 for b in d["builds"] if b["buildrequestid"] not in ('"$br1,$br2,$br3"'))')" = 1 ]

# what the original master serves, to compare with a master on the copy
builds_view() { api 'builds?order=buildid&limit=100' | jpy '[[b[k] for k in ("buildid","builderid","number","buildrequestid","results","state_string","started_at","complete_at")] for b in d["builds"]]'; }
changes_view() { api 'changes?order=changeid' | jpy '[[c[k] for k in ("changeid","author","revision","branch","comments","files","properties","when_timestamp")] for c in d["changes"]]'; }
props_view() { api "builds/$b1/properties" | jpy 'd["properties"]'; }
tests_view() { api "builds/$b1/test_result_sets" | jpy '[[s[k] for k in ("test_result_setid","description","tests_passed","tests_failed","tests_skipped")] for s in d["test_result_sets"]]'; }
log_raw() { curl -fsS --max-time 10 "$URL/api/v2/builds/$b1/steps/noisy/logs/stdio/raw"; }
# the first TAP result set's results, with every field
tap_results() {
    local sid
    sid=$(api "builds/$b1/test_result_sets" | jpy 'd["test_result_sets"][0]["test_result_setid"]') &&
        api "test_result_sets/$sid/results" | jpy 'sorted([sorted(r.items()) for r in d["test_results"]], key=str)'
}
api_total() { api "$1" | jpy 'd["meta"]["total"]'; }
builds_view > "$TRASH/builds.orig"
changes_view > "$TRASH/changes.orig"
props_view > "$TRASH/props.orig"
tests_view > "$TRASH/tests.orig"
log_raw > "$TRASH/log.orig"
tap_results > "$TRASH/tap.orig"
NBUILDS=$(api_total builds)
check "the API shows $NBUILDS builds" [ "$NBUILDS" = 4 ]
check "the noisy log is there ($(wc -c < "$TRASH/log.orig") bytes)" \
    sh -c "grep -q 'héllo wörld ✓' '$TRASH/log.orig' && grep -qx 40000 '$TRASH/log.orig'"
check "the build has the quoted property" grep -q 'DROP TABLE builds' "$TRASH/props.orig"
check "the TAP results are there" grep -q 'prints \\u00fcn\\u00efcode' "$TRASH/tap.orig"
check "and two TAP result sets" [ "$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$TRASH/tests.orig")" = 2 ]
check "master stops" stop_pid "$MASTER_PID"
stop_pid "$WORKER_PID"

# ---- the original database, as Python's sqlite3 reads it ------------------
# dump DB: every table but sqlite_*, its rows in the order of all its
# columns, each value with its storage class; PRAGMA user_version; the schema
cat > "$TRASH/dump.py" <<'PY'
import sqlite3, sys, json, hashlib
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
mode = sys.argv[2]
tables = [r[0] for r in db.execute(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")]
if mode == "counts":          # "TABLE: N rows", as copy-db prints them
    for t in tables:
        print("%s: %d rows" % (t, db.execute('SELECT count(*) FROM "%s"' % t).fetchone()[0]))
    sys.exit(0)
print("user_version", db.execute("PRAGMA user_version").fetchone()[0])
for r in db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                    "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name"):
    print("schema", json.dumps(r))
for t in tables:
    ncol = len(db.execute('SELECT * FROM "%s" LIMIT 0' % t).description)
    order = ", ".join(str(i + 1) for i in range(ncol))
    n = 0
    for row in db.execute('SELECT * FROM "%s" ORDER BY %s' % (t, order)):
        n += 1
        vals = []
        for v in row:
            if isinstance(v, bytes):
                vals.append(["blob", v.hex()])
            elif isinstance(v, float):
                vals.append(["real", v.hex()])   # exact, not a rounded decimal
            else:
                vals.append([type(v).__name__, v])
        print("row", t, json.dumps(vals, ensure_ascii=False))
    print("table", t, n)
PY
dump() { $PY "$TRASH/dump.py" "$@"; }
dump "$M/state.sqlite" counts > "$TRASH/counts.orig"
NTABLES=$(wc -l < "$TRASH/counts.orig")
NROWS=$(awk '{ n += $2 } END { print n }' "$TRASH/counts.orig")
diag "the original database: $NROWS rows in $NTABLES tables"
check "the original database holds the $NBUILDS builds" grep -qx "builds: $NBUILDS rows" "$TRASH/counts.orig"
sq() { $PY -c 'import sqlite3,sys; [print("|".join(map(str, r))) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])]' "$@"; }
check "and compressed log chunks (blobs)" [ "$(sq "$M/state.sqlite" 'SELECT count(*) FROM logchunks WHERE compressed = 1')" -gt 0 ]

# ---- a throwaway PostgreSQL (stopped at exit by lib.sh) ---------------------
pg_server
check "psql reaches it" [ "$(pg 'select 1')" = 1 ]

# copy_ok OUT: copy-db's output lists every table of the original with the
# original's count and ends with the line saying the check found them identical
copy_ok() {
    local last n t
    last=$(tail -n 1 <<<"$1")
    [[ $last =~ ^copied\ ([0-9]+)\ rows\ in\ ([0-9]+)\ tables.*\;\ checked\ row\ for\ row:\ identical$ ]] ||
        { diag "last line: $last"; return 1; }
    n=${BASH_REMATCH[1]}; t=${BASH_REMATCH[2]}
    [ "$n" = "$NROWS" ] && [ "$t" = "$NTABLES" ] || { diag "copied $n rows in $t tables, expected $NROWS in $NTABLES"; return 1; }
    diff <(sed '$d' <<<"$1" | grep -E '^[a-z_0-9]+: [0-9]+ rows$' | sort) <(sort "$TRASH/counts.orig") >&2
}

# ---- SQLite (a BASEDIR) -> PostgreSQL ---------------------------------------
out=$("$KILN" copy-db "$M" "$PGURL" 2>&1); rc=$?
diag "$(tail -n 3 <<<"$out" | tr '\n' ' ')"
check "copy-db BASEDIR -> PostgreSQL: exit 0 ($rc)" [ "$rc" = 0 ]
check "it lists every table with its rows and ends 'identical'" copy_ok "$out"
check "psql counts the same $NBUILDS builds" [ "$(pg 'select count(*) from builds')" = "$NBUILDS" ]
check "with the same ids" [ "$(pg 'select string_agg(id::text, $$,$$ order by id) from builds')" = \
    "$($PY -c 'import json,sys; print(",".join(str(b[0]) for b in json.load(open(sys.argv[1]))))' "$TRASH/builds.orig")" ]
check "and the change's author, non-ASCII intact" [ "$(pg 'select author from changes')" = "Zoë Dev <zoe@example.org>" ]

# ---- a second copy into a database holding data: refused, nothing changed ---
before=$(pg 'select count(*) from logchunks')
out=$("$KILN" copy-db "$M" "$PGURL" 2>&1); rc=$?
diag "$out"
check "a second copy-db into it: exit 1 ($rc)" [ "$rc" = 1 ]
check "saying which table holds data" \
    grep -qE '^kiln copy-db: .*already holds data \(table [a-z_0-9]+ has [0-9]+ rows\)' <<<"$out"
tbl=$(sed -nE 's/.*already holds data \(table ([a-z_0-9]+) has ([0-9]+) rows\).*/\1/p' <<<"$out")
n=$(sed -nE 's/.*already holds data \(table ([a-z_0-9]+) has ([0-9]+) rows\).*/\2/p' <<<"$out")
check "and how many rows it has ($tbl: $n)" [ "$(pg "select count(*) from ${tbl:-no_table_named}")" = "$n" ]
check "it did not claim a copy" sh -c "! grep -q identical" <<<"$out"
check "nothing changed in PostgreSQL" sh -c "[ '$(pg 'select count(*) from builds')' = '$NBUILDS' ] && [ '$(pg 'select count(*) from logchunks')' = '$before' ]"

# ---- PostgreSQL -> a new SQLite file ----------------------------------------
out=$("$KILN" copy-db "$PGURL" "sqlite:$TRASH/back.sqlite" 2>&1); rc=$?
diag "$(tail -n 3 <<<"$out" | tr '\n' ' ')"
check "copy-db PostgreSQL -> sqlite:back.sqlite: exit 0 ($rc)" [ "$rc" = 0 ]
check "it lists every table with its rows and ends 'identical'" copy_ok "$out"

# the independent check: Python's sqlite3 on both files
dump "$M/state.sqlite" all > "$TRASH/dump.orig" 2>&1
dump "$TRASH/back.sqlite" all > "$TRASH/dump.back" 2>&1
check "the dump of the original has every table ($(grep -c '^table ' "$TRASH/dump.orig"))" \
    [ "$(grep -c '^table ' "$TRASH/dump.orig")" = "$NTABLES" ]
check "PRAGMA user_version is the same ($(grep '^user_version' "$TRASH/dump.back"))" \
    [ "$(grep '^user_version' "$TRASH/dump.orig")" = "$(grep '^user_version' "$TRASH/dump.back")" ]
check "the same tables, indexes and triggers" \
    diff <(grep '^schema ' "$TRASH/dump.orig") <(grep '^schema ' "$TRASH/dump.back")
check "every table's rows the same, value for value and type for type" \
    diff <(grep -v '^schema \|^user_version' "$TRASH/dump.orig") <(grep -v '^schema \|^user_version' "$TRASH/dump.back")
# (SQLite 3.40's integrity_check reports "NULL value in users_info.userid"
# where there is none, a false positive on WITHOUT ROWID tables: the copy
# must say what the original says)
ic_orig=$(sq "$M/state.sqlite" 'PRAGMA integrity_check')
ic_back=$(sq "$TRASH/back.sqlite" 'PRAGMA integrity_check')
diag "integrity_check: $(tr '\n' ' ' <<<"$ic_back")"
check "the copy is as sound as the original" [ "$ic_back" = "$ic_orig" ]
check "no foreign key is broken" [ -z "$(sq "$TRASH/back.sqlite" 'PRAGMA foreign_key_check')" ]

# ---- PostgreSQL -> a stopped master's BASEDIR (no database yet) -------------
M3=$TRASH/m3
new_master "$M3" < "$M/master.lua"
cp "$M/secrets/"* "$M3/secrets/"
out=$("$KILN" copy-db "$PGURL" "$M3" 2>&1); rc=$?
check "copy-db PostgreSQL -> BASEDIR: exit 0 ($rc: $(tail -n 1 <<<"$out"))" [ "$rc" = 0 ]
check "into its state.sqlite" [ "$(dump "$M3/state.sqlite" counts | grep '^builds:')" = "builds: $NBUILDS rows" ]

# ---- a master on the copy serves the same data ------------------------------
M2=$TRASH/m2
new_master "$M2" < "$M/master.lua"
cp "$M/secrets/"* "$M2/secrets/"
cp "$TRASH/back.sqlite" "$M2/state.sqlite"
check "a master starts on the copy" start_master "$M2"
builds_view > "$TRASH/builds.copy"
changes_view > "$TRASH/changes.copy"
props_view > "$TRASH/props.copy"
tests_view > "$TRASH/tests.copy"
log_raw > "$TRASH/log.copy"
tap_results > "$TRASH/tap.copy"
check "the same builds (ids, numbers, results, times)" diff "$TRASH/builds.orig" "$TRASH/builds.copy"
check "the same changes" diff "$TRASH/changes.orig" "$TRASH/changes.copy"
check "the same properties of build $b1" diff "$TRASH/props.orig" "$TRASH/props.copy"
check "the same test result sets" diff "$TRASH/tests.orig" "$TRASH/tests.copy"
check "the same TAP results" diff "$TRASH/tap.orig" "$TRASH/tap.copy"
check "the same log, byte for byte ($(wc -c < "$TRASH/log.copy") bytes)" cmp "$TRASH/log.orig" "$TRASH/log.copy"

# ---- refusals ---------------------------------------------------------------
out=$("$KILN" copy-db "$M2" "sqlite:$TRASH/x.sqlite" 2>&1); rc=$?
diag "$out"
check "copy-db from a running master's BASEDIR: exit 1 ($rc)" [ "$rc" = 1 ]
check "naming the running master" grep -q "a master is running on '.*m2' (pid $MASTER_PID)" <<<"$out"
out=$("$KILN" copy-db "sqlite:$TRASH/back.sqlite" "$M2" 2>&1); rc=$?
check "copy-db into a running master's BASEDIR: exit 1 ($rc)" [ "$rc" = 1 ]
check "naming the running master" grep -q "a master is running on '.*m2' (pid $MASTER_PID)" <<<"$out"
check "the master keeps serving" [ "$(api_total builds)" = "$NBUILDS" ]
check "master on the copy stops" stop_pid "$MASTER_PID"

# a source one schema version behind: refused, pointing at upgrade-master
cp "$TRASH/back.sqlite" "$TRASH/old.sqlite"
$PY -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); v=c.execute("PRAGMA user_version").fetchone()[0]; c.execute("PRAGMA user_version = %d" % (v-1)); c.commit()' "$TRASH/old.sqlite"
out=$("$KILN" copy-db "sqlite:$TRASH/old.sqlite" "sqlite:$TRASH/new.sqlite" 2>&1); rc=$?
diag "$out"
check "a source at another schema version: exit 1 ($rc)" [ "$rc" = 1 ]
check "telling to run kiln upgrade-master" grep -q '^kiln copy-db: .*upgrade-master' <<<"$out"

out=$("$KILN" copy-db "mysql://db.example.org/kiln" "sqlite:$TRASH/y.sqlite" 2>&1); rc=$?
diag "$out"
check "a mysql:// source: exit 1 or 2 ($rc)" [ "$rc" = 1 -o "$rc" = 2 ]
check "naming it" grep -q "^kiln copy-db: .*mysql://db.example.org/kiln" <<<"$out"
out=$("$KILN" copy-db "sqlite:$TRASH/back.sqlite" "mysql://db.example.org/kiln" 2>&1); rc=$?
check "a mysql:// target: exit 1 or 2 ($rc: $out)" [ "$rc" = 1 -o "$rc" = 2 ]
out=$("$KILN" copy-db "$M" 2>&1); rc=$?
check "one argument: usage error, exit 2 ($rc)" [ "$rc" = 2 ]
check "printing the usage" grep -q 'usage: kiln copy-db FROM TO' <<<"$out"
out=$("$KILN" copy-db 2>&1); rc=$?
check "no argument: usage error, exit 2 ($rc)" [ "$rc" = 2 ]
out=$("$KILN" copy-db --help 2>&1); rc=$?
check "--help: exit 0 ($rc)" [ "$rc" = 0 ]
check "and prints the usage" grep -q 'usage: kiln copy-db FROM TO' <<<"$out"
check "pg-stop stops the server" "$KILN_SRC/scripts/pg-stop" "$PGDIR"
done_testing
