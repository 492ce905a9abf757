#!/usr/bin/env python3
"""Live reconfiguration at scale (slice "reconfig", docs/PERFORMANCE.md "### reconfig").

A master with --builders builders (default 1,000) and --running builds
running on one worker; then --reps times `kiln reconfig` alternates between
two configs (one builder more, one step's command changed), timing each
from the client's SIGHUP to its verdict (wall) and reading the master's own
time from the verdict ("in N ms").  At the end the master's worst loop stall
after start-up (KILN_LOOP_STATS) is the longest turn: the reconfig's own.

    python3 bench/reconfig.py --build build-bench [--builders 1000] [--running 10] [--reps 10]

Prints one JSON object with the samples and their medians.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def config(n, running, go, variant):
    lines = [
        'http = { listen = "127.0.0.1:0" }',
        'workers_listen = "127.0.0.1:0"',
        'worker { name = "w1", password = secret("w1"), max_builds = %d }' % (running + 1),
    ]
    for i in range(n):
        cmd = "while [ ! -e '%s' ]; do sleep 0.2; done" % go if i < running else "true"
        if i == n - 1 and variant:
            cmd = "echo changed"
        lines.append('builder { name = "b%05d", workers = { "w1" }, tags = { "t%d" }, '
                     'steps = { shell { command = "%s" } } }' % (i, i % 10, cmd.replace('"', '\\"')))
    if variant:
        lines.append('builder { name = "extra", workers = { "w1" }, steps = { shell { command = "true" } } }')
    return "\n".join(lines) + "\n"


def wait(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)  # polling a condition with a deadline
    raise SystemExit("timed out waiting for " + what)


def api(url, path, data=None):
    import urllib.request
    req = urllib.request.Request(url + "/api/v2/" + path, data=data,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--builders", type=int, default=1000)
    ap.add_argument("--running", type=int, default=10)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    kiln = os.path.abspath(os.path.join(a.build, "kiln"))
    worker = os.path.abspath(os.path.join(a.build, "src/worker/kiln-worker"))
    tmp = tempfile.mkdtemp(prefix="kiln-bench-reconfig.")
    m = os.path.join(tmp, "master")
    os.makedirs(os.path.join(m, "secrets"))
    with open(os.path.join(m, "secrets", "w1"), "w") as f:
        f.write("w1-secret")
    go = os.path.join(tmp, "go")
    with open(os.path.join(m, "master.lua"), "w") as f:
        f.write(config(a.builders, a.running, go, False))
    stats = os.path.join(tmp, "loop.json")
    env = dict(os.environ, KILN_LOOP_STATS=stats)
    log = open(os.path.join(m, "master.log"), "w")
    mp = subprocess.Popen([kiln, "master", "-d", m], stderr=log, env=env)
    wp = None
    try:
        wait(lambda: os.path.exists(os.path.join(m, "ports")) and os.path.getsize(os.path.join(m, "ports")) > 0, 60, "ports")
        ports = dict(l.split() for l in open(os.path.join(m, "ports")) if l.strip())
        url = "http://" + ports["http"]
        wd = os.path.join(tmp, "w1")
        subprocess.run([worker, "create", wd, "--master", ports["workers"], "--name", "w1",
                        "--password-file", os.path.join(m, "secrets", "w1")], check=True,
                       stdout=subprocess.DEVNULL)
        wp = subprocess.Popen([worker, "start", wd], stderr=open(wd + ".log", "w"))
        wait(lambda: len(api(url, "workers/w1")["workers"][0]["connected_to"]) == 1, 60, "worker")
        for i in range(a.running):
            bid = api(url, "builders/b%05d" % i)["builders"][0]["builderid"]
            api(url, "forceschedulers/force", json.dumps({
                "jsonrpc": "2.0", "id": 1, "method": "force",
                "params": {"builderid": str(bid), "reason": "bench"}}).encode())
        wait(lambda: api(url, "builds?complete=false")["meta"]["total"] >= a.running, 120, "builds running")
        wall, own = [], []
        for r in range(a.reps):
            with open(os.path.join(m, "master.lua"), "w") as f:
                f.write(config(a.builders, a.running, go, r % 2 == 0))
            t0 = time.monotonic()
            p = subprocess.run([kiln, "reconfig", m], capture_output=True, text=True)
            wall.append((time.monotonic() - t0) * 1000)
            if p.returncode != 0:
                raise SystemExit("reconfig failed: " + p.stderr)
            own.append(float(re.search(r" in (\d+) ms", p.stdout).group(1)))
        still = api(url, "builds?complete=false")["meta"]["total"]
        open(go, "w").close()
        wait(lambda: api(url, "builds?complete=false")["meta"]["total"] == 0, 120, "builds done")
    finally:
        if wp:
            wp.send_signal(signal.SIGTERM)
            wp.wait(timeout=30)
        mp.send_signal(signal.SIGTERM)
        mp.wait(timeout=60)
    loop = json.load(open(stats)) if os.path.exists(stats) else {}
    out = {
        "builders": a.builders, "running": a.running, "reps": a.reps,
        "running_after_reconfigs": still,
        "sighup_to_verdict_ms": {"median": statistics.median(wall), "max": max(wall), "samples": wall},
        "master_reconfig_ms": {"median": statistics.median(own), "max": max(own), "samples": own},
        "worst_loop_stall_ms": loop.get("worst_ms", 0),
        "worst_loop_stall_cpu_ms": loop.get("worst_cpu_ms", 0),
        "loop": loop,
        "load_avg": os.getloadavg(),
    }
    print(json.dumps(out, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
