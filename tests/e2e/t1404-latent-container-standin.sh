#!/bin/bash
# The container kind's commands (issue 14), checked on every machine with a
# stand-in engine: a 'podman' script first on the master's PATH that runs
# the master's `podman run ... IMAGE /bin/sh -c CMD` as a plain process
# (its /tmp moved into the trash) and `podman stop` by signalling it.  It
# shows what the master asks of the engine (the arguments, the password
# passed by name from the environment, never on the command line), and that
# the worker so started builds and is stopped when idle.  t1403 runs a real
# engine where one can run.
. "$(dirname "$0")/lib.sh"

S=$TRASH/standin
mkdir -p "$S/bin" "$S/tmp"
cat > "$S/bin/podman" <<'SH'
#!/bin/sh
# stand-in container engine (t1404): records its arguments, one per line
printf '%s\n' "--- $1" "$@" >> "$STANDIN/calls"
case $1 in
run)
    shift; name=""
    while [ $# -gt 0 ]; do
        case $1 in
        --rm) shift ;;
        --name) name=$2; shift 2 ;;
        --network=*) shift ;;
        -e) case $2 in *=*) export "$2" ;; *) [ -n "$(printenv "$2")" ] || exit 125 ;; esac; shift 2 ;;
        --*) shift ;;
        *) break ;;
        esac
    done
    image=$1; shift
    [ "$image" = "kiln/worker:test" ] || { echo "no such image '$image'" >&2; exit 125; }
    echo $$ > "$STANDIN/$name.pid"
    cmd=$(printf "%s" "$3" | sed "s| /tmp/kiln-worker| $STANDIN/tmp/kiln-worker|g")
    exec "$1" "$2" "$cmd" ;;
stop)
    name=$3
    pid=$(cat "$STANDIN/$name.pid") || exit 1
    kill -TERM "$pid"; rm -f "$STANDIN/$name.pid" ;;
*) exit 125 ;;
esac
SH
chmod +x "$S/bin/podman"

M=$TRASH/m
new_master "$M" <<LUA
http = { listen = "127.0.0.1:0" }
workers_listen = "127.0.0.1:0"
worker { name = "cw1", password = secret("cw1"), latent = {
  container = { image = "kiln/worker:test", worker_bin = "$KILN_WORKER", run_args = { "--cpus=1" } },
  idle_timeout = 3, stop_timeout = 20 } }
builder { name = "b1", workers = { "cw1" }, steps = { shell { command = "echo in-a-container" } } }
force_scheduler { name = "force", builders = { "b1" } }
LUA
echo container-pw-t1404 > "$M/secrets/cw1"
PATH=$S/bin:$PATH STANDIN=$S check "master starts" start_master "$M"
br=$(force b1)
check "a request runs the engine; the build runs in what it started" wait_for 90 request_done "$br"
check "build SUCCESS" build_results_is "$(build_of_request "$br")" 0
run_args=$(awk '/^--- run$/ {on = 1; next} /^--- / {on = 0} on' "$S/calls")
want=$(printf '%s\n' run --rm --name kiln-worker-cw1 --network=host -e KILN_WORKER_PASSWORD \
    -e KILN_WORKER_NAME=cw1 -e "KILN_MASTER=$WADDR" --cpus=1 kiln/worker:test /bin/sh -c)
check "podman run's arguments" [ "$(head -n 15 <<<"$run_args")" = "$want" ]
check "the password is passed by name, never on the command line" \
    sh -c "! grep -q container-pw-t1404 '$S/calls'"
state_is() { [ "$(api workers/cw1 | jpy 'd["workers"][0]["latent_state"]')" = "$1" ]; }
check "idle, it is stopped" wait_for 60 state_is stopped
check "with podman stop --time=10 kiln-worker-cw1" \
    grep -qx -- "--- stop" "$S/calls" && \
    [ "$(awk '/^--- stop$/ {getline; getline a; getline b; print a, b}' "$S/calls" | head -n 1)" = \
      "--time=10 kiln-worker-cw1" ]
check "and the container's process is gone" wait_for 30 test ! -e "$S/kiln-worker-cw1.pid"
done_testing
