worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = {
  shell { command = "x", logfiles = { [1] = "a", stdio = { filename = "\0", follow = 1 } } } } }
