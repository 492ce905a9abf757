#!/bin/bash
# plans 4, runs 2, exits 0
echo 1..4
echo "ok 1 - a"
echo "ok 2 - b"
