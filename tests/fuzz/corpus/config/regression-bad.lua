regression = { x = { increase = -1, increase_pct = "5" }, [1] = { }, y = 3 }
