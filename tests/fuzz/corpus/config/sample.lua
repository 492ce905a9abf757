-- master.lua: the Kiln master's configuration (Lua 5.4, sandboxed).
-- Check it with `kiln checkconfig BASEDIR`; every key is described in
-- docs/CONFIG.md.  Your own variables must be 'local'.

title = "Kiln"

-- The web UI and REST API.  Port 0 picks any free port.
http = { listen = "127.0.0.1:8010" }

-- Where workers connect.
workers_listen = "127.0.0.1:9989"

-- State: "sqlite:PATH" (relative to this directory).
database = "sqlite:state.sqlite"

-- A worker and its password.  Passwords never live in this file:
-- secret("worker1") reads secrets/worker1 next to it, or else the
-- environment variable KILN_SECRET_WORKER1.
worker { name = "worker1", password = secret("worker1"), max_builds = 1 }

-- A builder runs its steps in order on one of its workers.
builder {
  name = "hello",
  workers = { "worker1" },
  description = "a first builder: replace its steps with your own",
  tags = { "sample" },
  steps = {
    -- a list command runs without a shell
    shell { name = "greet", command = { "echo", "hello from Kiln" },
            halt_on_failure = true },
    -- a string command runs with /bin/sh -c
    shell { name = "describe", command = "uname -a && pwd",
            env = { LC_ALL = "C" }, timeout = 60 },
  },
}

-- A "force build" button for the builders listed.
force_scheduler { name = "force", builders = { "hello" } }
