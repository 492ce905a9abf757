artifacts = { max_bytes = "18446744073709551615 TiB", keep_days = 1e309 }
artifacts = { max_bytes = 99999999999999999999 }
