#!/bin/bash
# The config side of hg { }, svn { }, bzr { }, darcs { } and cvs { }: kiln
# checkconfig accepts each with its own keys and refuses, with master.lua's
# line and a message naming the key, what the VCS does not have.
. "$(dirname "$0")/lib.sh"

D=$TRASH/m
mkdir -p "$D/secrets"; printf 'pw' > "$D/secrets/w1"; printf 'sv' > "$D/secrets/svnpw"
cc() { # cc STEP...: checkconfig of a builder with these steps; prints its output
    cat > "$D/master.lua" <<LUA
worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = {
$1
} }
LUA
    "$KILN" checkconfig "$D" 2>&1
}
accepts() { local out; out=$(cc "$1") || { diag "$out"; return 1; }; }
refuses() { local out; out=$(cc "$1") && return 1; grep -q "$2" <<<"$out" || { diag "$out"; return 1; }; }

check "hg with branch_type inrepo" accepts 'hg { repourl = "/r", branch_type = "inrepo", clobber_on_branch_change = false }'
check "hg has no method copy" refuses 'hg { repourl = "/r", mode = "full", method = "copy" }' "master.lua:3: .*hg has no method 'copy'"
check "hg: a bad branch_type" refuses 'hg { repourl = "/r", branch_type = "named" }' "'branch_type' must be one of \"dirname\", \"inrepo\""
check "svn with auth and extra_args" accepts 'svn { repourl = "/r/%%BRANCH%%", username = "u", password = secret("svnpw"), extra_args = { "--trust-server-cert" } }'
check "svn: extra_args must be strings" refuses 'svn { repourl = "/r", extra_args = { {} } }' "extra_args"
check "svn: at most 16 extra_args" refuses 'svn { repourl = "/r", extra_args = { "a","a","a","a","a","a","a","a","a","a","a","a","a","a","a","a","a" } }' "at most 16 'extra_args'"
check "svn: a shallow key is not svn's" refuses 'svn { repourl = "/r", shallow = true }' "shallow"
check "bzr with base_url" accepts 'bzr { base_url = "/r", branch = "trunk" }'
check "bzr: repourl and base_url exclude each other" refuses 'bzr { repourl = "/r", base_url = "/b" }' "exclude each other"
check "bzr: one of them is required" refuses 'bzr { branch = "trunk" }' "'repourl' is required"
check "darcs mode full (copy)" accepts 'darcs { repourl = "/r", mode = "full" }'
check "darcs has no method fresh" refuses 'darcs { repourl = "/r", mode = "full", method = "fresh" }' "darcs has no method 'fresh'"
check "cvs with cvsroot and cvsmodule" accepts 'cvs { cvsroot = ":pserver:a@h:/c", cvsmodule = "proj", mode = "full", method = "copy" }'
check "cvs needs cvsmodule" refuses 'cvs { cvsroot = "/c" }' "'cvsmodule' is required"
check "cvs needs cvsroot" refuses 'cvs { cvsmodule = "proj" }' "'cvsroot' is required"
check "cvs takes no repourl" refuses 'cvs { repourl = "/c", cvsmodule = "p" }' "not 'repourl'"
check "cvs has no method clean" refuses 'cvs { cvsroot = "/c", cvsmodule = "p", mode = "full", method = "clean" }' "cvs has no method 'clean'"
check "method needs mode full" refuses 'svn { repourl = "/r", method = "clobber" }' "applies to mode = \"full\" only"
done_testing
