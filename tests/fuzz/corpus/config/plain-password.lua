worker { name = "w1", password = "hunter2" }
