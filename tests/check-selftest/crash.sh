#!/bin/bash
# every planned point passes, then the producer dies of SIGSEGV
echo 1..2
echo "ok 1 - a"
echo "ok 2 - b"
kill -SEGV $$
