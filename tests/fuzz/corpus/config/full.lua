title = "My CI"
title_url = "https://example.org/"
url = "http://ci.example.org:8010/"
http = { listen = "0.0.0.0:0" }
workers_listen = "[::1]:19989"
database = "sqlite:state.sqlite"
local w = worker { name = "w1", password = secret("w1"), max_builds = 3 }
local compile = shell { name = "compile", command = { "make", "-j", 4 },
  env = { CFLAGS = "-O2", UNSET_ME = false, JOBS = 4, TOKEN = secret("w1") },
  workdir = "build/sub", timeout = 0, max_time = 3600.5, halt_on_failure = true,
  flunk_on_failure = false, warn_on_failure = true, always_run = true }
local b = builder { name = "hello", workers = { w }, description = "d",
  tags = { "c", "fast" }, builddir = "hello-dir", steps = { compile, shell { command = "make test" } } }
force_scheduler { name = "go", builders = { b } }
force_scheduler { name = "all" }
