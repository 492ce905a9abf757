#!/bin/bash
# a well-formed stream, plan first
echo 1..3
echo "ok 1 - a"
echo "ok 2 - b"
echo "ok 3 - c"
