# Shared by the reporter tests (t1210 t1220 t1230 t1260 t1261 t1290-t1293),
# sourced after lib.sh: checkconfig_says, http_peer (the recording HTTP
# peers, httppeer.py), smtp_sink, reporters_up and check_py.

# checkconfig_says DIR TEXT: checkconfig refuses DIR's master.lua, saying TEXT.
checkconfig_says() {
    out=$("$KILN" checkconfig "$1" 2>&1); rc=$?
    diag "checkconfig: exit $rc: $out"
    [ "$rc" != 0 ] && printf '%s' "$out" | grep -qF "$2"
}

# http_peer PEER NAME SCRIPT [PORT]: starts tests/e2e/PEER (http-sink.py or
# statuses-peer.py) recording into $TRASH/req (SCRIPT: its answers), its
# port in $TRASH/NAME.port; checks "the NAME listens" (bounded) and sets P
# to its port.
http_peer() {
    /usr/bin/python3 "$KILN_SRC/tests/e2e/$1" "$TRASH/$2.port" "$TRASH/req" "$3" ${4:+"$4"} &
    e2e_track $!
    check "the $2 listens" wait_for 60 test -s "$TRASH/$2.port"
    P=$(cat "$TRASH/$2.port")
}

# smtp_sink: starts tests/e2e/smtp-sink.py recording into $TRASH/mail;
# checks "the SMTP sink listens" (bounded) and sets SPORT to its port.
smtp_sink() {
    /usr/bin/python3 "$KILN_SRC/tests/e2e/smtp-sink.py" "$TRASH/smtp.port" "$TRASH/mail" &
    e2e_track $!
    check "the SMTP sink listens" wait_for 60 test -s "$TRASH/smtp.port"
    SPORT=$(cat "$TRASH/smtp.port")
}

# reporters_up M NAME KIND [LOG]: checkconfig accepts M; the master starts
# (with KILN_LOG=LOG when given); its reporter NAME (KIND: the one
# started last) is ready; the worker w1 (password in M/secrets/w1) attaches.
reporters_up() {
    check "checkconfig accepts the reporters" "$KILN" checkconfig "$1"
    if [ -n "${4:-}" ]; then
        export KILN_LOG=$4
        check "master starts" start_master "$1"
        unset KILN_LOG
    else
        check "master starts" start_master "$1"
    fi
    check "the reporters are ready" wait_for 30 grep -q "reporter '$2' ($3) ready" "$1/master.log"
    start_worker "$TRASH/w1" w1 "$1/secrets/w1"
    check "worker attaches" wait_for 60 worker_connected w1
}

# check_py DESC ARG... <<'PY' ... PY: runs the Python script on stdin with
# the ARGs (its output shown as diagnostics); the point DESC passes when it
# exits 0.
check_py() {
    d_=$1
    shift
    /usr/bin/python3 - "$@" > "$TRASH/check.out" 2>&1
    rc_=$?
    sed 's/^/# /' "$TRASH/check.out"
    check "$d_" [ $rc_ = 0 ]
}
