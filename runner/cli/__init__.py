"""The commands: `python -m runner` (Hydra), `python -m runner.collect`, and the checks of
command-line overrides that run before Hydra composes a config."""
