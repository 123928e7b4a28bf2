max_actions = "lots"
protected_users = { 1, 2 }
