builder { name = "b", workers = { "w9" }, steps = { shell { command = "make" } } }
