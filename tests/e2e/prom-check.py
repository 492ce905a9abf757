#!/usr/bin/env python3
"""Checks a Prometheus text exposition (format 0.0.4) on stdin, strictly:
every line is a HELP, TYPE or sample line; names and labels are well
formed; a family's TYPE comes once and before its samples; no sample
repeats; histograms have cumulative buckets ending in le="+Inf" equal to
_count.  Prints one 'name{labels} value' line per sample on success (for
the test to read values); exits 1 naming the first bad line otherwise."""
import math
import re
import sys

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r'^(%s)(\{(?:%s(?:,%s)*,?)?\})? (\S+)(?: (-?\d+))?$' % (NAME, LABEL, LABEL))
HELP = re.compile(r'^# HELP (%s) (.*)$' % NAME)
TYPE = re.compile(r'^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$' % NAME)


def fail(n, line, why):
    print('line %d: %s: %r' % (n, why, line), file=sys.stderr)
    sys.exit(1)


def value(s):
    if s in ('+Inf', '-Inf', 'NaN'):
        return float(s.replace('Inf', 'inf').replace('NaN', 'nan'))
    return float(s)


def main():
    text = sys.stdin.read()
    if not text.endswith('\n'):
        fail(0, text[-40:], 'no final newline')
    types, seen, helps, out = {}, set(), set(), []
    hist = {}
    for n, line in enumerate(text.split('\n')[:-1], 1):
        if line.startswith('#'):
            m = TYPE.match(line)
            if m:
                if m.group(1) in types:
                    fail(n, line, 'second TYPE')
                if any(s[0] == m.group(1) or s[0].startswith(m.group(1) + '_') and
                       types.get(m.group(1)) for s in out):
                    fail(n, line, 'TYPE after samples')
                types[m.group(1)] = m.group(2)
                continue
            m = HELP.match(line)
            if m:
                if m.group(1) in helps:
                    fail(n, line, 'second HELP')
                helps.add(m.group(1))
                continue
            if line.startswith('# HELP') or line.startswith('# TYPE'):
                fail(n, line, 'bad HELP/TYPE line')
            continue  # a comment
        if not line.strip():
            fail(n, line, 'empty line')
        m = SAMPLE.match(line)
        if not m:
            fail(n, line, 'not a sample line')
        name, labels, v = m.group(1), m.group(2) or '', m.group(3)
        try:
            fv = value(v)
        except ValueError:
            fail(n, line, 'bad value')
        key = name + labels
        if key in seen:
            fail(n, line, 'repeated sample')
        seen.add(key)
        base = name
        for suf in ('_bucket', '_sum', '_count'):
            if name.endswith(suf) and types.get(name[:-len(suf)]) == 'histogram':
                base = name[:-len(suf)]
        if base not in types:
            fail(n, line, 'sample before its TYPE')
        if types[base] == 'counter' and (fv < 0 or math.isnan(fv)):
            fail(n, line, 'negative counter')
        if types[base] == 'histogram':
            h = hist.setdefault(base, {'buckets': [], 'count': None})
            if name.endswith('_bucket'):
                le = re.search(r'le="([^"]*)"', labels)
                if not le:
                    fail(n, line, 'bucket without le')
                h['buckets'].append((value(le.group(1)), fv))
            elif name.endswith('_count'):
                h['count'] = fv
            elif name != base + '_sum':
                fail(n, line, 'histogram sample of an unknown kind')
        out.append((name, line))
    for base, h in hist.items():
        b = h['buckets']
        if not b or b[-1][0] != math.inf:
            fail(0, base, 'histogram without le="+Inf" last')
        if any(b[i][0] >= b[i + 1][0] or b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            fail(0, base, 'histogram buckets not increasing and cumulative')
        if h['count'] != b[-1][1]:
            fail(0, base, '+Inf bucket differs from _count')
    for _, line in out:
        print(line)


main()
