"""API latency while a maildir_source reads big commit mails
(docs/PERFORMANCE.md "Maildir").

usage: bench/maildir-bench.py [BUILD_DIR] [--n 300] [--kib 1000]

Starts a throwaway master (loopback, port 0) with a maildir_source
(max_size 4 MiB, interval 0.2 s), delivers N git format-patch mails of
about KIB KiB each into new/ at once (tmp/ then rename, as an MDA does),
and times GET /api/v2/builders one after the other on one kept-alive
connection until every mail became a change.  Prints the latencies' p50,
p99 and max, the time until the last change, and the load average.
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

build = "build"
n = 300
kib = 1000
args = sys.argv[1:]
while args:
    a = args.pop(0)
    if a == "--n":
        n = int(args.pop(0))
    elif a == "--kib":
        kib = int(args.pop(0))
    else:
        build = a
kiln = os.path.abspath(os.path.join(build, "kiln"))
tmp = tempfile.mkdtemp(prefix="kiln-maildir-bench.")
master = None
try:
    md = tmp + "/Maildir"
    for sub in ("new", "cur", "tmp"):
        os.makedirs(md + "/" + sub)
    os.makedirs(tmp + "/m/secrets")
    with open(tmp + "/m/master.lua", "w") as f:
        f.write('http = { listen = "127.0.0.1:0" }\nworkers_listen = "127.0.0.1:0"\n'
                'worker { name = "w1", password = secret("w1") }\n'
                'builder { name = "b", workers = { "w1" }, steps = { shell { command = "true" } } }\n'
                'maildir_source { name = "mail", maildir = "%s", interval = 0.2, '
                'max_size = "4 MiB" }\n' % md)
    with open(tmp + "/m/secrets/w1", "w") as f:
        f.write("pw")
    log = open(tmp + "/m/master.log", "w")
    master = subprocess.Popen([kiln, "master", "-d", tmp + "/m"], stderr=log)
    deadline = time.time() + 20
    while not (os.path.exists(tmp + "/m/ports") and os.path.getsize(tmp + "/m/ports")):
        if time.time() > deadline:
            sys.exit("master did not start")
        time.sleep(0.05)
    addr = [l.split()[1] for l in open(tmp + "/m/ports") if l.startswith("http ")][0]
    host, port = addr.rsplit(":", 1)
    line = "+" + "x" * 99 + "\n"
    diff = line * (kib * 1024 // len(line))
    for i in range(n):
        body = ("From 1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c%02x Mon Sep 17 00:00:00 2001\n"
                "From: Ann Dev <ann@example.org>\nDate: Tue, 2 Dec 2026 10:00:00 +0000\n"
                "Subject: [PATCH] change %d\n\nBody.\n---\n src/big.c | 1 +\n\n"
                "diff --git a/src/big.c b/src/big.c\n--- a/src/big.c\n+++ b/src/big.c\n"
                "@@ -0,0 +1 @@\n" % (i % 256, i)) + diff
        name = "17647%05d.M%dP1.host" % (i, i)
        with open(md + "/tmp/" + name, "w") as f:
            f.write(body)
    t0 = time.time()
    for name in sorted(os.listdir(md + "/tmp")):
        os.rename(md + "/tmp/" + name, md + "/new/" + name)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    lat = []
    done_at = None
    k = 0
    while time.time() - t0 < 600:
        s = time.perf_counter()
        conn.request("GET", "/api/v2/builders")
        conn.getresponse().read()
        lat.append(time.perf_counter() - s)
        k += 1
        if k % 20 == 0:
            conn.request("GET", "/api/v2/changes?field=changeid")
            total = len(json.loads(conn.getresponse().read())["changes"])
            if total >= n:
                done_at = time.time() - t0
                break
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    print(json.dumps({"mails": n, "kib": kib, "requests": len(lat),
                      "p50_ms": round(pct(0.5), 2), "p99_ms": round(pct(0.99), 2),
                      "max_ms": round(lat[-1] * 1000, 2),
                      "all_changes_s": round(done_at, 2) if done_at else None,
                      "loadavg": open("/proc/loadavg").read().split()[:3]}))
finally:
    if master:
        master.terminate()
        master.wait(timeout=30)
    if os.environ.get("KEEP"):
        print(tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
