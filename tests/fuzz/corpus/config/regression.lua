worker { name = "w1", password = secret("w1") }
regression = { build_duration = { increase_pct = 50 }, ["step_duration:compile"] = { increase = 30 } }
regression = { warnings = { increase = 0, increase_pct = 1.5 } }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "make" } },
  regression = { build_duration = { increase = 60 }, [""] = { increase = 1 } } }
