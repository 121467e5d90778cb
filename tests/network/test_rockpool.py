"""Networks to and from Rockpool: round trips, spike-for-spike runs, spec files, bad input.

Rockpool modules are built by Rockpool's own `dynapsim_net_from_spec` (with its mismatch,
seeded through NumPy's global RNG, which is what it draws from), and "trained" ones get
random per-neuron currents and float weights, as gradient descent would leave them.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from runner import DynapSimNetwork, dynapsim_net_from_spec, from_rockpool, save_network_spec
from runner.physics.parameters import CURRENT_NAMES, DEFAULT_CURRENTS, PARAMETER_NAMES
from runner.physics.specfile import load_spec_file
from tests.helpers.cases import Case, case_by_name
from tests.helpers.cli import main_in_process
from tests.helpers.markers import requires_compiler, requires_gpu, requires_rockpool

RECURRENT_MULTI_CORE = ["two_core_recurrent_ei", "four_core_per_neuron_currents", "dt_1e-4"]
LONE_DYNAPSIM = "no_weights_in_analog_input"
BACKENDS = ["reference", pytest.param("cpu", marks=requires_compiler)]
ALL_BACKENDS = [*BACKENDS, pytest.param("cuda", marks=requires_gpu)]
conformance = requires_rockpool  # Rockpool and JAX: the `conformance` extra


@pytest.fixture(scope="module")
def rockpool() -> Any:
    import rockpool.devices.dynapse

    return rockpool.devices.dynapse


def rockpool_module(rockpool: Any, case: Case, with_mismatch: bool) -> Any:
    """Rockpool's own network of a case (its mismatch drawn from a seeded global RNG).

    Rockpool draws the mismatch of a new module through functions that XLA compiles anew
    for every module, one per parameter (tens of seconds a module): they run uncompiled
    here (`jax.disable_jit`, the same operations one by one), and each case's mismatched
    module is built once, every caller getting a copy of it.
    """
    if with_mismatch:
        if case.name not in _MISMATCHED:
            import jax

            with jax.disable_jit():
                _MISMATCHED[case.name] = _build_module(rockpool, case, with_mismatch=True)
        return copy.deepcopy(_MISMATCHED[case.name])
    return _build_module(rockpool, case, with_mismatch=False)


_MISMATCHED: dict[str, Any] = {}


def _build_module(rockpool: Any, case: Case, with_mismatch: bool) -> Any:
    spec = case.spec
    currents = {name: spec.get(name) or [DEFAULT_CURRENTS[name]] * spec["n_cluster"]
                for name in CURRENT_NAMES}  # fmt: skip
    np.random.seed(2026)
    return rockpool.dynapsim_net_from_spec(
        spec["n_cluster"], np.asarray(spec["core_map"]), spec["weights_in"], spec["weights_rec"],
        **currents, dt=spec.get("dt", 1e-3),
        percent_mismatch=spec["percent_mismatch"] if with_mismatch else None,
    )  # fmt: skip


def dynapsim_layer(module: Any) -> Any:
    return module if type(module).__name__ == "DynapSim" else module[1]


def trained(module: Any, seed: int) -> Any:
    """The module as training leaves it: every current moved per neuron, float weights."""
    rng = np.random.default_rng(seed)
    layer = dynapsim_layer(module)
    for name in CURRENT_NAMES:
        values = np.asarray(getattr(layer, name))
        moved = values * np.exp(0.3 * rng.standard_normal(values.shape))
        setattr(layer, name, moved.astype(np.float32))
    w_rec = np.asarray(layer.w_rec)
    w_rec = w_rec + 0.4 * rng.standard_normal(w_rec.shape) * (w_rec != 0)
    layer.w_rec = w_rec.astype(np.float32)
    if layer is not module:
        weights_in = np.asarray(module[0].weight)
        module[0].weight = (weights_in + rng.uniform(0.0, 0.7, weights_in.shape)).astype(np.float32)
    return module


def module_attributes(module: Any) -> dict[str, np.ndarray]:
    """Everything that sets a Rockpool DynapSim network's output, as float32 arrays."""
    layer = dynapsim_layer(module)
    names = (*PARAMETER_NAMES, "w_rec", "Iscale", "dt")
    attributes = {name: np.asarray(getattr(layer, name), np.float32) for name in names}
    if layer is not module:
        attributes["weight"] = np.asarray(module[0].weight, np.float32)
    return attributes


def their_spikes(module: Any, x: np.ndarray) -> np.ndarray:
    spikes, _, _ = module(x)
    return np.asarray(spikes)[0]


_THEIR_SPIKES: dict[tuple, np.ndarray] = {}


def their_spikes_once(key: tuple, module: Any, x: np.ndarray) -> np.ndarray:
    """`their_spikes` of a module that `key` builds the same way each time (a case, trained
    with a seed or not): Rockpool runs it once for every backend compared with it."""
    if key not in _THEIR_SPIKES:
        _THEIR_SPIKES[key] = their_spikes(module, x)
    return _THEIR_SPIKES[key]


@conformance
@pytest.mark.parametrize("chip", [0, 5])
def test_network_to_module_to_network_keeps_the_chip(rockpool: Any, chip: int) -> None:
    case = case_by_name("four_core_per_neuron_currents")
    net = dynapsim_net_from_spec(**case.spec, Iw_ahp=[1e-12, 2e-12, 3e-12, 4e-12])
    module = net.to_rockpool(chip)
    with pytest.warns(UserWarning, match="initial currents are not its Io parameter"):
        back = from_rockpool(module, core_map=case.spec["core_map"])  # chip Io != nominal Io

    ours, theirs = net.parameters([chip]), back.parameters([0])
    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(theirs[name][0], ours[name][0], err_msg=name)
    assert not np.array_equal(ours["Idc"], net.parameters([chip + 1])["Idc"])  # chips differ
    np.testing.assert_array_equal(back.spec.weights_in, net.spec.weights_in)
    np.testing.assert_array_equal(back.spec.weights_rec, net.spec.weights_rec)
    np.testing.assert_array_equal(back.spec.core_map, net.spec.core_map)
    assert (back.spec.n_cluster, back.spec.Iscale, back.spec.dt) == (4, net.spec.Iscale, 1e-3)
    assert back.spec.mismatch.percent == 0.0
    # the module's currents start at the nominal Io, as a run here does
    nominal_io = net.spec.nominal["Io"].astype(np.float32)
    np.testing.assert_array_equal(np.asarray(dynapsim_layer(module).imem), nominal_io)


@conformance
@pytest.mark.parametrize("name", ["two_core_recurrent_ei", LONE_DYNAPSIM])
def test_module_to_network_to_module_is_the_same_module(rockpool: Any, name: str) -> None:
    case = case_by_name(name)
    module = trained(rockpool_module(rockpool, case, with_mismatch=True), seed=1)
    with pytest.warns(UserWarning, match="initial currents are not its Io parameter"):
        again = from_rockpool(module, core_map=case.spec["core_map"]).to_rockpool(0)

    assert type(again) is type(module)
    ours, theirs = module_attributes(again), module_attributes(module)
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


@conformance
@pytest.mark.parametrize(
    "name", ["two_core_recurrent_ei", "four_core_per_neuron_currents", "dt_1e-4", LONE_DYNAPSIM]
)
def test_to_rockpool_is_the_network_rockpool_builds_from_the_spec(rockpool: Any, name: str) -> None:
    case = case_by_name(name)
    net = dynapsim_net_from_spec(**{**case.spec, "percent_mismatch": 0.0})
    ours = module_attributes(net.to_rockpool(0))
    theirs = module_attributes(rockpool_module(rockpool, case, with_mismatch=False))
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


@conformance
def test_to_rockpool_keeps_iw_ahp_that_rockpool_drops(rockpool: Any) -> None:
    case = case_by_name("strong_adaptation")
    net = dynapsim_net_from_spec(**{**case.spec, "percent_mismatch": 0.0})
    layer = dynapsim_layer(net.to_rockpool(0))
    dropped = dynapsim_layer(rockpool_module(rockpool, case, with_mismatch=False))
    np.testing.assert_array_equal(np.asarray(layer.Iw_ahp), np.float32(case.spec["Iw_ahp"][0]))
    default = np.float32(DEFAULT_CURRENTS["Iw_ahp"])
    np.testing.assert_array_equal(np.asarray(dropped.Iw_ahp), default)


@conformance
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", [*RECURRENT_MULTI_CORE, LONE_DYNAPSIM])
def test_imported_network_spikes_as_rockpool(rockpool: Any, name: str, backend: str) -> None:
    """A module built by Rockpool runs the same here, spike for spike."""
    case = case_by_name(name)
    module = rockpool_module(rockpool, case, with_mismatch=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="from_rockpool")
        net = from_rockpool(module, core_map=case.spec["core_map"])
    spikes, _, _ = net.evolve(case.x, backend=backend)

    assert spikes.sum() > 0, "a network that never spikes tests nothing"
    np.testing.assert_array_equal(spikes, their_spikes_once((name, "built"), module, case.x))


@conformance
@pytest.mark.parametrize("name", RECURRENT_MULTI_CORE)
def test_module_mismatched_by_rockpool_is_its_chip_from_its_io(rockpool: Any, name: str) -> None:
    """Rockpool's mismatch moves Io after the state took the built one: the import warns,
    and is exact from the initial currents on (the Rockpool module started at its Io)."""
    case = case_by_name(name)
    module = rockpool_module(rockpool, case, with_mismatch=True)
    with pytest.warns(UserWarning, match="initial currents are not its Io parameter"):
        net = from_rockpool(module, core_map=case.spec["core_map"])
    layer = dynapsim_layer(module)
    np.testing.assert_array_equal(net.parameters([0])["Idc"][0], np.asarray(layer.Idc))
    for state in ("iampa", "iahp", "imem"):
        setattr(layer, state, np.asarray(layer.Io))
    spikes, _, _ = net.evolve(case.x)

    np.testing.assert_array_equal(spikes, their_spikes(module, case.x))


@conformance
@pytest.mark.parametrize("backend", ALL_BACKENDS)
@pytest.mark.parametrize("name", ["two_core_recurrent_ei", "four_core_per_neuron_currents",
                                  LONE_DYNAPSIM])  # fmt: skip
def test_trained_network_spikes_as_rockpool(rockpool: Any, name: str, backend: str) -> None:
    """Per-neuron currents and float weights (not quantized) are imported exactly."""
    case = case_by_name(name)
    module = trained(rockpool_module(rockpool, case, with_mismatch=False), seed=2)
    net = from_rockpool(module, core_map=case.spec["core_map"])
    assert net.spec.weights_rec is not None and (net.spec.weights_rec % 1 != 0).any()
    spikes, _, _ = net.evolve(case.x, backend=backend)

    assert spikes.sum() > 0, "a network that never spikes tests nothing"
    np.testing.assert_array_equal(spikes, their_spikes_once((name, "trained", 2), module, case.x))


@conformance
def test_a_mismatch_level_draws_chips_around_the_module(rockpool: Any) -> None:
    case = case_by_name("two_core_recurrent_ei")
    module = trained(rockpool_module(rockpool, case, with_mismatch=False), seed=3)
    layer = dynapsim_layer(module)
    net = from_rockpool(module, core_map=case.spec["core_map"], percent_mismatch=0.3, seed=9)
    chips = net.parameters(range(400))

    for name in PARAMETER_NAMES:
        deviation = chips[name] / np.asarray(getattr(layer, name))[None] - 1.0
        assert abs(deviation.mean()) < 0.01, name
        assert abs(deviation.std() - 0.1) < 0.01, name  # sigma = percent / 3
    only_idc = from_rockpool(module, core_map=case.spec["core_map"], percent_mismatch=0.3,
                             seed=9, mismatch_parameters=["Idc"]).parameters([7])  # fmt: skip
    np.testing.assert_array_equal(only_idc["Idc"], chips["Idc"][7:8])
    np.testing.assert_array_equal(only_idc["Itau_mem"][0], np.asarray(layer.Itau_mem))


@conformance
def test_what_is_not_a_dynapsim_network_is_a_type_error(rockpool: Any) -> None:
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LinearJax

    n = 6
    for module in (
        LinearJax((3, n)),
        Sequential(LinearJax((3, n)), LinearJax((n, n))),
        Sequential(rockpool.DynapSim(n), LinearJax((n, n))),
        {"w_rec": np.zeros((n, n))},
    ):
        with pytest.raises(TypeError, match=r"a Rockpool DynapSim, or a Sequential of \(LinearJax"):
            from_rockpool(module)


@conformance
def test_bad_values_are_named(rockpool: Any) -> None:
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LinearJax

    n = 6
    layer = rockpool.DynapSim(n)
    with pytest.raises(ValueError, match=r"core_map must have one core id per neuron .*\(6,\)"):
        from_rockpool(layer, core_map=[0, 1, 2])
    with pytest.raises(ValueError, match="core_map must hold core ids"):
        from_rockpool(layer, core_map=[0, 0, 0, -1, 0, 0])
    biased = LinearJax((3, n), has_bias=True)
    biased.bias = np.full(n, 0.5, np.float32)
    with pytest.raises(ValueError, match="LinearJax has a non-zero bias"):
        from_rockpool(Sequential(biased, layer))
    net = from_rockpool(layer)
    with pytest.raises(ValueError, match="chip must be a mismatch instance id"):
        net.to_rockpool(-1)


@conformance
def test_a_sequential_of_one_dynapsim_is_that_dynapsim(rockpool: Any) -> None:
    from rockpool.nn.combinators import Sequential

    case = case_by_name(LONE_DYNAPSIM)
    layer = rockpool_module(rockpool, case, with_mismatch=False)
    alone, wrapped = from_rockpool(layer).parameters([0]), from_rockpool(Sequential(layer))
    assert wrapped.spec.weights_in is None
    np.testing.assert_array_equal(wrapped.spec.weights_rec, case.spec["weights_rec"])
    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(wrapped.parameters([0])[name], alone[name], err_msg=name)


def unequal_core_network() -> DynapSimNetwork:
    rng = np.random.default_rng(4)
    n = 11
    return dynapsim_net_from_spec(
        2, [0] * 4 + [1] * 7, weights_in=rng.uniform(-1, 2, (3, n)),
        weights_rec=rng.uniform(-1, 1, (n, n)) * (rng.random((n, n)) < 0.3),
        Idc=[rng.uniform(1e-10, 3e-10, 4), 2e-10], Itau_mem=[3e-12, rng.uniform(2e-12, 4e-12, 7)],
        C_mem=rng.uniform(2.5e-12, 3.5e-12, n), Iscale=2e-8, dt=5e-4, percent_mismatch=0.15,
    )  # fmt: skip


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_spec_file_holds_the_network(tmp_path: Path, suffix: str) -> None:
    """Per-neuron values of unequal cores in .json (once refused by save_spec_file)."""
    net = unequal_core_network()
    if suffix == ".npz":
        with pytest.raises(ValueError, match="cores of unequal size need a .json spec file"):
            save_network_spec(net, tmp_path / "net.npz")
        net = dynapsim_net_from_spec(**{**case_by_name("four_core_per_neuron_currents").spec})
    path = save_network_spec(net, tmp_path / f"net{suffix}")
    fields = load_spec_file(path)
    again = dynapsim_net_from_spec(**fields).spec

    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(again.nominal[name], net.spec.nominal[name], err_msg=name)
    np.testing.assert_array_equal(again.weights_in, net.spec.weights_in)
    np.testing.assert_array_equal(again.weights_rec, net.spec.weights_rec)
    np.testing.assert_array_equal(again.core_map, net.spec.core_map)
    assert (again.Iscale, again.dt, again.mismatch.percent) == (
        net.spec.Iscale, net.spec.dt, net.spec.mismatch.percent)  # fmt: skip
    if suffix == ".json":  # one number per core where each core's neurons share the value
        written = json.loads(path.read_text())
        assert written["Ipulse"] == [DEFAULT_CURRENTS["Ipulse"]] * 2
        assert [len(values) for values in written["Idc"]] == [4, 7]


@conformance
def test_cli_runs_an_imported_network(rockpool: Any, tmp_path: Path) -> None:
    """Trained in Rockpool -> spec file -> `python -m runner`: the same spikes as the API,
    and the nominal instance's spikes are Rockpool's own."""
    case = case_by_name("two_core_recurrent_ei")
    module = trained(rockpool_module(rockpool, case, with_mismatch=False), seed=4)
    net = from_rockpool(module, core_map=case.spec["core_map"], percent_mismatch=0.2)
    x = case.x[:150]
    np.save(tmp_path / "x.npy", x)
    save_network_spec(net, tmp_path / "net.json")
    result = main_in_process(
        "network=from_file", "network.file=net.json", "stimulus=file", "stimulus.file=x.npy",
        "sweep.n_samples=2", "backend=reference", "output.figures=false", "hydra.run.dir=run",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    neurons = pd.read_parquet(tmp_path / "run" / "neurons.parquet")
    counts = neurons.sort_values(["instance", "neuron"])["spike_count"].to_numpy()
    expected = net.simulate(x, n_instances=2, seed=0, backend="reference").spike_counts
    assert expected.sum() > 0
    np.testing.assert_array_equal(counts.reshape(2, -1), expected)
    nominal = pd.read_parquet(tmp_path / "run" / "nominal.parquet").sort_values("neuron")
    np.testing.assert_array_equal(nominal["spike_count"], their_spikes(module, x).sum(axis=0))
