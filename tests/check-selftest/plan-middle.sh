#!/bin/bash
# the plan between points
echo "ok 1 - a"
echo 1..2
echo "ok 2 - b"
