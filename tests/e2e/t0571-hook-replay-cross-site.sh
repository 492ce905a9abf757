#!/bin/bash
# asan-too
# Replayed and cross-site change hook requests change nothing: a signed
# GitHub, Gitea or GitLab delivery sent a second time (same delivery id, or
# the same signed body under a new id) is refused with 409; a new delivery
# still works.  A form posted to the open base hook (no token) from another
# site (Origin of another host, Origin "null", Sec-Fetch-Site: cross-site)
# is refused with 403 and stores nothing; a same-origin post and a post
# without browser headers (curl, VCS scripts) are accepted.
. "$(dirname "$0")/lib.sh"

M=$TRASH/master
new_master "$M" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = {
  github = { secret = secret("gh") },
  gitlab = { token = secret("gl") },
  gitea = { secret = secret("gitea") },
}
LUA
printf 'gh-secret' > "$M/secrets/gh"
printf 'gl-token' > "$M/secrets/gl"
printf 'gitea-secret' > "$M/secrets/gitea"
check "master starts" start_master "$M"

code() { curl -s -o "$TRASH/body" -w '%{http_code}' --max-time 10 "$@"; }
total() { db_sql "$M" "SELECT count(*) FROM changes"; }
hmac() { /usr/bin/python3 -c 'import hmac,hashlib,sys; print(hmac.new(sys.argv[1].encode(), open(sys.argv[2],"rb").read(), hashlib.sha256).hexdigest())' "$1" "$2"; }
push() { # FILE REVISION: a one-commit push payload
    printf '{"ref":"refs/heads/main","after":"%s","repository":{"html_url":"https://example.org/r","full_name":"o/r"},"commits":[{"id":"%s","message":"m","author":{"name":"Ann","email":"ann@example.org"}}]}' "$2" "$2" > "$1"
}

# --- GitHub -------------------------------------------------------------------------
push "$TRASH/gh1.json" 1111111111111111111111111111111111111111
SIG=sha256=$(hmac gh-secret "$TRASH/gh1.json")
gh() { # DELIVERY FILE SIG
    code -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: $1" \
        -H "X-Hub-Signature-256: $3" --data-binary "@$2" "$URL/change_hook/github"
}
check "github delivery: 200" [ "$(gh 72d3162e-cc78-11e3-81ab-4c9367dc0958 "$TRASH/gh1.json" "$SIG")" = 200 ]
check "one change" [ "$(total)" = 1 ]
check "the same delivery again: 409" [ "$(gh 72d3162e-cc78-11e3-81ab-4c9367dc0958 "$TRASH/gh1.json" "$SIG")" = 409 ]
check "the answer says why" grep -q "duplicate delivery" "$TRASH/body"
check "the same signed body under a new delivery id: 409" [ "$(gh 00000000-0000-0000-0000-000000000001 "$TRASH/gh1.json" "$SIG")" = 409 ]
check "the same signed body without a delivery id: 409" [ "$(code -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' -H "X-Hub-Signature-256: $SIG" --data-binary "@$TRASH/gh1.json" "$URL/change_hook/github")" = 409 ]
check "replays stored nothing" [ "$(total)" = 1 ]
check "the repeat is logged" grep -q "already processed was sent again" "$M/master.log"
push "$TRASH/gh2.json" 2222222222222222222222222222222222222222
check "a new delivery: 200" [ "$(gh 72d3162e-cc78-11e3-81ab-4c9367dc0959 "$TRASH/gh2.json" "sha256=$(hmac gh-secret "$TRASH/gh2.json")")" = 200 ]
push "$TRASH/gh3.json" 3333333333333333333333333333333333333333
check "a new body under a delivery id already seen: 409" [ "$(gh 72d3162e-cc78-11e3-81ab-4c9367dc0959 "$TRASH/gh3.json" "sha256=$(hmac gh-secret "$TRASH/gh3.json")")" = 409 ]
check "two changes" [ "$(total)" = 2 ]

# --- Gitea ---------------------------------------------------------------------------
push "$TRASH/gt.json" 4444444444444444444444444444444444444444
GSIG=$(hmac gitea-secret "$TRASH/gt.json")
gitea() { code -H 'Content-Type: application/json' -H 'X-Gitea-Event: push' -H "X-Gitea-Delivery: $1" \
    -H "X-Gitea-Signature: $GSIG" --data-binary "@$TRASH/gt.json" "$URL/change_hook/gitea"; }
check "gitea delivery: 200" [ "$(gitea f6266f16-1bf3-46a5-9ea4-602e06ead473)" = 200 ]
check "gitea replay: 409" [ "$(gitea f6266f16-1bf3-46a5-9ea4-602e06ead473)" = 409 ]
check "three changes" [ "$(total)" = 3 ]

# --- GitLab --------------------------------------------------------------------------
cat > "$TRASH/gl.json" <<'JSON'
{"object_kind":"push","ref":"refs/heads/main","after":"5555555555555555555555555555555555555555",
 "project":{"git_http_url":"https://example.org/r.git","path_with_namespace":"o/r"},
 "commits":[{"id":"5555555555555555555555555555555555555555","message":"m","author":{"name":"Bo","email":"bo@example.org"}}]}
JSON
gitlab() { code -H 'Content-Type: application/json' -H 'X-Gitlab-Event: Push Hook' -H 'X-Gitlab-Token: gl-token' \
    -H "X-Gitlab-Webhook-UUID: $1" -H "X-Gitlab-Event-UUID: $1" --data-binary "@$TRASH/gl.json" "$URL/change_hook/gitlab"; }
check "gitlab delivery: 200" [ "$(gitlab 13792a34-cac6-4fda-95a8-c58e00a3954e)" = 200 ]
check "gitlab replay: 409" [ "$(gitlab 13792a34-cac6-4fda-95a8-c58e00a3954e)" = 409 ]
check "four changes" [ "$(total)" = 4 ]
check "a forged signature is still 403, not 409" [ "$(gh 72d3162e-cc78-11e3-81ab-4c9367dc0958 "$TRASH/gh1.json" sha256=0000000000000000000000000000000000000000000000000000000000000000)" = 403 ]

# --- the open base hook and cross-site forms -----------------------------------------
M2=$TRASH/open
new_master "$M2" <<'LUA'
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
change_hook = { }
LUA
check "open master starts" start_master "$M2"
M=$M2
FORM='author=Mallory&comments=pwned&branch=main&revision=6666'
HOSTPORT=${URL#http://}
check "a cross-site form (Origin of another site): 403" [ "$(code -H 'Origin: https://evil.example' -d "$FORM" "$URL/change_hook/base")" = 403 ]
check "the answer says why" grep -q "cross-site" "$TRASH/body"
check "Origin null: 403" [ "$(code -H 'Origin: null' -d "$FORM" "$URL/change_hook/base")" = 403 ]
check "Sec-Fetch-Site: cross-site: 403" [ "$(code -H 'Sec-Fetch-Site: cross-site' -d "$FORM" "$URL/change_hook/base")" = 403 ]
check "a text/plain cross-site post: 403" [ "$(code -H 'Origin: https://evil.example' -H 'Content-Type: text/plain' -d '{"author":"m"}' "$URL/change_hook/base")" = 403 ]
check "Origin of the same host but another port: 403" [ "$(code -H "Origin: http://${HOSTPORT%:*}:1" -d "$FORM" "$URL/change_hook/base")" = 403 ]
check "nothing stored" [ "$(total)" = 0 ]
check "a same-origin form: 200" [ "$(code -H "Origin: http://$HOSTPORT" -H 'Sec-Fetch-Site: same-origin' -d "$FORM" "$URL/change_hook/base")" = 200 ]
check "a post without browser headers: 200" [ "$(code -d "author=ann&revision=7777" "$URL/change_hook/base")" = 200 ]
check "two changes" [ "$(total)" = 2 ]
done_testing
