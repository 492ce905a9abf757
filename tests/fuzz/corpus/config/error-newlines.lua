error(string.rep("line\n", 10000))
