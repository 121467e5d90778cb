"""Every shipped config composes against the schema and builds; bad configs are refused."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from runner.study.plan import ExperimentError
from runner.study.prepare import prepare
from runner.study.schema import RunnerConfig, register_configs
from runner.util.paths import CONF_DIR
from tests.helpers import ROOT
from tests.helpers.config import compose_config
from tests.helpers.markers import requires_no_gpu

register_configs()
GROUPS = ("network", "stimulus", "sweep", "backend", "objective")
SMALL = ["sweep.n_samples=2", "stimulus.n_steps=50"]


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert options(group), group
    assert {"feedforward", "ei_4core", "from_file"} <= set(options("network"))
    assert {"none", "mismatch_robustness", "bias_grid"} <= set(options("sweep"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_shipped_config_composes_and_prepares(group: str, option: str) -> None:
    overrides = [f"{group}={option}"]
    if group == "stimulus" and option == "file":
        overrides.append("network=from_file")  # the example input fits that network's inputs
    if group == "objective" and option.startswith("accuracy"):
        overrides.append("task=patterns")  # an accuracy needs a readout
    config = compose_config(overrides)
    OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RunnerConfig), config))
    if group == "backend":
        assert config["backend"]["name"] == option
        return
    plan = prepare(compose_config(overrides + ["sweep.n_samples=2"]))
    assert plan.points and plan.chunks
    assert all(p.network.spec.n_neurons > 0 for p in plan.points)


def test_defaults_are_the_small_experiment() -> None:
    config = compose_config([])
    assert config["network"]["name"] == "feedforward"
    assert config["sweep"]["axes"] == []
    plan = prepare(config)
    assert plan.points[0].network.spec.n_neurons == 256
    assert plan.points[0].stimulus.n_steps == 1000


def test_ei_4core_has_per_core_currents() -> None:
    plan = prepare(compose_config(["network=ei_4core", "sweep.n_samples=1"]))
    spec = plan.points[0].network.spec
    assert spec.n_cluster == 4 and spec.n_neurons == 1024
    per_core = [spec.nominal["Itau_mem"][spec.core_map == core][0] for core in range(4)]
    assert len(set(per_core)) == 4


@pytest.mark.parametrize(
    "override,key",
    [
        ("network.currents.Itau_mm=1e-12", "Itau_mm"),
        ("stimulus.n_steps=many", "n_steps"),
        ("network.mismatch.distribution=uniform", "distribution"),
        ("backend.name=gpu", "name"),
    ],
)
def test_unknown_keys_and_wrong_types_name_the_key(override: str, key: str) -> None:
    with pytest.raises((ConfigCompositionException, ValidationError)) as error:
        compose_config([override])
    assert key in str(error.value) + str(error.value.__cause__)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["network.currents.Itau_mem=[1e-12,2e-12]"], "Itau_mem must have n_cluster=1"),
        (["network.dt=-1e-3"], "dt must be > 0"),
        (["+network.generator.params.fan_inn=3"], "fan_inn"),
        (["stimulus.rate_hz=[1.0,2.0]"], "stimulus.rate_hz"),
        (["sweep=bias_grid", "sweep.axes.0.path=network.currents.Itau_mm"], "Itau_mm"),
        (["network=from_file", "network.file=missing.npz"], "missing.npz"),
        (["network=ei_4core", "network.currents.Idc=[1e-12,-1e-12,0,0]"], "Idc must be >= 0"),
        (["metrics.within=-0.1"], "metrics.within must be a finite number >= 0"),
        (["metrics.within=nan"], "metrics.within must be a finite number >= 0"),
        (["metrics.saturated_rate_hz=0"], "metrics.saturated_rate_hz must be a finite rate > 0"),
        (["metrics.saturated_rate_hz=-5"], "metrics.saturated_rate_hz must be a finite rate > 0"),
        (["network.dt=1e-50"], "dt=1e-50 is 0 or inf in float32"),
        (["network.currents.Itau_mem=two"], "Itau_mem[0] must be numeric"),
        (["stimulus.rate_hz=fast"], "stimulus.rate_hz must be a number or a list"),
        (["sweep=bias_grid", "sweep.axes.0.values=[half]"], "values are factors and must be"),
        (["sweep=bias_grid", "sweep.axes.0.path=network.name"], "holds 'feedforward', not a"),
    ],
)
def test_bad_specs_fail_before_any_work(overrides: list[str], message: str) -> None:
    with pytest.raises(ExperimentError, match=message.replace("[", r"\[")):
        prepare(compose_config(overrides + SMALL))


def test_keys_appended_with_plus_are_refused_too() -> None:
    with pytest.raises(ExperimentError, match="Itau"):
        prepare(compose_config(["+network.Itau=1e-12"] + SMALL))


def test_spec_error_names_the_sweep_point() -> None:
    overrides = ["sweep=mismatch_robustness", "sweep.axes.0.values=[0.1,-0.2]"] + SMALL
    with pytest.raises(ExperimentError, match=r"sweep point 1 .*percent_mismatch must be >= 0"):
        prepare(compose_config(overrides))


def test_conf_dir_is_the_repository_conf() -> None:
    assert ROOT / "conf" == CONF_DIR


@requires_no_gpu
def test_an_unusable_backend_is_refused_before_any_work() -> None:
    with pytest.raises(ExperimentError, match="backend=cuda is not usable here: "):
        prepare(compose_config(["backend=cuda"] + SMALL))
