#!/bin/bash
# A latent worker of the container kind (issue 14): the master runs
# kiln-worker in a container (Podman or Docker, whichever can run one here),
# a build runs in it, and the container is stopped after idle_timeout.
# The image is made here from this build's kiln-worker, /bin/sh and their
# libraries (no registry is used).  Where no engine can run a container
# (not installed, no daemon, no user namespaces...), it checks instead that
# the master reports the engine's failure and goes on serving, and says
# which engine it tried and why.
. "$(dirname "$0")/lib.sh"

ENGINE=""
for e in podman docker; do
    command -v "$e" >/dev/null 2>&1 && { ENGINE=$e; break; }
done
first_line() { grep -v '^\s*$' | head -n 1 | tr -d '\r'; }

# Where no engine can run a container, the master must still say so: the
# request's build ends EXCEPTION naming the engine's failure, the worker
# shows "failed" with the reason, and the master goes on serving others.
no_engine() {
    diag "no container run here ($1): checking the failure path instead"
    local M=$TRASH/m0 eng=${ENGINE:-podman}
    new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "cw1", password = secret("cw1"), latent = {
  container = { engine = "$eng", image = "kiln-e2e-worker:none", worker_bin = "/kiln-worker" },
  start_timeout = 60 } }
local_worker { name = "lw" }
builder { name = "b1", workers = { "cw1" }, steps = { shell { command = "echo in-a-container" } } }
builder { name = "b2", workers = { "lw" }, steps = { shell { command = "echo elsewhere" } } }
force_scheduler { name = "force", builders = { "b1", "b2" } }
LUA
    echo container-pw > "$M/secrets/cw1"
    check "master starts" start_master "$M"
    local br bid
    br=$(force b1)
    check "a request for the container worker ends" wait_for 120 request_done "$br"
    bid=$(build_of_request "$br")
    check "its build is EXCEPTION" build_results_is "$bid" 4
    local ss
    ss=$(build_field "$bid" state_string)
    check "the state names the worker and the start's failure ($ss)" \
        grep -Eq "cw1: (the start command|cannot run the start command)" <<<"$ss"
    wfield() { api "workers/cw1" | jpy "d['workers'][0]['$1']"; }
    check "the worker shows failed, kind container" \
        [ "$(wfield latent_state) $(wfield latent_kind)" = "failed container" ]
    check "with a reason" test -n "$(wfield latent_error)"
    br=$(force b2)
    check "the master goes on serving other builders" wait_for 60 request_done "$br"
    check "whose build succeeds" build_results_is "$(build_of_request "$br")" 0
    stop_pid "$MASTER_PID"
    check "the master stops cleanly" [ $? -eq 0 ]
    done_testing
    exit
}

[ -n "$ENGINE" ] || no_engine "neither podman nor docker is installed"
if ! err=$(timeout 60 "$ENGINE" info 2>&1 >/dev/null); then
    no_engine "$ENGINE cannot run containers here: $(first_line <<<"$err")"
fi

# the image: kiln-worker, /bin/sh and the libraries they load
R=$TRASH/rootfs
mkdir -p "$R/bin" "$R/tmp"
cp "$KILN_WORKER" "$R/kiln-worker"
cp -L /bin/sh "$R/bin/sh"
# libwebsockets loads its libuv support as a plugin that ldd does not list
# (docs/CONFIG.md, "Latent and local workers"): it goes in where lws looks
EVLIB=$(ls /usr/lib/*/libwebsockets-evlib_uv.so 2>/dev/null | head -n 1)
[ -n "$EVLIB" ] && { mkdir -p "$R$(dirname "$EVLIB")"; cp -L "$EVLIB" "$R$EVLIB"; }
for f in "$KILN_WORKER" /bin/sh ${EVLIB:+"$EVLIB"}; do
    ldd "$f" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}'
done | sort -u | while read -r lib; do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
done
tar -C "$R" -cf "$TRASH/rootfs.tar" .
IMAGE=kiln-e2e-worker:t1403-$$
if ! err=$(timeout 120 "$ENGINE" import "$TRASH/rootfs.tar" "$IMAGE" 2>&1); then
    no_engine "$ENGINE cannot import an image here: $(first_line <<<"$err")"
fi
rmi() { timeout 60 "$ENGINE" rmi -f "$IMAGE" >/dev/null 2>&1; }
trap 'rmi; e2e_cleanup' EXIT
# Podman's defaults may not run in a sandbox: crun refuses hybrid cgroups,
# and its default RLIMIT_NOFILE/NPROC can pass the hard limits.  Then a
# containers.conf of the test's own (CONTAINERS_CONF, inherited by the
# master's start command) asks for runc and limits within ours.
if ! err=$(timeout 120 "$ENGINE" run --rm --network=host "$IMAGE" /bin/sh -c true 2>&1) &&
    [ "$ENGINE" = podman ] && command -v runc >/dev/null 2>&1; then
    cat > "$TRASH/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
    export CONTAINERS_CONF=$TRASH/containers.conf
    diag "podman's defaults failed ($(first_line <<<"$err")); with runc and our limits"
    err=$(timeout 120 "$ENGINE" run --rm --network=host "$IMAGE" /bin/sh -c true 2>&1)
fi
if ! timeout 120 "$ENGINE" run --rm --network=host "$IMAGE" /bin/sh -c true >/dev/null 2>&1; then
    rmi
    no_engine "$ENGINE cannot run a container here: $(first_line <<<"$err")"
fi
diag "container engine: $ENGINE ($("$ENGINE" --version 2>/dev/null | head -n 1))"

M=$TRASH/m
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "cw1", password = secret("cw1"), latent = {
  container = { engine = "$ENGINE", image = "$IMAGE", worker_bin = "/kiln-worker" },
  idle_timeout = 5, start_timeout = 120, stop_timeout = 30 } }
builder { name = "b1", workers = { "cw1" }, steps = { shell { command = "echo in-a-container" } } }
force_scheduler { name = "force", builders = { "b1" } }
LUA
echo container-pw > "$M/secrets/cw1"
check "master starts" start_master "$M"
br=$(force b1)
check "a request starts the container; the build runs" wait_for 180 request_done "$br"
check "build SUCCESS" build_results_is "$(build_of_request "$br")" 0
check "it ran in the container named kiln-worker-cw1" grep -q "worker=cw1 attached" "$M/master.log"
state_is() { [ "$(api workers/cw1 | jpy 'd["workers"][0]["latent_state"]')" = "$1" ]; }
check "idle, it is stopped" wait_for 120 state_is stopped
no_container() { ! "$ENGINE" ps --format '{{.Names}}' | grep -qx kiln-worker-cw1; }
check "and the container is gone" wait_for 60 no_container
stop_pid "$MASTER_PID"
check "the master stops cleanly" [ $? -eq 0 ]
done_testing
