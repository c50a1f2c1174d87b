"""Data: on-disk formats, the simulated world, the multi-agent sample, preprocessing."""
