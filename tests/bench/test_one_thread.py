"""bench/one_thread.py: the digest it prints is that of the run's reductions."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys

import pytest

from runner.kernel.backends import cpu
from tests.helpers import ROOT
from tests.helpers.markers import requires_compiler

BENCH = ROOT / "bench"


@pytest.fixture(scope="module")
def one_thread():
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("one_thread", BENCH / "one_thread.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(BENCH))


@requires_compiler
def test_the_printed_digest_is_that_of_any_threads_reductions(one_thread, capsys):
    one_thread.main(["--instances", "3", "--steps", "60", "--repeats", "1", "n256_one_core"])
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("n256_one_core") and "neuron-steps/s" in line
    from workloads import workload_by_name

    workload = workload_by_name("n256_one_core").with_steps(60)
    batch = workload.batch(workload.network(), workload.inputs(3), 3)
    result = cpu.run(batch, num_threads=2)
    assert result.spike_count.sum() > 0
    expected = one_thread.reductions_digest(result)
    assert line.split()[-1] == expected
    other_chips = cpu.run(dataclasses.replace(batch, seed=batch.seed + 1), num_threads=1)
    assert one_thread.reductions_digest(other_chips) != expected  # it sees the results
