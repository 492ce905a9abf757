#!/bin/bash
# a failing point and exit status 1 (tap.h's way): one failure, not two
echo "ok 1 - a"
echo "not ok 2 - b"
echo 1..2
exit 1
