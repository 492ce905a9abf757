http = { listen = "[::1:99999" }
workers_listen = "localhost:-1"
