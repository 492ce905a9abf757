#!/bin/bash
# `meson install --destdir`: the exact list of files installed (binaries,
# systemd units, man pages, bash completion); the installed binaries run;
# the units pass `systemd-analyze verify`; the man pages have no groff
# warnings and stay true to --help and docs/CONFIG.md (every verb, every
# worker option, every setting and declaration); the completion answers in
# bash with the verbs and options the binaries' --help give.
. "$(dirname "$0")/lib.sh"
require_cmd meson

ROOT=$TRASH/root
PREFIX=$(meson introspect --buildoptions "$KILN_BUILD" |
    python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
UNITDIR=$(meson introspect --buildoptions "$KILN_BUILD" |
    python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="systemdsystemunitdir"][0])')
meson install -C "$KILN_BUILD" --destdir "$ROOT" --quiet > "$TRASH/install.log" 2>&1
rc=$?
check "meson install --destdir exits 0 (got $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || sed 's/^/# /' "$TRASH/install.log" | tail -n 20

# the units' directory: the build's option, else pkg-config systemd under the prefix
if [ -z "$UNITDIR" ]; then
    if pkg-config --exists systemd; then
        rp=$PREFIX; [ "$PREFIX" = /usr ] && rp=
        UNITDIR=$(pkg-config --define-variable=root_prefix="$rp" --variable=systemdsystemunitdir systemd)
    else
        UNITDIR=$PREFIX/lib/systemd/system
    fi
fi
COMPDIR=$(pkg-config --define-variable=datadir="$PREFIX/share" --variable=completionsdir bash-completion 2>/dev/null ||
    echo "$PREFIX/share/bash-completion/completions")
diag "prefix $PREFIX, units in $UNITDIR, completion in $COMPDIR"
sort > "$TRASH/want" <<LIST
$PREFIX/bin/kiln
$PREFIX/bin/kiln-worker
$PREFIX/share/man/man1/kiln-worker.1
$PREFIX/share/man/man1/kiln.1
$PREFIX/share/man/man5/master.lua.5
$UNITDIR/kiln-master@.service
$UNITDIR/kiln-worker@.service
$COMPDIR/kiln
$COMPDIR/kiln-worker
LIST
(cd "$ROOT" && find . -type f -o -type l) | sed 's/^\.//' | sort > "$TRASH/got"
check "the installed files are exactly the expected ones" cmp -s "$TRASH/want" "$TRASH/got"
cmp -s "$TRASH/want" "$TRASH/got" || diff "$TRASH/want" "$TRASH/got" | sed 's/^/# /'
check "the worker's completion is a link to kiln's" [ "$(readlink "$ROOT$COMPDIR/kiln-worker")" = kiln ]

IK=$ROOT$PREFIX/bin/kiln
IW=$ROOT$PREFIX/bin/kiln-worker
check "the installed kiln runs" sh -c '"$1" --version | grep -q "^kiln [0-9]"' _ "$IK"
check "the installed kiln-worker runs" sh -c '"$1" --version | grep -qi "[0-9]"' _ "$IW"

# ---- systemd units
MU=$ROOT$UNITDIR/kiln-master@.service
WU=$ROOT$UNITDIR/kiln-worker@.service
check "the master unit starts the installed kiln" grep -qxF "ExecStart=$PREFIX/bin/kiln start --timeout 90 /var/lib/kiln/%i" "$MU"
check "the worker unit starts the installed kiln-worker" grep -qxF "ExecStart=$PREFIX/bin/kiln-worker start /var/lib/kiln-worker/%i" "$WU"
check "reload sends SIGHUP" grep -qxF 'ExecReload=/bin/kill -HUP $MAINPID' "$MU"
check "the master writes only its base directory" sh -c 'grep -qx "ProtectSystem=strict" "$1" && grep -qx "ReadWritePaths=/var/lib/kiln/%i" "$1" && grep -qx "User=kiln" "$1"' _ "$MU"
check "the stop grace is kiln stop's (60 s)" grep -qx 'TimeoutStopSec=60' "$MU"
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify needs the programs where ExecStart says: point it into ROOT
    mkdir -p "$TRASH/units"
    for u in "$MU" "$WU"; do
        sed "s|^ExecStart=$PREFIX/|ExecStart=$ROOT$PREFIX/|" "$u" > "$TRASH/units/$(basename "$u")"
    done
    for u in kiln-master@main.service kiln-worker@w1.service; do
        t=${u%%@*}@.service
        cp "$TRASH/units/$t" "$TRASH/units/$u"
        out=$(cd "$TRASH/units" && MANPATH=$ROOT$PREFIX/share/man systemd-analyze verify "./$u" 2>&1)
        rc=$?
        check "systemd-analyze verify $u (status $rc)" [ "$rc" = 0 ] && [ -z "$out" ]
        [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/# /'
    done
    # a verify that can fail: a missing program is reported
    sed 's|^ExecStart=[^ ]*|ExecStart=/nonexistent/kiln|' "$TRASH/units/kiln-master@.service" > "$TRASH/units/bad@x.service"
    check "... and it does fail on a broken unit" sh -c 'cd "$1" && ! systemd-analyze verify --man=no ./bad@x.service >/dev/null 2>&1' _ "$TRASH/units"
else
    ok "# SKIP systemd-analyze is not installed (apt-get install systemd): units not verified"
fi

# ---- man pages
for m in man1/kiln.1 man1/kiln-worker.1 man5/master.lua.5; do
    f=$ROOT$PREFIX/share/man/$m
    w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$f" 2>&1 >/dev/null)
    check "man --warnings -l $m: no warnings" [ -z "$w" ]
    [ -z "$w" ] || printf '%s\n' "$w" | sed 's/^/# /' | head -n 10
done
K1=$ROOT$PREFIX/share/man/man1/kiln.1
missing=""
for v in $("$IK" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}'); do
    grep -qF ".BR \"$(printf '%s' "$v" | sed 's/-/\\-/g')\"" "$K1" || missing="$missing $v"
done
check "kiln(1) describes every verb of kiln --help${missing:+ (missing:$missing)}" [ -z "$missing" ]
W1=$ROOT$PREFIX/share/man/man1/kiln-worker.1
missing=""
for o in $({ "$IW" --help; for v in create start stop restart; do "$IW" "$v" --help; done; } 2>&1 |
    grep -oE -- '--[a-z][a-z-]*' | sort -u); do
    grep -qF -- "$(printf '%s' "$o" | sed 's/-/\\-/g')" "$W1" || missing="$missing $o"
done
check "kiln-worker(1) names every option of kiln-worker's --help${missing:+ (missing:$missing)}" [ -z "$missing" ]
M5=$ROOT$PREFIX/share/man/man5/master.lua.5
CONF=$KILN_SRC/docs/CONFIG.md
keys=$(sed -n '/^## Settings/,/^`HOST:PORT`/p' "$CONF" | grep -oE '^\| `[a-z_]+`' | tr -d '|` ')
decls=$(grep -E '^#+ ' "$CONF" | grep -oE '`[a-z_]+( = )?( \{ \.\.\. \})?`|`[a-z_]+\("NAME"\)`' | tr -d '`' |
    sed -E 's/[ ={(].*//' | sort -u)
check "docs/CONFIG.md's settings were found" [ "$(printf '%s\n' $keys | wc -l)" -ge 10 ]
missing=""
for k in $keys $decls; do
    grep -qE "^\.(B|BR|BI) \"?$k([ \"(]|$)|^\.B(R)? .*\b$k\b" "$M5" || missing="$missing $k"
done
check "master.lua(5) names every setting and declaration of docs/CONFIG.md${missing:+ (missing:$missing)}" [ -z "$missing" ]

# ---- bash completion, run in bash with the installed binaries
comp() { # PROGRAM-PATH FUNCTION WORD...: the completions of the last word
    bash -c '. "$1"; f=$2; shift 2; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); $f; printf "%s\n" "${COMPREPLY[@]}"' \
        _ "$ROOT$COMPDIR/kiln" "$@" | sort | tr '\n' ' '
}
check "kiln up<TAB> gives upgrade-master" [ "$(comp _kiln "$IK" up)" = "upgrade-master " ]
check "kiln sta<TAB> gives start and status" [ "$(comp _kiln "$IK" sta)" = "start status " ]
check "kiln stop --c<TAB> gives --clean" [ "$(comp _kiln "$IK" stop --c)" = "--clean " ]
check "kiln force --pr<TAB> gives --property" [ "$(comp _kiln "$IK" force --pr)" = "--property " ]
check "kiln-worker st<TAB> gives start and stop" [ "$(comp _kiln_worker "$IW" st)" = "start stop " ]
check "kiln-worker create --pass<TAB> gives both password options" [ "$(comp _kiln_worker "$IW" create --pass)" = "--password --password-file " ]
check "kiln-worker start --d<TAB> gives --daemon" [ "$(comp _kiln_worker "$IW" start --d)" = "--daemon " ]
check "the completion registers both programs" bash -c '. "$1"; complete -p kiln >/dev/null && complete -p kiln-worker >/dev/null' _ "$ROOT$COMPDIR/kiln"
done_testing
