titel = "x"
