artifacts = { max_bytes = "10 GiB", keep_days = 30, keep_builds = 50 }
