"""Batches for the kernel tests, built directly from the shared test cases (tests/cases.py).

Deliberately independent of runner.physics.spec: per-core current lists are expanded to per-neuron
float32 arrays here, so these tests exercise only the backends.
"""

from __future__ import annotations

import numpy as np

from runner.kernel.batch import Batch, InputEvents, Variant
from runner.physics.mismatch import MismatchModel
from runner.physics.parameters import DEFAULT_CURRENTS, DEFAULT_DT, DEFAULT_ISCALE, DEFAULT_LAYOUT
from tests.helpers.cases import Case

__all__ = ["nominal_for", "batch_from_case", "small_batch"]


def nominal_for(
    core_map: np.ndarray, per_core: dict[str, list] | None = None
) -> dict[str, np.ndarray]:
    """name -> (N,) float32: defaults, overridden by per-core lists (scalar or per-neuron)."""
    core_map = np.asarray(core_map)
    nominal = {name: np.full(core_map.size, value, np.float32)
               for name, value in {**DEFAULT_CURRENTS, **DEFAULT_LAYOUT}.items()}  # fmt: skip
    for name, values in (per_core or {}).items():
        for core, value in enumerate(values):
            nominal[name][core_map == core] = np.asarray(value, np.float32)
    return nominal


def batch_from_case(
    case: Case,
    n_instances: int = 3,
    mismatch: MismatchModel | None = None,
    bin_width: int = 0,
    record_instances: tuple[int, ...] = (),
    first_instance: int = 0,
) -> Batch:
    spec = case.spec
    core_map = np.asarray(spec["core_map"], np.int32)
    per_core = {name: spec[name] for name in DEFAULT_CURRENTS if name in spec}
    w_in, w_rec = spec.get("weights_in"), spec.get("weights_rec")
    variant = Variant(
        nominal=nominal_for(core_map, per_core),
        Iscale=spec.get("Iscale", DEFAULT_ISCALE),
        mismatch=mismatch or MismatchModel(percent=spec.get("percent_mismatch", 0.0)),
    )
    return Batch(
        variants=(variant,),
        core_map=core_map,
        weights_in=None if w_in is None else np.asarray(w_in, np.float32),
        weights_rec=None if w_rec is None else np.asarray(w_rec, np.float32),
        dt=spec.get("dt", DEFAULT_DT),
        seed=spec.get("seed", 0),
        instances=np.arange(first_instance, first_instance + n_instances, dtype=np.uint64),
        instance_variant=np.zeros(n_instances, np.int32),
        inputs=InputEvents.from_dense(case.x, n_instances),
        bin_width=bin_width,
        record_instances=record_instances,
    )


def small_batch(
    n_neurons: int = 32,
    n_steps: int = 200,
    n_instances: int = 4,
    mismatch: MismatchModel | None = None,
    input_scale: float = 1.0,
    variants: tuple[Variant, ...] | None = None,
    **overrides,
) -> Batch:
    """A recurrent E/I network with Poisson input and a different input stream per instance.

    With `variants`, instance b belongs to variant b % len(variants) (a packed sweep).
    """
    rng = np.random.default_rng(n_neurons * 1000 + n_steps)
    core_map = (np.arange(n_neurons) * 2 // n_neurons).astype(np.int32)
    w_rec = (rng.random((n_neurons, n_neurons)) < 0.2) * rng.integers(-2, 3, (n_neurons,) * 2)
    x = (rng.random((n_instances, n_steps, 8)) < 0.15).astype(np.float32)
    default = Variant(
        nominal=nominal_for(core_map, {"Idc": [2e-10, 1e-10]}),
        Iscale=DEFAULT_ISCALE,
        mismatch=mismatch or MismatchModel(percent=0.2),
    )
    variants = variants or (default,)
    fields = dict(
        variants=variants,
        core_map=core_map,
        weights_in=(rng.integers(0, 4, (8, n_neurons)) * input_scale).astype(np.float32),
        weights_rec=w_rec.astype(np.float32),
        dt=DEFAULT_DT,
        seed=99,
        instances=np.arange(10, 10 + n_instances, dtype=np.uint64),
        instance_variant=(np.arange(n_instances) % len(variants)).astype(np.int32),
        inputs=InputEvents.from_dense(x, n_instances),
        bin_width=30,
        record_instances=(1, n_instances - 1),
    )
    fields.update(overrides)
    return Batch(**fields)
