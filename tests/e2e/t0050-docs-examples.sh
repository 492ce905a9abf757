#!/bin/bash
# Keeps docs/CONFIG.md true: every ```lua block in it must pass
# `kiln checkconfig`.  Blocks that are fragments may refer to workers and
# builders declared elsewhere on the page; those names (and only those)
# get stub declarations, added one error at a time.
. "$(dirname "$0")/lib.sh"

/usr/bin/python3 - "$KILN" "$KILN_SRC/docs/CONFIG.md" "$TRASH" "$KILN_SRC/docs/REPORTERS.md" <<'PY'
import os, re, subprocess, sys

kiln, doc, trash = sys.argv[1:4]
blocks = re.findall(r"```lua\n(.*?)```", open(doc).read(), re.S)
# slice "email": docs/REPORTERS.md's blocks too (named CONFIG.md's block N+i below)
for extra in sys.argv[4:]:
    blocks += re.findall(r"```lua\n(.*?)```", open(extra).read(), re.S)
n = failed = 0
for i, block in enumerate(blocks):
    d = os.path.join(trash, "b%d" % i)
    os.makedirs(os.path.join(d, "secrets"))
    stubs, err = [], ""
    for _ in range(20):
        text = "\n".join(stubs) + "\n" + block if stubs else block
        for name in re.findall(r'secret\("([^"]+)"\)', text) + re.findall(r'%\(secret:([^:)]+)', text):
            with open(os.path.join(d, "secrets", name), "w") as f:
                f.write("doc-secret-" + name)
        with open(os.path.join(d, "master.lua"), "w") as f:
            f.write(text)
        r = subprocess.run([kiln, "checkconfig", d], capture_output=True, text=True)
        err = r.stderr.strip()
        if r.returncode == 0:
            break
        m = re.search(r"unknown worker '([^']+)'", err)
        if m:
            stubs.insert(0, 'worker { name = "%s", password = secret("stub") }' % m.group(1))
            continue
        m = re.search(r"unknown builder '([^']+)'", err)
        if m:
            stubs.append('builder { name = "%s", workers = { "stubw" }, steps = { shell { command = "true" } } }'
                         % m.group(1))
            if not any('name = "stubw"' in s for s in stubs):
                stubs.insert(0, 'worker { name = "stubw", password = secret("stub") }')
            continue
        m = re.search(r"unknown upstream scheduler '([^']+)'", err)
        if m:
            if not any('name = "stubw"' in s for s in stubs):
                stubs.insert(0, 'worker { name = "stubw", password = secret("stub") }')
            stubs.append('builder { name = "stubb", workers = { "stubw" }, steps = { shell { command = "true" } } }')
            stubs.append('single_branch { name = "%s", builders = { "stubb" } }' % m.group(1))
            continue
        break
    n += 1
    first = block.strip().splitlines()[0][:60]
    if r.returncode == 0:
        print("ok %d - docs/CONFIG.md lua block %d (%s)" % (n, i + 1, first))
    else:
        print("not ok %d - docs/CONFIG.md lua block %d (%s): %s" % (n, i + 1, first, err))
        failed += 1
print("1..%d" % n)
sys.exit(1 if failed else 0)
PY
