#!/bin/bash
# one point skipped
echo "ok 1 - a"
echo "ok 2 - b # SKIP frobnicator not installed"
echo 1..2
