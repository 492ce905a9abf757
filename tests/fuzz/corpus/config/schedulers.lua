worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, collapse_requests = true, cancel_superseded = "running",
  steps = { shell { command = "true" }, apply_patch { tool = "git" },
            trigger { schedulers = { "t" }, wait_for_finish = true, set_properties = { x = 1 } } } }
collapse_requests = function(b, o, n) return o.branch == n.branch end
single_branch { name = "s", builders = { "b" }, tree_stable_timer = 5,
  change_filter = { branch = { "main" }, repository_re = "^https?://", filter_fn = function(c) return #c.files > 0 end },
  file_is_important = { "*.c" }, only_important = true }
any_branch { name = "a", builders = { "b" }, file_is_important = function(c) return true end }
periodic { name = "p", builders = { "b" }, period = 60 }
nightly { name = "n", builders = { "b" }, cron = "0 3 * * 1-5", only_if_changed = true }
triggerable { name = "t", builders = { "b" } }
dependent { name = "d", builders = { "b" }, upstream = "s" }
force_scheduler { name = "f", params = { { name = "n", type = "int", min = 1, max = 9, default = 2 },
  { name = "c", type = "choice", choices = { "x", "y" } } } }
