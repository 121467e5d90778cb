"""The objective says why chips cannot be measured (it used to say only how many)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from runner.analysis.objective import ObjectiveConfig, objective_value
from runner.cli.main import _why_unmeasured
from runner.study.outcome import Outcome


def outcome(nominal_rate: float) -> Outcome:
    chips = pd.DataFrame({"point": [0, 0, 0, 0], "nonfinite": [True, False, False, False],
                          "rate_rel_error": [np.nan, np.nan, np.nan, 0.1]})  # fmt: skip
    summary = pd.DataFrame({"point": [0], "nominal_mean_rate_hz": [nominal_rate]})
    return Outcome(pd.DataFrame(), chips, pd.DataFrame(), summary)


def test_a_silent_nominal_instance_is_named_as_the_cause() -> None:
    objective = ObjectiveConfig(metric="rate_rel_error", statistic="q95", direction="minimize")
    run = outcome(nominal_rate=0.0)
    result = objective_value(run.chips, objective)
    assert (result.n_excluded, result.n_nonfinite) == (3, 1)
    assert _why_unmeasured(result, objective, run) == (
        "1 non-finite (listed in summary.csv); 2 with a NaN rate_rel_error (the nominal "
        "instance of point 0 is silent (0 Hz), and rate_rel_error compares a chip's rates "
        "with it)"
    )
    active = outcome(nominal_rate=12.0)
    assert "silent chip" in _why_unmeasured(objective_value(active.chips, objective), objective,
                                            active)  # fmt: skip
