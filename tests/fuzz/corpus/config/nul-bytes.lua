shell { command = "a\0b" }
worker { name = "a\0", password = secret("w1") }
