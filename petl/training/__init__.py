"""The training side of petl: one Accelerate loop (`loop.py`) driven by `Learner`."""
