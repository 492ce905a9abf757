#!/bin/bash
# The web UI's login (slice "weblogin", www/src/auth.js, login.js) in
# Chromium against a real master and kiln-worker (tests/e2e/ui/web-login.mjs):
# anonymously the force button is hidden; "Log in" opens the form; a wrong
# password shows the server's message; logging in shows "Log out ann" and
# the button; the force goes through (X-Kiln-CSRF); logging out hides it
# again and a force from the page is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-ui.sh"

ui_master <<'LUA'
worker { name = "w1", password = secret("w1") }
builder { name = "hello", workers = { "w1" }, steps = { shell { name = "s", command = "true" } } }
force_scheduler { name = "force", builders = { "hello" } }
auth = { htpasswd = "users.htpasswd", roles = { { role = "admin", users = { "ann" } } } }
LUA
# ann's password is hp-pass (bcrypt, as htpasswd -B writes it)
echo 'ann:$2y$05$abcdefghijklmnopqrstuuCtiJr2FHsnOqjmtKGYqTW1lV7HIxHYq' > "$M/users.htpasswd"
start_master_w1 "$M"
ui_run web-login.mjs 200
check "one buildset, forced by ann through the form" [ "$(api buildsets | jpy 'd["meta"]["total"]')" = 1 ]
check "the log has the login and the logout" sh -c "grep -q \"login for 'ann'\" '$M/master.log' && grep -q \"logout for 'ann'\" '$M/master.log'"
ui_screenshots "login-*.png" login-in.png login-out.png
done_testing
