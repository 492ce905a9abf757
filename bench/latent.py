#!/usr/bin/env python3
"""Latent workers (issue 14): what a start on demand costs.

A master with one latent worker of the command kind (a local kiln-worker:
the start command is the worker) and idle_timeout = 1, and one builder
running `true`.  --reps times: force a build and time it from the force to
the request's completion (wall, through the REST API), read from the
master's log how long the worker took from its start command to its attach
and from the idle stop to "stopped", and wait until it is stopped again.
A reference run forces the same build with the worker already attached.

    python3 bench/latent.py --build build [--reps 10] [--kind command|container]

--kind container: the same worker as the container kind instead, Podman
running kiln-worker in an image made here from this build's kiln-worker,
/bin/sh, their libraries and libwebsockets' libuv plugin (as
tests/e2e/t1403 makes it; with runc and lower limits where Podman's
defaults cannot run here).

Prints one JSON object with the samples and their medians (milliseconds).
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request

START = ('"$KILN_WORKER_BIN" create "$KILN_WORKER_DIR" --master "$KILN_MASTER" '
         '--name "$KILN_WORKER_NAME" --password-file "$KILN_WORKER_PASSWORD_FILE" >/dev/null '
         '&& exec "$KILN_WORKER_BIN" start "$KILN_WORKER_DIR"')


def get(url, path):
    with urllib.request.urlopen(url + "/api/v2/" + path, timeout=10) as r:
        return json.load(r)


def force(url, builderid):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "force",
                       "params": {"builderid": str(builderid), "reason": "bench"}}).encode()
    req = urllib.request.Request(url + "/api/v2/forceschedulers/force", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return list(json.load(r)["result"][1].values())[0]


def until(cond, guard=60):
    end = time.monotonic() + guard
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    raise SystemExit("bench/latent.py: a wait passed its %d s guard" % guard)


def stamp(line):
    t = re.match(r"(\d+-\d+-\d+T\d+:\d+:)(\d+\.\d+)Z", line)
    h, m = line[11:13], line[14:16]
    return (int(h) * 3600 + int(m) * 60 + float(t.group(2))) * 1000


def podman_image(build, d):
    """Imports a minimal image for kiln-worker; returns its name and the
    environment Podman needs here (CONTAINERS_CONF or nothing)."""
    root = d + "/rootfs"
    worker = os.path.abspath(os.path.join(build, "src/worker/kiln-worker"))
    files = [worker, "/bin/sh"] + [f for f in
                                    ["/usr/lib/x86_64-linux-gnu/libwebsockets-evlib_uv.so"]
                                    if os.path.exists(f)]
    libs = set()
    for f in files:
        out = subprocess.run(["ldd", f], capture_output=True, text=True).stdout
        libs.update(w for w in out.split() if w.startswith("/"))
    os.makedirs(root + "/bin")
    os.makedirs(root + "/tmp")
    shutil.copy(worker, root + "/kiln-worker")
    shutil.copy("/bin/sh", root + "/bin/sh")
    for f in libs | set(files[2:]):
        os.makedirs(root + os.path.dirname(f), exist_ok=True)
        shutil.copy(os.path.realpath(f), root + f)
    subprocess.run(["tar", "-C", root, "-cf", d + "/rootfs.tar", "."], check=True)
    image = "kiln-bench-worker:%d" % os.getpid()
    subprocess.run(["podman", "import", d + "/rootfs.tar", image], check=True,
                   capture_output=True, timeout=300)
    env = dict(os.environ)
    probe = ["podman", "run", "--rm", "--network=host", image, "/bin/sh", "-c", "true"]
    if subprocess.run(probe, capture_output=True, timeout=120).returncode != 0:
        with open(d + "/containers.conf", "w") as f:
            f.write('[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
                    '[engine]\nruntime = "runc"\n')
        env["CONTAINERS_CONF"] = d + "/containers.conf"
        subprocess.run(probe, check=True, capture_output=True, timeout=120, env=env)
    return image, env


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--kind", choices=["command", "container"], default="command")
    a = ap.parse_args()
    kiln = os.path.abspath(os.path.join(a.build, "kiln"))
    d = tempfile.mkdtemp(prefix="kiln-bench-latent.")
    os.makedirs(d + "/secrets")
    with open(d + "/secrets/w", "w") as f:
        f.write("bench-password")
    image, env = None, None
    if a.kind == "container":
        image, env = podman_image(a.build, d)
        how = ('container = { engine = "podman", image = %s, worker_bin = "/kiln-worker" }, '
               'start_timeout = 120' % json.dumps(image))
    else:
        how = "start = %s" % json.dumps(START)
    with open(d + "/master.lua", "w") as f:
        f.write('http = { listen = "127.0.0.1:0" }\nworkers_listen = "127.0.0.1:0"\n'
                'worker { name = "lw", password = secret("w"), latent = { idle_timeout = 1, '
                '%s } }\n'
                'builder { name = "b", workers = { "lw" }, steps = { shell { command = "true" } } }\n'
                'force_scheduler { name = "force", builders = { "b" } }\n' % how)
    log = open(d + "/master.log", "w")
    p = subprocess.Popen([kiln, "master", "-d", d], stderr=log, env=env)
    try:
        until(lambda: os.path.exists(d + "/ports") and os.path.getsize(d + "/ports") > 0)
        ports = dict(l.split() for l in open(d + "/ports"))
        url = "http://" + ports["http"]
        bid = get(url, "builders/b")["builders"][0]["builderid"]
        state = lambda: get(url, "workers/lw")["workers"][0]["latent_state"]
        done = lambda br: get(url, "buildrequests/%s" % br)["buildrequests"][0]["complete"]
        cold, warm = [], []
        for _ in range(a.reps):
            t0 = time.monotonic()
            br = force(url, bid)
            until(lambda: done(br))
            cold.append((time.monotonic() - t0) * 1000)
            t0 = time.monotonic()  # still attached: the same build without a start
            br = force(url, bid)
            until(lambda: done(br))
            warm.append((time.monotonic() - t0) * 1000)
            until(lambda: state() == "stopped")
        lines = open(d + "/master.log").read().splitlines()
        attach = [float(m.group(1)) for l in lines
                  for m in [re.search(r"running \(connected ([0-9]+) ms after its start\)", l)] if m]
        stops, stopped = [], []
        for l in lines:
            if "stopping: no build for" in l:
                stops.append(stamp(l))
            elif re.search(r"worker=lw stopped$", l):
                stopped.append(stamp(l))
        stop_ms = [b - s for s, b in zip(stops, stopped)]
        med = lambda v: round(statistics.median(v), 1) if v else None
        print(json.dumps({"kind": a.kind, "reps": a.reps, "cold_build_ms": [round(x, 1) for x in cold],
                          "warm_build_ms": [round(x, 1) for x in warm],
                          "start_to_attach_ms": attach, "stop_ms": [round(x, 1) for x in stop_ms],
                          "median": {"cold_build_ms": med(cold), "warm_build_ms": med(warm),
                                     "start_to_attach_ms": med(attach), "stop_ms": med(stop_ms)}},
                         indent=1))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        log.close()
        if image:
            subprocess.run(["podman", "rmi", "-f", image], capture_output=True, timeout=120)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
