worker { name = "w1", password = secret("w1") }
builder { name = "b", workers = { "w1" }, steps = { shell { command = "make" } },
  next_worker = function(builder, workers, request) return workers[1].name end,
  next_build = function(builder, requests) return requests[#requests].id end }
prioritize_builders = function(builders) return { "b" } end
