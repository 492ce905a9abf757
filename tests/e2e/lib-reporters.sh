# Shared by the reporter tests (t1210 t1220 t1230 t1260 t1261 t1290-t1292):
# checkconfig's refusals and the recording HTTP peers (httppeer.py).
# Sourced after lib.sh.

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
    check "the $2 listens" wait_for 20 test -s "$TRASH/$2.port"
    P=$(cat "$TRASH/$2.port")
}

# smtp_sink: starts tests/e2e/smtp-sink.py recording into $TRASH/mail;
# checks "the SMTP sink listens" (bounded) and sets SPORT to its port.
smtp_sink() {
    /usr/bin/python3 "$KILN_SRC/tests/e2e/smtp-sink.py" "$TRASH/smtp.port" "$TRASH/mail" &
    e2e_track $!
    check "the SMTP sink listens" wait_for 20 test -s "$TRASH/smtp.port"
    SPORT=$(cat "$TRASH/smtp.port")
}
