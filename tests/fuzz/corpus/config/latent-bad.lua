worker { name = "c1", password = secret("pw"), latent = { start = { "a", 3 }, container = { } } }
local_worker { name = "..", password = secret("pw") }
latent_max_count = -1
