worker { name = "w", password = secret("w") }
builder { name = "b", workers = { "w" }, steps = { shell { command = "true" } } }
codebase_generator = { ["git://a"] = "a", ["git://b"] = "b" }
codebase_generator = function(c) return c.repository and c.repository:match("([^/]+)$") end
single_branch { name = "s", builders = { "b" }, codebases = { a = { repository = "git://a", branch = "main" }, b = {} } }
any_branch { name = "x", builders = { "b" }, codebases = { [""] = { revision = "r" } } }
periodic { name = "p", builders = { "b" }, period = 60, project = "p", codebases = { a = {} } }
force_scheduler { name = "f", codebases = { a = { branch = "main" }, b = { repository = "git://b" } } }
force_scheduler { name = "g", codebases = { "x", "y" } }
triggerable { name = "t", builders = { "b" }, codebases = { a = { repo = 1 } } }
