#!/usr/bin/python3
# An HTTP server on 127.0.0.1 port 0 playing webhook services for the
# reporter tests (t1230): it writes its port to PORTFILE, and records every
# request as DIR/req-NNNN.json (method, path, headers, body, arrival time,
# the status it answered).  SCRIPT is JSON: {"PATH-PREFIX": [[STATUS,
# {"Header": "value"}], ...]}: the first requests to a prefix get those
# answers in turn, later ones 200 {}; a status 0 never answers (60 s).
# The server itself: httppeer.py.
#   http-sink.py PORTFILE DIR SCRIPT
import json, sys

import httppeer

httppeer.serve(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
