#!/bin/bash
# a well-formed stream, plan last (as tests/unit/tap.h and tests/e2e/lib.sh print it)
echo "ok 1 - a"
echo "# a diagnostic"
echo "ok 2 - b"
echo "ok 3 - c"
echo 1..3
