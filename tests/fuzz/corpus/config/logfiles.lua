worker { name = "w1", password = secret("w1") }
local s = shell { command = "make", lazylogfiles = true,
  logfiles = { side = "side.log", trace = { filename = "out/trace.log", follow = true } } }
builder { name = "b", workers = { "w1" }, steps = { s,
  compile { command = "make", logfiles = { c = "c.log", ["c_log"] = "d" } },
  shell { command = "x", logfiles = { l = "../x" } } } }
