days = 
