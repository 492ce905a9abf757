worker { name = "w1", password = secret("w1") }
worker { name = "w1", password = secret("w1") }
