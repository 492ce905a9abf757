#!/bin/bash
# asan-too
# One force call cannot make the master queue or store much: a builder named
# 5,000 times is built once, the reason, owner and properties are capped
# (count, name and value size, total, nesting), and a wrong-typed field is a
# 400 naming it.  Refused calls store nothing: the database does not grow.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }
builder { name = "other", workers = { "w1" }, steps = { shell { command = "true" } } }
force_scheduler { name = "f", builders = { "b" } }
LUA
printf 'secret-%s' "$$" > "$M/secrets/w1"
check "master starts" start_master "$M"

# post PARAMS-FILE: prints "STATUS BODY" for a force call whose params are in the file
post() {
    { printf '{"jsonrpc":"2.0","id":1,"method":"force","params":'; cat "$1"; printf '}'; } > "$TRASH/req"
    curl -sS --max-time 30 -o "$TRASH/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary @"$TRASH/req" "$URL/api/v2/forceschedulers/f"
    printf ' %s' "$(head -c 2000 "$TRASH/body")"
}
gen() { /usr/bin/python3 -c "import json; print(json.dumps($1))" > "$TRASH/params"; }
nbuildsets() { api buildsets | jpy 'd["meta"]["total"]'; }
# refused PY-PARAMS FIELD: 400, -32602, the message names FIELD, no new buildset
refused() {
    before=$(nbuildsets)
    gen "$1"
    out=$(post "$TRASH/params")
    [ "${out%% *}" = 400 ] || { diag "answer: ${out:0:300}"; return 1; }
    [ "$(jpy 'd["error"]["code"]' <<<"${out#* }")" = -32602 ] || { diag "${out:0:300}"; return 1; }
    grep -q -- "$2" <<<"$(jpy 'd["error"]["message"]' <<<"${out#* }")" || { diag "${out:0:300}"; return 1; }
    [ "$(nbuildsets)" = "$before" ]
}

gen '{"builderNames": ["b"] * 5000}'
out=$(post "$TRASH/params")
check "a builder named 5,000 times is accepted (${out:0:80})" [ "${out%% *}" = 200 ]
bs=$(jpy 'd["result"][0]' <<<"${out#* }")
check "and queues one request" [ "$(api "buildrequests?buildsetid=$bs" | jpy 'd["meta"]["total"]')" = 1 ]
check "a builder the scheduler does not own is refused" [ "$(gen '{"builderNames": ["b", "other"]}'; post "$TRASH/params" | cut -d' ' -f1)" = 500 ]
check "so is a name that is not a string" refused '{"builderNames": ["b", 7]}' "'builderNames'"
check "and a list of 10,001 names" refused '{"builderNames": ["b"] * 10001}' "'builderNames'"
check "and a builderid of the wrong type" refused '{"builderid": [1]}' "'builderid'"

db_bytes() { du -cb "$M"/*.sqlite* 2>/dev/null | tail -n 1 | cut -f1; }
db_before=$(db_bytes)
for i in 1 2 3 4 5; do
    check "a 900 KB reason is refused ($i)" refused '{"reason": "x" * 900000}' "'reason'"
done
api buildsets >/dev/null  # a later loop turn: any write of the refused calls is committed
db_after=$(db_bytes)
diag "database bytes before $db_before, after $db_after"
check "the database did not grow by the reasons" [ $((db_after - db_before)) -lt 1000000 ]
check "a 300-byte username is refused" refused '{"username": "u" * 300}' "'username'"
check "a reason of the wrong type is refused" refused '{"reason": 5}' "'reason'"
check "a priority of 2^40 is refused" refused '{"priority": 2**40}' "'priority'"
check "a priority of the wrong type is refused" refused '{"priority": [1]}' "'priority'"

check "65 properties are refused" refused '{("p%d" % i): i for i in range(65)}' "properties"
check "a 20 KB property value is refused" refused '{"big": "v" * 20000}' "'big'"
check "properties over 64 KiB in total are refused" refused '{("p%d" % i): "v" * 15000 for i in range(5)}' "in total"
check "a 200-byte property name is refused" refused '{"n" * 200: 1}' "property name"
check "a property nested 100 deep is refused" refused '{"deep": json.loads("[" * 100 + "]" * 100)}' "'deep'"
check "a property nested 9 deep is refused" refused '{"deep": json.loads("[" * 9 + "]" * 9)}' "'deep'"
gen '{"shallow": {"a": [1, {"b": [2]}]}, "n": 3}'
out=$(post "$TRASH/params")
check "properties within the caps are accepted (${out:0:80})" [ "${out%% *}" = 200 ]
bs=$(jpy 'd["result"][0]' <<<"${out#* }")
check "and stored whole" [ "$(api "buildsets/$bs/properties" | jpy 'd["properties"][0]["shallow"][0]')" = '{"a": [1, {"b": [2]}]}' ]

done_testing
