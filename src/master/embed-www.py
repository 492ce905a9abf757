#!/usr/bin/env python3
# Generates www-assets.h: the web UI's bundle (www/src/index.html and the
# app.js / app.css esbuild made of www/src/) as C byte arrays, each with its
# gzip form and strong ETags (content hashes), in one table www.c serves from
# memory.  The JS and CSS are named by their hash (/assets/app.HASH.js), so
# they are cached forever; index.html names them and is revalidated (its
# {{title}} and {{title_url}} marks are filled by www.c with the master's).
# The chunks esbuild split off for import() (META.json, its metafile, lists
# them) are embedded too, renamed by their hash (/assets/chunk.HASH.js) in
# the code that imports them; the entry must not import any chunk statically
# (what the core bundle budget counts is then what every page loads).
#
#   embed-www.py OUTPUT INDEX.html APP.js APP.css META.json    the real UI
#   embed-www.py OUTPUT --none                                 no bundle (esbuild missing)
import gzip
import hashlib
import json
import os
import sys

# Hex digits of SHA-256 kept in names and ETags: 64 bits, no collisions
# among a handful of files, short URLs.
HASH_HEX = 16

NOT_BUILT = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}}</title></head>
<body><h1>{{title}}</h1><p>This kiln was built without its web UI (www/node_modules was
missing: run scripts/install-deps, then rebuild). The REST API is at
<a href="/api/v2">/api/v2</a>.</p></body></html>
"""


def digest(data):
    return hashlib.sha256(data).hexdigest()[:HASH_HEX]


def c_bytes(name, data):
    lines = []
    for i in range(0, len(data), 20):
        lines.append('\t' + ''.join(f'0x{b:02x},' for b in data[i:i + 20]))
    body = '\n'.join(lines) if lines else '\t0'
    return f'static const unsigned char {name}[] = {{\n{body}\n}};\n'


def c_str(text):
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'


def chunks(meta_path, js_path, js):
    """The entry's code and the (url, bytes) of every chunk, chunk names rewritten
    to hash names in whatever imports them, leaves first."""
    with open(meta_path, encoding='utf-8') as f:
        outputs = json.load(f)['outputs']
    base = os.path.basename
    entry = [k for k in outputs if base(k) == base(js_path)]
    if len(entry) != 1:
        sys.exit(f"{meta_path}: no output '{base(js_path)}'")
    imports = {base(k): [base(i['path']) for i in v.get('imports', []) if not i.get('external')]
               for k, v in outputs.items() if k.endswith('.js')}
    for i in outputs[entry[0]].get('imports', []):
        if i['kind'] != 'dynamic-import':
            sys.exit(f"{js_path} imports {i['path']} statically: the core bundle would not be "
                     "one file (import only a view's own modules with import())")
    code = {base(js_path): js}
    for name in imports:
        if name != base(js_path):
            with open(os.path.join(os.path.dirname(js_path), name), 'rb') as f:
                code[name] = f.read()
    renamed, out = {}, []
    while len(renamed) < len(imports) - 1:
        ready = [n for n in imports if n not in renamed and n != base(js_path)
                 and all(d in renamed for d in imports[n])]
        if not ready:
            sys.exit(f'{meta_path}: chunks import each other in a cycle')
        for n in sorted(ready):
            data = code[n]
            for d in imports[n]:
                data = data.replace(f'./{d}'.encode(), f'./{renamed[d]}'.encode())
            renamed[n] = f'chunk.{digest(data)}.js'
            out.append((f'/assets/{renamed[n]}', data))
    for d in imports[base(js_path)]:
        if js.count(f'./{d}'.encode()) < 1:
            sys.exit(f"{js_path}: cannot find its import of '{d}'")
        js = js.replace(f'./{d}'.encode(), f'./{renamed[d]}'.encode())
    return js, out


def main():
    if len(sys.argv) == 3 and sys.argv[2] == '--none':
        output, built = sys.argv[1], False
        assets = [('/', 'text/html; charset=utf-8', NOT_BUILT, False)]
    elif len(sys.argv) == 6:
        output, index_path, js_path, css_path, meta_path = sys.argv[1:]
        built = True
        with open(js_path, 'rb') as f:
            js = f.read()
        js, lazy = chunks(meta_path, js_path, js)
        with open(css_path, 'rb') as f:
            css = f.read()
        with open(index_path, 'rb') as f:
            index = f.read()
        js_url = f'/assets/app.{digest(js)}.js'
        css_url = f'/assets/app.{digest(css)}.css'
        for mark in (b'{{app.js}}', b'{{app.css}}'):
            if index.count(mark) != 1:
                sys.exit(f"{index_path}: '{mark.decode()}' must appear exactly once")
        index = index.replace(b'{{app.js}}', js_url.encode())
        index = index.replace(b'{{app.css}}', css_url.encode())
        assets = [
            ('/', 'text/html; charset=utf-8', index, False),
            (js_url, 'text/javascript; charset=utf-8', js, True),
            (css_url, 'text/css; charset=utf-8', css, True),
        ] + [(url, 'text/javascript; charset=utf-8', data, True) for url, data in lazy]
    else:
        sys.exit('usage: embed-www.py OUTPUT INDEX.html APP.js APP.css META.json | OUTPUT --none')

    out = ['/* Generated by src/master/embed-www.py from www/: do not edit. */\n',
           f'#define WWW_BUILT {1 if built else 0}\n']
    rows = []
    for i, (path, ctype, data, immutable) in enumerate(assets):
        # mtime=0: the same bundle gives the same bytes on every build
        gz = gzip.compress(data, compresslevel=9, mtime=0)
        h = digest(data)
        out.append(c_bytes(f'www_data_{i}', data))
        # index.html (i == 0) is a template www.c renders per master: sent as is
        if i and len(gz) < len(data):
            out.append(c_bytes(f'www_gz_{i}', gz))
            gz_ref, gz_len = f'www_gz_{i}', len(gz)
        else:
            gz_ref, gz_len = 'NULL', 0
        rows.append(f'\t{{{c_str(path)}, {c_str(ctype)}, www_data_{i}, {len(data)}, '
                    f'{gz_ref}, {gz_len}, {c_str(chr(34) + h + chr(34))}, '
                    f'{c_str(chr(34) + h + ".gz" + chr(34))}, '
                    f'{"true" if immutable else "false"}}},\n')
    out.append('static const struct www_asset www_assets[] = {\n')
    out.extend(rows)
    out.append('};\n')
    with open(output, 'w', encoding='utf-8') as f:
        f.write(''.join(out))


main()
