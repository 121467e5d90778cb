"""Dense inputs -> InputEvents: the blocked conversion against a plain `np.nonzero` one."""

from __future__ import annotations

import numpy as np
import pytest

from runner.kernel import batch as batch_module
from runner.kernel.batch import InputEvents
from runner.network import dynapsim as network_module
from runner.network.dynapsim import dynapsim_net_from_spec


def events_by_nonzero(x: np.ndarray, n_instances: int) -> InputEvents:
    """The straightforward conversion (one `np.nonzero` over the whole array)."""
    x = np.asarray(x, dtype=np.float32)
    streams = x[None] if x.ndim == 2 else x
    n_streams, n_steps, n_channels = streams.shape
    stream_ids, steps, channels = np.nonzero(streams)
    counts = np.zeros((n_streams, n_steps), dtype=np.int64)
    np.add.at(counts, (stream_ids, steps), 1)
    step_ptr = np.zeros((n_streams, n_steps + 1), dtype=np.int64)
    step_ptr[:, 1:] = np.cumsum(counts.reshape(-1)).reshape(n_streams, n_steps)
    step_ptr[1:, 0] = step_ptr[:-1, -1]
    shared = x.ndim == 2
    return InputEvents(
        step_ptr=step_ptr,
        channel=channels.astype(np.int32),
        value=streams[stream_ids, steps, channels],
        instance_stream=np.zeros(n_instances, np.int32) if shared
        else np.arange(n_instances, dtype=np.int32),
        n_channels=n_channels,
    )  # fmt: skip


def assert_same_events(a: InputEvents, b: InputEvents) -> None:
    for name in ("step_ptr", "channel", "value", "instance_stream"):
        got, expected = getattr(a, name), getattr(b, name)
        assert got.dtype == expected.dtype, name
        np.testing.assert_array_equal(got, expected, err_msg=name)
    assert a.n_channels == b.n_channels


def random_inputs(shape: tuple[int, ...], kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "binary":
        return (rng.random(shape) < 0.1).astype(np.float32)
    if kind == "bool":  # read without a float32 copy
        return rng.random(shape) < 0.1
    if kind == "counts":  # multi-spike steps
        return rng.poisson(0.4, shape).astype(np.float64)
    if kind == "int_counts":
        return rng.poisson(0.4, shape).astype(np.int16)
    analog = rng.normal(0.0, 2.0, shape)  # signed currents (no weights_in), some -0.0
    analog[rng.random(shape) < 0.6] = 0.0
    analog[rng.random(shape) < 0.05] = -0.0
    analog[rng.random(shape) < 0.05] = 1e-50  # zero in float32: no event
    return analog


@pytest.mark.parametrize("kind", ["binary", "bool", "counts", "int_counts", "analog"])
@pytest.mark.parametrize("shape", [(37, 5), (6, 37, 5), (1, 1, 1), (4, 20, 300)])
@pytest.mark.parametrize("block", [1, 64, 1 << 24])
def test_blocked_conversion_equals_nonzero(monkeypatch, kind, shape, block):
    monkeypatch.setattr(batch_module, "_DENSE_BLOCK", block)  # one stream or many per block
    x = random_inputs(shape, kind, seed=sum(shape))
    n_instances = shape[0] if len(shape) == 3 else 3
    events = InputEvents.from_dense(x, n_instances)
    assert_same_events(events, events_by_nonzero(x, n_instances))
    assert events.value.size > 0 or not x.any()
    for stream in range(events.step_ptr.shape[0]):  # and it round-trips
        dense = x if len(shape) == 2 else x[stream]
        np.testing.assert_array_equal(events.dense(stream), dense.astype(np.float32))


def test_streams_without_any_event():
    x = np.zeros((3, 10, 4), np.float32)
    x[1, 7, 2] = 2.0
    events = InputEvents.from_dense(x, 3)
    assert_same_events(events, events_by_nonzero(x, 3))
    np.testing.assert_array_equal(events.step_ptr[2], np.ones(11))


def small_network():
    rng = np.random.default_rng(5)
    return dynapsim_net_from_spec(
        1, [0] * 10, weights_in=rng.integers(0, 3, (4, 10)), percent_mismatch=0.2, seed=3
    )


def test_simulate_reads_boolean_and_integer_spikes_as_their_float_values():
    net = small_network()
    spikes = np.random.default_rng(1).random((3, 80, 4)) < 0.2
    expected = net.simulate(spikes.astype(np.float32), 3, backend="reference").spike_counts
    assert expected.sum() > 0
    for x in (spikes, spikes.astype(np.int8), spikes.astype(np.float64)):
        np.testing.assert_array_equal(net.simulate(x, 3, backend="reference").spike_counts,
                                      expected)  # fmt: skip


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e39])  # 1e39 overflows float32
def test_non_finite_inputs_are_rejected_before_any_simulation(bad, monkeypatch):
    net = small_network()
    x = np.zeros((2, 50, 4))
    x[1, 30, 2] = bad
    monkeypatch.setattr(network_module, "get_backend", lambda name: pytest.fail("simulated"))
    with pytest.raises(ValueError, match=r"x must be finite \(no NaN/inf\)"):
        net.simulate(x, 2)
    with pytest.raises(ValueError, match=r"x must be finite"):
        net.evolve(x[1])


def test_concatenated_groups_keep_each_instance_its_stream():
    rng = np.random.default_rng(9)
    per_instance = random_inputs((2, 30, 4), "counts", seed=1)
    shared = random_inputs((30, 4), "binary", seed=2)
    joined = InputEvents.concatenate(
        [InputEvents.from_dense(per_instance, 2), InputEvents.from_dense(shared, 3)]
    )
    expected = [per_instance[0], per_instance[1], shared, shared, shared]
    assert joined.instance_stream.tolist() == [0, 1, 2, 2, 2]
    for instance, x in enumerate(expected):
        np.testing.assert_array_equal(joined.dense(joined.instance_stream[instance]),
                                      x.astype(np.float32))  # fmt: skip
    other = InputEvents.from_dense(rng.random((31, 4)) < 0.5, 1)
    with pytest.raises(ValueError, match="different step counts"):
        InputEvents.concatenate([InputEvents.from_dense(shared, 1), other])
