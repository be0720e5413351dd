"""Training pieces shared by the recipes: schedules, optimisers, metrics, loops."""
