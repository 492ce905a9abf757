local t = {} for i = 1, 100000 do t = { t } end
worker { name = "w1", password = secret("w1"), max_builds = t }
