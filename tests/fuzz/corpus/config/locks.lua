worker { name = "w1", password = secret("w1") }
local compile = master_lock { name = "compile", max_count = 2 }
local disk = worker_lock { name = "disk", max_count = 1, max_count_for_worker = { w1 = 3 } }
builder { name = "b", workers = { "w1" }, locks = { compile:access("exclusive"), "disk" },
  steps = { shell { command = "make", locks = { master_lock { name = "x" }:access("counting", 1) } } } }
local bad = worker_lock { name = "bad", max_count_for_worker = { w9 = 0 } }
