#!/usr/bin/env python3
"""Master instructions per build of the steps20 scenario, by callgrind (load-independent).

Usage: bench/steps20-callgrind.py BUILD_DIR [N]

Starts the steps20 master (bench/driver.py's Kiln('steps20', extra={'steps20': True}))
under `valgrind --tool=callgrind`, one kiln-worker, 2 warm-up builds of p1 and p20, then
zeroes the counters (`callgrind_control -z`), forces N builds of p1 at once (default 10),
waits for their builds/N/finished events on /ws, dumps (`callgrind_control -d`), and the same
for p20.  Prints instructions per build of each, per extra step and the ratio; keeps the two
dumps in the master's directory (printed) for callgrind_annotate."""
import os
import subprocess
import sys
import tempfile
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402


def dump(s, tag):
    subprocess.run(['callgrind_control', '-d', tag, str(s.pid)], check=True,
                   capture_output=True)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    driver.KILN = build
    driver.TMP = tempfile.mkdtemp(prefix='kiln-steps20cg-')
    driver.ARGS = types.SimpleNamespace(steps_timeout=900)
    s = driver.Kiln('steps20', extra={'steps20': True})
    out = os.path.join(s.dir, 'callgrind.out')
    s.start(wrapper=['valgrind', '--tool=callgrind', '--callgrind-out-file=' + out + '.%p',
                     '--dump-instr=no'])
    ev = None
    try:
        s.start_worker(0)
        driver.wait_until('worker attached', lambda: s.connected() >= 1, 300, 0.05)
        ev = driver.WsEvents(s.url, ['builds/*/finished'], timeout=300)
        for name in ('p1', 'p20'):
            driver.steps20_series(s, ev, name, 2)
        res = {}
        for name in ('p1', 'p20'):
            subprocess.run(['callgrind_control', '-z', str(s.pid)], check=True,
                           capture_output=True)
            driver.steps20_series(s, ev, name, n)
            dump(s, name)
            res[name] = None
        ev.close()
        ev = None
    finally:
        if ev:
            ev.close()
        s.stop()
    dumps = sorted(f for f in os.listdir(s.dir) if f.startswith('callgrind.out.') and
                   f.count('.') == 3)
    if len(dumps) < 2:
        sys.exit('no dumps in %s' % s.dir)
    # OUT.PID.1 is p1, OUT.PID.2 is p20
    for name, f in zip(('p1', 'p20'), dumps[:2]):
        total, _ = driver.callgrind_top(os.path.join(s.dir, f))
        res[name] = total / n
        print('%s: %.3f M instructions per build (%s)' % (name, res[name] / 1e6,
                                                          os.path.join(s.dir, f)))
    print('per extra step: %.0f' % ((res['p20'] - res['p1']) / 19))
    print('p20 / p1: %.2f' % (res['p20'] / res['p1']))


if __name__ == '__main__':
    main()
