exclude = function() while true do end end
