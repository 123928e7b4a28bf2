return {
  summary = "has a syntax error on line 3",
  plan = function(ctx) local x = = 1 end,
  actions = {},
}
