#!/bin/bash
# The Debian package: built from a copy of the tree with `dpkg-buildpackage
# -us -uc -b` (offline; the web UI bundled from www/node_modules), then
# installed with `dpkg -i` (binaries run, man pages, units, completion, the
# system users and their state directories; nothing enabled or started),
# used (the kiln user creates and checks a master), and removed with
# `dpkg --purge`.  Needs root (it installs a package): skipped otherwise.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip_all "not root: dpkg -i needs root (CI runs this as root)"
require_cmd dpkg-buildpackage dh dpkg-deb dh_installsystemd adduser
[ -x "$KILN_SRC/www/node_modules/.bin/esbuild" ] ||
    skip_all "www/node_modules is missing (scripts/install-deps): the package bundles the web UI"
if dpkg-query -W -f='${Status}' kiln 2>/dev/null | grep -q installed || [ -e /usr/bin/kiln ]; then
    skip_all "a kiln is already installed here (dpkg -s kiln, /usr/bin/kiln): not replacing it"
fi

INSTALLED=""
deb_cleanup() {
    [ -n "$INSTALLED" ] && dpkg --purge kiln >/dev/null 2>&1
    e2e_cleanup
}
trap deb_cleanup EXIT

# a copy of the tree: what git knows (tracked and new files), node_modules linked
SRC=$TRASH/kiln-0.1.0
mkdir -p "$SRC"
if git -C "$KILN_SRC" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$KILN_SRC" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 cp --parents -t "$SRC" 2>/dev/null)
else
    (cd "$KILN_SRC" && tar --exclude='./build*' --exclude=./www/node_modules --exclude='./obj-*' -cf - .) |
        tar -C "$SRC" -xf -
fi
ln -s "$KILN_SRC/www/node_modules" "$SRC/www/node_modules"
check "the copy has debian/rules" test -x "$SRC/debian/rules"

t0=$(date +%s)
(cd "$SRC" && DEB_BUILD_OPTIONS="nocheck noautodbgsym parallel=$(nproc)" timeout 480 \
    dpkg-buildpackage -us -uc -b) > "$TRASH/build.log" 2>&1
rc=$?
t1=$(date +%s)
diag "dpkg-buildpackage took $((t1 - t0)) s (bounded at 480 s: scripts/check gives a test 600 s)"
check "dpkg-buildpackage -us -uc -b exits 0 (got $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -n 30 "$TRASH/build.log" | sed 's/^/# /'
DEB=$(ls "$TRASH"/kiln_*_*.deb 2>/dev/null | head -n 1)
check "it made kiln_VERSION_ARCH.deb" [ -n "$DEB" ]
[ -n "$DEB" ] || { done_testing; exit 1; }
check "the web UI was bundled (esbuild ran)" grep -q 'esbuild.*--bundle' "$TRASH/build.log"
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' > "$TRASH/contents"
for f in /usr/bin/kiln /usr/bin/kiln-worker /lib/systemd/system/kiln-master@.service \
    /lib/systemd/system/kiln-worker@.service /usr/share/man/man1/kiln.1.gz \
    /usr/share/man/man1/kiln-worker.1.gz /usr/share/man/man5/master.lua.5.gz \
    /usr/share/bash-completion/completions/kiln /usr/share/bash-completion/completions/kiln-worker; do
    check "the package holds $f" grep -qxF "$f" "$TRASH/contents"
done
check "it depends on adduser and libcurl4 (dlopened)" sh -c 'dpkg-deb -f "$1" Depends | grep -q adduser && dpkg-deb -f "$1" Depends | grep -q libcurl4' _ "$DEB"
check "and on libwebsockets' libuv plugin (dlopened)" sh -c 'dpkg-deb -f "$1" Depends | grep -q libwebsockets-evlib-uv' _ "$DEB"

if command -v lintian >/dev/null 2>&1; then
    CH=$(ls "$TRASH"/kiln_*.changes | head -n 1)
    timeout 600 lintian --fail-on error --tag-display-limit 0 "$CH" > "$TRASH/lintian.out" 2>&1
    rc=$?
    check "lintian finds no error (status $rc)" [ "$rc" = 0 ]
    grep -E '^[EWI]: ' "$TRASH/lintian.out" | sed 's/^/# lintian: /' | head -n 20
else
    ok "# SKIP lintian is not installed (scripts/install-deps): package not linted"
fi

had_varlib=""
[ -d /var/lib/kiln ] && had_varlib=1
DEBIAN_FRONTEND=noninteractive dpkg -i "$DEB" > "$TRASH/install.log" 2>&1
rc=$?
INSTALLED=1
check "dpkg -i exits 0 (got $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -n 20 "$TRASH/install.log" | sed 's/^/# /'
VERSION=$("$KILN" --version)
check "the installed kiln runs: $VERSION" [ "$(/usr/bin/kiln --version)" = "$VERSION" ]
check "the installed kiln-worker runs" sh -c '/usr/bin/kiln-worker --version | grep -q "[0-9]"'
check "the installed kiln has the web UI" sh -c 'grep -q "kiln is built without its web UI" "$1"; [ $? = 1 ]' _ "$TRASH/build.log"
check "man finds kiln(1)" sh -c "man -w 1 kiln >/dev/null"
check "man finds kiln-worker(1)" sh -c "man -w 1 kiln-worker >/dev/null"
check "man finds master.lua(5)" sh -c "man -w 5 master.lua >/dev/null"
check "the master unit is installed" test -f /lib/systemd/system/kiln-master@.service
check "the worker unit is installed" test -f /lib/systemd/system/kiln-worker@.service
if command -v systemd-analyze >/dev/null 2>&1; then
    out=$(cd "$TRASH" && systemd-analyze verify kiln-master@main.service kiln-worker@w1.service 2>&1)
    check "systemd-analyze verify passes on the installed units" [ -z "$out" ]
    [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/# /'
fi
check "no unit was enabled" sh -c '! ls /etc/systemd/system/*.wants/kiln-* >/dev/null 2>&1'
check "postinst made the system user kiln" sh -c 'getent passwd kiln | grep -q ":/var/lib/kiln:"'
check "... and kiln-worker" sh -c 'getent passwd kiln-worker | grep -q ":/var/lib/kiln-worker:"'
check "/var/lib/kiln belongs to kiln" [ "$(stat -c %U /var/lib/kiln)" = kiln ]

# the kiln user makes a master where the unit expects one
MB=/var/lib/kiln/t1340-$$
runuser -u kiln -- /usr/bin/kiln create-master "$MB" > "$TRASH/create.out" 2>&1
check "kiln create-master as the kiln user" sh -c '[ -f "$1/master.lua" ]' _ "$MB"
check "kiln checkconfig on it" sh -c 'runuser -u kiln -- /usr/bin/kiln checkconfig "$1" | grep -q "config OK"' _ "$MB"
check "kiln upgrade-master on it" sh -c 'runuser -u kiln -- /usr/bin/kiln upgrade-master "$1" | grep -q "^upgraded from schema version 0"' _ "$MB"
rm -rf "$MB"

DEBIAN_FRONTEND=noninteractive dpkg --purge kiln > "$TRASH/purge.log" 2>&1
rc=$?
check "dpkg --purge exits 0 (got $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] && INSTALLED=""
check "the binaries are gone" sh -c '[ ! -e /usr/bin/kiln ] && [ ! -e /usr/bin/kiln-worker ]'
check "the units are gone" sh -c '[ ! -e /lib/systemd/system/kiln-master@.service ] && [ ! -e /lib/systemd/system/kiln-worker@.service ]'
check "the man pages are gone" sh -c '! man -w 1 kiln >/dev/null 2>&1'
if [ -z "$had_varlib" ]; then
    check "the empty /var/lib/kiln is gone" [ ! -e /var/lib/kiln ]
fi
diag "the users kiln and kiln-worker stay (Debian policy)"
done_testing
