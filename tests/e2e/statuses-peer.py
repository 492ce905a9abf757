#!/usr/bin/python3
# An HTTP server on 127.0.0.1 playing the commit-status APIs (GitHub,
# GitLab, Gitea, Bitbucket, Gerrit) for t1260/t1261: it records every
# request as DIR/req-NNNN.json (method, path, headers, body, arrival time,
# the status it answered) and answers 201 {} unless SCRIPT says otherwise.
# SCRIPT is JSON: {"PATH-PREFIX": [[STATUS, {"Header": "value"}], ...]}:
# the first requests to a prefix get those answers in turn (500, 429 with
# Retry-After, 403 or 201 with X-RateLimit-Remaining: 0 ...); a header
# value "@+N" becomes the epoch second N seconds from the answer (a
# rate limit's reset time).  PORT 0: any free port; else that one (the
# peer comes back on the port a master already uses: "the peer was down").
# The server itself: httppeer.py.
#   statuses-peer.py PORTFILE DIR SCRIPT [PORT]
import json, sys

import httppeer

httppeer.serve(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]),
               port=int(sys.argv[4]) if len(sys.argv) > 4 else 0, default_status=201,
               max_body=1 << 20, error_body=b'{"message":"no"}')
