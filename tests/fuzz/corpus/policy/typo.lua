dayz = 3
