#!/bin/bash
# the e2e library's own skip: a missing dependency
. "$(dirname "$0")/../e2e/lib.sh"
require_cmd sh kiln-selftest-no-such-command
ok "never reached"
done_testing
