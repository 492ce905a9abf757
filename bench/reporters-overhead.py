#!/usr/bin/python3
"""Master CPU per build with and without reporters (slice "authhard",
docs/PERFORMANCE.md "Reporters").

usage: bench/reporters-overhead.py [BUILD_DIR] [--n 200]

For each of two configurations, starts a throwaway master and a kiln-worker
(loopback, port 0, max_builds 4), forces N builds of a one-step builder (`true`)
on a GitHub repository in batches of 40, each batch complete and, with
reporters, every one of its messages received by the local sinks before the
next is forced (the reporters' queues hold 100 messages), and reads
the master's CPU time (utime + stime from /proc/PID/stat) before the first
force and after the last delivery:

  none       no reporter
  reporters  email (aiosmtpd sink, tests/e2e/smtp-sink.py), http, slack and
             github commit statuses (tests/e2e/http-sink.py), mode all

Prints ms of master CPU per build for each, their ratio and the load average.
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

build, n = "build", 200
args = sys.argv[1:]
while args:
    a = args.pop(0)
    if a == "--n":
        n = int(args.pop(0))
    else:
        build = a
src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
kiln = os.path.abspath(os.path.join(build, "kiln"))
worker_bin = os.path.abspath(os.path.join(build, "src/worker/kiln-worker"))
tmp = tempfile.mkdtemp(prefix="kiln-reporters-bench.")
procs = []
TICK = os.sysconf("SC_CLK_TCK")
BATCH = 40


def wait(cond, secs, what):
    deadline = time.time() + secs
    while not cond():
        if time.time() > deadline:
            sys.exit("timed out waiting for " + what)
        time.sleep(0.5)  # seldom: the polls cost the master CPU too


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def count(d, prefix):
    return sum(1 for x in os.listdir(d) if x.startswith(prefix)) if os.path.isdir(d) else 0


def get(addr, path):
    c = http.client.HTTPConnection(*addr.rsplit(":", 1), timeout=30)
    c.request("GET", path)
    return json.loads(c.getresponse().read())


def run(name, reporters, sport, hport):
    d = "%s/%s" % (tmp, name)
    os.makedirs(d + "/m/secrets")
    lua = ('http = { listen = "127.0.0.1:0" }\nworkers_listen = "127.0.0.1:0"\n'
           'worker { name = "w1", password = secret("w1"), max_builds = 4 }\n'
           'builder { name = "app", workers = { "w1" }, steps = { shell { name = "t", '
           'command = { "true" } } } }\n'
           'force_scheduler { name = "force", builders = { "app" }, revisions = { "*" }, '
           'repositories = { "https://github.com/acme/*" } }\n')
    if reporters:
        lua += ('reporter { kind = "email", name = "mail", mode = "all", from = "kiln@example.org", '
                'to = "team@example.org", smtp = { host = "127.0.0.1", port = %d } }\n'
                'reporter { kind = "http", name = "http", mode = "all", '
                'url = "http://127.0.0.1:%d/push/kiln" }\n'
                'reporter { kind = "slack", name = "slack", mode = "all", url = secret("slack") }\n'
                'reporter { kind = "github", url = "http://127.0.0.1:%d/gh/api/v3", '
                'token = secret("gh") }\n' % (sport, hport, hport))
    open(d + "/m/master.lua", "w").write(lua)
    for k, v in (("w1", "w1-pass"), ("slack", "http://127.0.0.1:%d/services/T/B/X" % hport),
                 ("gh", "gh-token")):
        open("%s/m/secrets/%s" % (d, k), "w").write(v)
    log = open(d + "/m/master.log", "w")
    m = subprocess.Popen([kiln, "master", "-d", d + "/m"], stderr=log)
    procs.append(m)
    wait(lambda: os.path.exists(d + "/m/ports") and os.path.getsize(d + "/m/ports"), 20, "master")
    ports = dict(l.split() for l in open(d + "/m/ports"))
    addr = ports["http"]
    subprocess.run([worker_bin, "create", d + "/w", "--master", ports["workers"], "--name", "w1",
                    "--password-file", d + "/m/secrets/w1"], check=True, capture_output=True)
    w = subprocess.Popen([worker_bin, "start", d + "/w"], stderr=open(d + "/w.log", "w"))
    procs.append(w)
    wait(lambda: len(get(addr, "/api/v2/workers/w1")["workers"][0]["connected_to"]) == 1, 20,
         "worker")
    before_mail, before_req = count(sinks["mail"], "mail-"), count(sinks["req"], "req-")
    t0, c0 = time.time(), cpu_s(m.pid)
    c = http.client.HTTPConnection(*addr.rsplit(":", 1), timeout=30)

    def done(k):
        b = get(addr, "/api/v2/builds")["builds"]
        return sum(1 for x in b if x["complete"]) >= k

    # per build: 1 mail, 1 http, 1 slack, and a github "success" status (its
    # "pending" may be coalesced with it while queued)
    def delivered(k):
        if count(sinks["mail"], "mail-") - before_mail < k:
            return False
        got = {"/push/": 0, "/services/": 0, "/gh/": 0}
        for f in os.listdir(sinks["req"]):
            if not f.startswith("req-"):
                continue  # the sink's file being written
            t = open(os.path.join(sinks["req"], f)).read()
            for p in got:
                if '"path": "' + p in t and (p != "/gh/" or "success" in t):
                    got[p] += 1
        return all(v - before[p] >= k for p, v in got.items())

    before = {"/push/": 0, "/services/": 0, "/gh/": 0}
    if reporters:
        for f in os.listdir(sinks["req"]):
            if not f.startswith("req-"):
                continue  # the sink's file being written
            t = open(os.path.join(sinks["req"], f)).read()
            for p in before:
                if '"path": "' + p in t and (p != "/gh/" or "success" in t):
                    before[p] += 1
    # batches of BATCH builds, each delivered before the next is forced: the
    # reporters' queues (100 messages) never drop anything
    for i in range(n):
        # one revision per build: its commit statuses are not coalesced with another's
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "force", "params": {
            "builderNames": ["app"], "branch": "main", "revision": "%040x" % (i + 1),
            "repository": "https://github.com/acme/widget.git"}})
        c.request("POST", "/api/v2/forceschedulers/force", body,
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            sys.exit("force answered %d" % r.status)
        if (i + 1) % BATCH == 0 or i + 1 == n:
            wait(lambda: done(i + 1), 600, "%d builds" % (i + 1))
            if reporters:
                wait(lambda: delivered(i + 1), 600, "the reporters' messages")
    t1, c1 = time.time(), cpu_s(m.pid)
    for p in (w, m):
        p.terminate()
        p.wait(20)
    return (c1 - c0) * 1000 / n, t1 - t0


try:
    sinks = {"mail": tmp + "/mail", "req": tmp + "/req"}
    procs.append(subprocess.Popen(["/usr/bin/python3", src + "/tests/e2e/smtp-sink.py",
                                   tmp + "/smtp.port", sinks["mail"]]))
    procs.append(subprocess.Popen(["/usr/bin/python3", src + "/tests/e2e/http-sink.py",
                                   tmp + "/http.port", sinks["req"], "{}"]))
    wait(lambda: all(os.path.exists(tmp + "/" + f) and os.path.getsize(tmp + "/" + f)
                     for f in ("smtp.port", "http.port")), 20, "the sinks")
    sport = int(open(tmp + "/smtp.port").read())
    hport = int(open(tmp + "/http.port").read())
    res = {}
    for name, rep in (("none", False), ("reporters", True)):
        res[name] = run(name, rep, sport, hport)
        print("%-10s %d builds: %.2f ms master CPU per build (%.1f s wall)"
              % (name, n, res[name][0], res[name][1]), flush=True)
    print("ratio reporters/none: %.2f" % (res["reporters"][0] / res["none"][0]))
    print("load average: %s" % " ".join(open("/proc/loadavg").read().split()[:3]))
finally:
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    if os.environ.get("KEEP"):
        print("kept " + tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
