worker { name = "w1", password = secret("w1"), max_build = 2 }
