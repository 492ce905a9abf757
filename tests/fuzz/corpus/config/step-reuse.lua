worker { name = "w1", password = secret("w1") }
local s = shell { command = string.rep("x", 1 << 20) }
local l = {} for i = 1, 200 do l[i] = s end
for i = 1, 100 do builder { name = "b" .. i, workers = { "w1" }, steps = l } end
