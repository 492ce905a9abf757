latent_max_count = 2
worker { name = "c1", password = secret("pw"), latent = {
  start = { "sh", "-c", "exec kiln-worker start w" }, stop = "echo stop",
  idle_timeout = 30, start_timeout = 5, stop_timeout = 7 } }
worker { name = "k1", password = secret("pw"), latent = {
  container = { engine = "docker", image = "img", run_args = { "--cpus=1" } } } }
local_worker { name = "loc", max_builds = 2, properties = { a = "b" } }
builder { name = "b", workers = { "c1", "k1", "loc" }, steps = { shell { command = "true" } } }
