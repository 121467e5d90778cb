"""A study from config to tables: the config schema, networks and stimuli from configs,
the sweep and its chunks, the plan, simulating chunks, and the run folder that keeps them."""
