# Holds many slow or silent connections open against a master while probing
# its API (and its worker port) with fresh requests; used by t0530.
# usage: flood.py HTTP_PORT WORKER_PORT SECONDS READY_FILE RESULT_FILE
# Connections: silent, slow headers (one byte every 2 s), slow POST bodies
# (one byte every 2 s), keep-alive ones that trickle their second request
# after a first answer, on both ports, from 40 loopback source addresses
# plus 100 from 127.0.0.1 (the probes' own address, past its per-address cap).  A connection the
# master closes is opened again, so the count stays at its target.
import json, resource, select, socket, sys, time

hp, wp, dur, ready, result = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

PLAN = ([("http", "silent")] * 50 + [("http", "ka")] * 150 + [("http", "hdr")] * 250 + [("http", "body")] * 250 +
        [("workers", "silent")] * 100 + [("workers", "hdr")] * 50 + [("workers", "body")] * 50)
# from 127.0.0.1: past the per-address cap, so the master keeps evicting them
SAME = [("http", "silent")] * 50 + [("http", "hdr")] * 50
conns = {}  # fd -> slot
slots = []
for i, (port, kind) in enumerate(PLAN):
    slots.append({"port": port, "kind": kind, "src": "127.0.0.%d" % (2 + i % 40), "sock": None})
for port, kind in SAME:
    slots.append({"port": port, "kind": kind, "src": "127.0.0.1", "sock": None})
stats = {"opened": 0, "closed_by_master": 0, "connect_failed": 0}
poller = select.poll()


def open_slot(s, now):
    try:
        k = socket.socket()
        k.bind((s["src"], 0))
        k.settimeout(2)
        k.connect(("127.0.0.1", hp if s["port"] == "http" else wp))
        k.setblocking(False)
    except OSError:
        stats["connect_failed"] += 1
        k.close()
        return
    if s["kind"] == "hdr":
        k.send(b"GET /api/v2/builders HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    elif s["kind"] == "ka":
        k.send(b"GET /api/v2/builders HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    elif s["kind"] == "body":
        k.send(b"POST /api/v2/forceschedulers/force HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    s["sock"], s["next"], s["answered"] = k, now + 2, False
    conns[k.fileno()] = s
    poller.register(k, select.POLLIN)
    stats["opened"] += 1


def close_slot(s):
    k = s["sock"]
    poller.unregister(k)
    del conns[k.fileno()]
    k.close()
    s["sock"] = None


def probe(port, path):
    t0 = time.monotonic()
    try:
        k = socket.create_connection(("127.0.0.1", port), timeout=5)
        k.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        got = k.recv(64)
        k.close()
    except OSError:
        return None
    if not got.startswith(b"HTTP/1.1 "):
        return None
    return int(got[9:12]), time.monotonic() - t0


start = time.monotonic()
for s in slots:
    open_slot(s, start)
with open(ready, "w") as f:
    f.write("%d\n" % len(conns))
probes, wprobes, open_counts = [], [], []
next_probe = time.monotonic()
while time.monotonic() - start < dur:
    now = time.monotonic()
    for fd, ev in poller.poll(100):
        s = conns.get(fd)
        if not s:
            continue
        try:
            data = s["sock"].recv(4096)
        except OSError:
            data = b""
        if not data:
            stats["closed_by_master"] += 1
            close_slot(s)
        elif s["kind"] == "ka" and not s["answered"]:
            # the first answer is in: start trickling the next request
            s["answered"] = True
            try:
                s["sock"].send(b"GET /api/v2/builders HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            except OSError:
                pass
    for s in slots:
        if s["sock"] is None:
            open_slot(s, now)
        elif (s["kind"] != "silent" and (s["kind"] != "ka" or s["answered"]) and
              now >= s["next"]):
            s["next"] = now + 2
            try:
                s["sock"].send(b"a")
            except OSError:
                stats["closed_by_master"] += 1
                close_slot(s)
    if now >= next_probe:
        next_probe = now + 0.5
        open_counts.append(len(conns))
        probes.append(probe(hp, b"/api/v2/builders"))
        wprobes.append(probe(wp, b"/"))
stats.update(probes=probes, worker_probes=wprobes, open_min=min(open_counts),
             open_max=max(open_counts))
with open(result, "w") as f:
    json.dump(stats, f)
