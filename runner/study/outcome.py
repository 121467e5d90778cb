"""What a run (or a collect) produced: its tables, and what this invocation simulated."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Outcome"]


@dataclass
class Outcome:
    """The tables of a run folder; the simulation fields say what this invocation added
    (none for `collect`, which merges the chunks that jobs simulated)."""

    instances: pd.DataFrame  # one row per (point, chip, trial)
    chips: pd.DataFrame  # one row per (point, chip): metrics averaged over its trials
    nominal: pd.DataFrame  # (trial, neuron) table of each point's nominal instance
    summary: pd.DataFrame
    cores: pd.DataFrame = field(default_factory=pd.DataFrame)  # (point, chip, core) rows
    backend: str | None = None  # the backend that simulated; None: nothing resolved one
    simulated: int = 0  # rows simulated by this invocation (not resumed)
    seconds: float = 0.0  # wall time of those simulations
    neuron_steps: int = 0
