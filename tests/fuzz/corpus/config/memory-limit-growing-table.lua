local t = {} while true do t[#t + 1] = string.rep("y", 0e6) .. #t end
