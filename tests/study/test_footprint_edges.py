"""The memory estimate covers the nominal call over every dataset sample, and never suggests
a chunk_size that cannot split a chip."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runner.study.footprint import (
    check_chunks_fit,
    check_nominals_fit,
    chunk_footprint,
    nominal_footprints,
)
from runner.study.plan import ExperimentError
from runner.study.prepare import prepare
from runner.study.schema import register_configs
from tests.helpers.config import compose_config

register_configs()
TASK = ["task=patterns", "backend=reference", "sweep.n_samples=2", "stimulus.patterns.n_samples=40",
        "stimulus.patterns.n_steps=30", "stimulus.patterns.jitter_steps=2",
        "readout.per_chip=false"]  # fmt: skip


def test_the_nominal_call_over_every_sample_is_checked() -> None:
    plan = prepare(compose_config(TASK))
    (points, nominal), = nominal_footprints(plan, plan.points).items()
    assert nominal.n_instances == 40  # ridge: the nominal runs every sample, train and test
    chunk = chunk_footprint(plan, plan.chunks[0])
    assert nominal.total > chunk.total  # 40 nominal rows against 2 chips x 12 test samples
    check_nominals_fit(plan, plan.points, nominal.total)  # fits exactly
    with pytest.raises(ExperimentError, match=r"the nominal instances of sweep points 0-0 run "
                                              r"40 trials \(samples\) x 1024 neurons"):
        check_nominals_fit(plan, plan.points, nominal.total - 1)


def test_no_chunk_size_is_suggested_when_not_even_one_chip_fits() -> None:
    """5 trials per chip: room for 3 rows is less than one chip, which no chunk_size splits."""
    plan = prepare(compose_config(["backend=reference", "network.neurons_per_core=16",
                                   "stimulus.trials=5", "sweep.n_samples=4", "chunk_size=20"]))
    chunk = chunk_footprint(plan, plan.chunks[0])
    assert chunk.n_instances == 20
    with pytest.raises(ExperimentError) as refused:
        check_chunks_fit(plan, replace(chunk, n_instances=3).total)
    message = str(refused.value)
    assert "chunk_size" not in message.split("; use ")[1]
    assert "(one chip's 5 rows alone need" in message and "a chunk holds whole chips" in message
    with pytest.raises(ExperimentError, match=r"a smaller chunk_size \(at most about 7 fit\)"):
        check_chunks_fit(plan, replace(chunk, n_instances=7).total)
