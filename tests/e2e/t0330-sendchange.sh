#!/bin/bash
# asan-too
# `kiln sendchange` against a real master (token from --token or
# KILN_TOKEN, properties, --logfile, files), and contrib/git/post-receive
# installed in a real bare repository: a push of two commits and a new
# branch becomes one change per commit with author, branch and files.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { token = secret("hook") }
LUA
printf 'sekrit' > "$M/secrets/hook"
check "master starts" start_master "$M"
unset KILN_TOKEN KILN_URL
export KILN_CLIENT_CONF=$TRASH/none.conf

out=$("$KILN" sendchange --master "$URL" --who "Ann <ann@example.org>" a.c 2>&1); rc=$?
check "without a token: exit 1 ($rc)" [ "$rc" = 1 ]
check "without a token: says why" sh -c "echo '$out' | grep -q 'Authorization'"
check "nothing stored" [ "$(api changes | jpy 'd["meta"]["total"]')" = 0 ]
check "--who is required (exit 2)" sh -c "'$KILN' sendchange --master '$URL' a.c 2>/dev/null; [ \$? = 2 ]"

printf 'Fix the frobnicator\n\nLonger text.\n' > "$TRASH/msg"
out=$("$KILN" sendchange --master "${URL#http://}" --token sekrit --who "Ann Dev <ann@example.org>" \
    --branch dev --revision 0123abcd --repository https://example.org/r.git --project demo \
    --category push --property ticket=KILN-42 --property count=3 --property 'flags=["a","b"]' \
    --when 1700000000 --logfile "$TRASH/msg" --vc git src/frob.c "include/frob h.h" 2>&1); rc=$?
check "sendchange: exit 0 ($out)" [ "$rc" = 0 ]
check "sendchange: prints the master's answer" [ "$out" = "change sent: 1 change found" ]
api changes/1 > "$TRASH/c1.json"
check "sendchange: the stored change" /usr/bin/python3 - "$TRASH/c1.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["changes"][0]
assert c["author"] == "Ann Dev <ann@example.org>", c
assert c["files"] == ["src/frob.c", "include/frob h.h"], c
assert c["comments"] == "Fix the frobnicator\n\nLonger text.\n", c
assert c["branch"] == "dev" and c["revision"] == "0123abcd" and c["project"] == "demo", c
assert c["category"] == "push" and c["when_timestamp"] == 1700000000, c
assert c["properties"] == {"ticket": ["KILN-42", "Change"], "count": [3, "Change"], "flags": [["a", "b"], "Change"]}, c
PY
check "KILN_TOKEN works too" sh -c "KILN_TOKEN=sekrit '$KILN' sendchange --master '$URL' --who bob >/dev/null"

# contrib/git/post-receive in a real bare repository
export GIT_CONFIG_NOSYSTEM=1 HOME=$TRASH
git config --global init.defaultBranch main
git init -q --bare "$TRASH/origin.git"
cp "$KILN_SRC/contrib/git/post-receive" "$TRASH/origin.git/hooks/post-receive"
git -C "$TRASH/origin.git" config kiln.master "$URL"
git -C "$TRASH/origin.git" config kiln.token sekrit
git -C "$TRASH/origin.git" config kiln.repository https://git.example.org/origin.git
git -C "$TRASH/origin.git" config kiln.project origin
git -C "$TRASH/origin.git" config kiln.kiln "$KILN"
git clone -q "$TRASH/origin.git" "$TRASH/clone" 2>/dev/null
cd "$TRASH/clone"
export GIT_AUTHOR_NAME="Cy Coder" GIT_AUTHOR_EMAIL=cy@example.org GIT_COMMITTER_NAME="Cy Coder" GIT_COMMITTER_EMAIL=cy@example.org
echo a > a.txt && mkdir -p "dir with space" && echo b > "dir with space/b.txt"
git add -A && git commit -qm "first commit"
echo c >> a.txt && git commit -qam "second commit"
check "push main" sh -c "git push -q origin main 2>'$TRASH/push.err'"
git checkout -qb topic && echo t > t.txt && git add t.txt && git commit -qm "topic commit"
check "push a new branch" sh -c "git push -q origin topic 2>>'$TRASH/push.err'"
cd "$TRASH"
api "changes?project=origin&order=changeid" > "$TRASH/hook.json"
check "post-receive: one change per commit, with branch, author and files" /usr/bin/python3 - "$TRASH/hook.json" <<'PY'
import json, sys
cs = json.load(open(sys.argv[1]))["changes"]
assert [c["comments"] for c in cs] == ["first commit\n\n", "second commit\n\n", "topic commit\n\n"] or \
       [c["comments"].strip() for c in cs] == ["first commit", "second commit", "topic commit"], cs
assert [c["branch"] for c in cs] == ["main", "main", "topic"], cs
assert all(c["author"] == "Cy Coder <cy@example.org>" for c in cs), cs
assert sorted(cs[0]["files"]) == ["a.txt", "dir with space/b.txt"], cs[0]
assert cs[1]["files"] == ["a.txt"] and cs[2]["files"] == ["t.txt"], cs
assert cs[0]["repository"] == "https://git.example.org/origin.git", cs[0]
assert all(len(c["revision"]) == 40 for c in cs), cs
PY
check "the push printed no error" sh -c "! grep -q 'could not send' '$TRASH/push.err'"
check "master stops cleanly" stop_pid "$MASTER_PID"
done_testing
