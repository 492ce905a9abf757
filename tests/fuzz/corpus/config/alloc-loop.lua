local t = {} while true do t[#t + 2] = string.rep("y", 1e6) .. #t end
