"""The Python API says which backend ran a simulation."""

from __future__ import annotations

import numpy as np

from runner import dynapsim_net_from_spec
from runner.kernel.backends import resolve_backend


def test_the_result_names_the_backend_that_ran() -> None:
    net = dynapsim_net_from_spec(1, np.zeros(4, int), weights_in=np.eye(4), percent_mismatch=0.1)
    x = np.ones((20, 4), np.float32)
    assert net.simulate(x, 2, backend="reference").backend == "reference"
    assert net.simulate(x, 2, backend="auto").backend == resolve_backend("auto") != "auto"
