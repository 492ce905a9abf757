#!/bin/bash
# a failing point, yet exit status 0
echo 1..2
echo "ok 1 - a"
echo "not ok 2 - b"
exit 0
