#!/bin/bash
# one point, then hangs: the runner's timeout ends it
echo 1..2
echo "ok 1 - a"
exec sleep 60
