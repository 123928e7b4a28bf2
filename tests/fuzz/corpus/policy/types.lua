include_admins = true
max_rate = 2.5
concurrency = 4
adaptive = false
hub = "https://hub.example.org"
