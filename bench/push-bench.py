#!/usr/bin/python3
"""Push acceptance latency (slice "push", docs/PERFORMANCE.md "Push").

usage: bench/push-bench.py [BUILD_DIR] [--n 1000]

Starts a throwaway master (loopback, port 0), makes an API token with the
scope push, then POSTs N result bags (2 steps, a few lines of output each)
to /api/v2/push one after the other on one kept-alive connection and times
each from the request's first byte to the 202 answer (the acceptance: token
check, caps, bag parsing, queueing; the storing happens on the master's
next loop turn).  Prints p50, p99 and max, the time until every push is
stored (GET /api/v2/push/latest sees the last one), and the load average.
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
n = 1000
args = sys.argv[1:]
while args:
    a = args.pop(0)
    if a == "--n":
        n = int(args.pop(0))
    else:
        build = a
kiln = os.path.abspath(os.path.join(build, "kiln"))
tmp = tempfile.mkdtemp(prefix="kiln-push-bench.")
master = None
try:
    os.makedirs(tmp + "/m/secrets")
    with open(tmp + "/m/master.lua", "w") as f:
        f.write('http = { listen = "127.0.0.1:0" }\nworkers_listen = "127.0.0.1:0"\n'
                'change_hook = { token = secret("hook") }\n'
                'push = { per_minute = 1000000, max_results = 1000000 }\n')
    with open(tmp + "/m/secrets/hook", "w") as f:
        f.write("sekrit")
    log = open(tmp + "/m/master.log", "w")
    master = subprocess.Popen([kiln, "master", "-d", tmp + "/m"], stderr=log)
    deadline = time.time() + 20
    while not (os.path.exists(tmp + "/m/ports") and os.path.getsize(tmp + "/m/ports")):
        if time.time() > deadline:
            sys.exit("master did not start")
        time.sleep(0.05)
    addr = [l.split()[1] for l in open(tmp + "/m/ports") if l.startswith("http ")][0]
    host, port = addr.rsplit(":", 1)
    env = dict(os.environ, KILN_CLIENT_CONF=tmp + "/none")
    env.pop("KILN_TOKEN", None)
    token = subprocess.run([kiln, "token", "create", "--url", "http://" + addr, "--token", "sekrit",
                            "--name", "bench", "--scope", "push"], env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    hdrs = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    lat = []
    for i in range(n):
        bag = json.dumps({
            "client": {"package": "bench%d" % (i % 10), "host": "host%d" % (i % 7),
                       "arch": "x86_64", "tags": ["bench"]},
            "revision": "r%d" % i,
            "steps": [{"name": "build", "status": 0, "stdout": "compiling\n" * 20,
                       "cmd": ["make", "-j2"]},
                      {"name": "test", "status": i % 5 == 0, "stdout": "ok\n" * 20,
                       "stderr": "warning\n"}]})
        t0 = time.perf_counter()
        conn.request("POST", "/api/v2/push", bag, hdrs)
        r = conn.getresponse()
        body = r.read()
        t1 = time.perf_counter()
        if r.status != 202:
            sys.exit("push %d: %d %s" % (i, r.status, body))
        lat.append((t1 - t0) * 1000)
        last = json.loads(body)["pushid"]
    t_sent = time.perf_counter()
    while True:
        conn.request("GET", "/api/v2/push/%d" % last)
        r = conn.getresponse()
        st = json.loads(r.read())
        if st.get("state") == "stored":
            break
        if time.perf_counter() - t_sent > 60:
            sys.exit("the last push was not stored in 60 s")
        time.sleep(0.005)
    t_stored = time.perf_counter() - t_sent
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
    print("pushes: %d (one kept-alive connection, 2 steps each)" % n)
    print("accepted (request -> 202): p50 %.3f ms, p99 %.3f ms, max %.3f ms, mean %.3f ms"
          % (p(0.50), p(0.99), lat[-1], sum(lat) / len(lat)))
    print("last push stored %.1f ms after the last 202" % (t_stored * 1000))
    print("load average: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
finally:
    if master:
        master.terminate()
        try:
            master.wait(20)
        except subprocess.TimeoutExpired:
            master.kill()
    shutil.rmtree(tmp, ignore_errors=True)
