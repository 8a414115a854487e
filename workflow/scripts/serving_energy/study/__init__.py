"""The study itself: its vocabulary (engines, providers, configurations), the checks a config must
pass, the run order, what a run's identity is, and where each result lives. Plain values only."""
