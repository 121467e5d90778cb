"""Command-line overrides: misspelt groups, options and keys are named with a suggestion,
while every valid form (Hydra's own flags and namespaces, +, ~, sweeps) passes."""

from __future__ import annotations

import pytest

from runner.cli.overrides import OverrideError, check_overrides, group_options
from runner.util.paths import CONF_DIR


def test_groups_are_the_conf_folders() -> None:
    groups = group_options(CONF_DIR)
    assert set(groups) == {"network", "stimulus", "sweep", "backend", "objective", "task",
                           "readout"}
    assert groups["network"] == sorted(p.stem for p in (CONF_DIR / "network").glob("*.yaml"))


@pytest.mark.parametrize(
    "argv,message",
    [
        (["netwrok=ei_4core"], r"netwrok=ei_4core: no config group or key 'netwrok' "
                               r"\(did you mean 'network'\?\); groups: backend, network"),
        (["+netwrok=ei_4core"], r"did you mean 'network'\?"),
        (["stimlus.n_steps=5"], r"no config group or key 'stimlus' \(did you mean 'stimulus'\?\)"),
        (["network=ei4core"], r"network=ei4core: no option 'ei4core' in config group network "
                              r"\(did you mean 'ei_4core'\?\); options: ei_4core, ei_4core_float, "
                              r"feedforward, from_file"),
        (["-m", "network=ei_4core,feedforwad"], r"no option 'feedforwad'.*'feedforward'"),
        (["backend=gpu"], r"no option 'gpu' in config group backend.*options: auto, cpu, cuda"),
        (["network.dtt=1e-3"], r"no key 'dtt' in network \(did you mean 'dt'\?\); its keys: name"),
        (["network.currents.Itau_mm=1"], r"no key 'Itau_mm' in network.currents .*'Itau_mem'"),
        (["sweep.axes.0.pth=x"], r"no key 'pth' in sweep.axes.0 \(did you mean 'path'\?\)"),
        (["sweep.axes.first=x"], r"sweep.axes is a list: expected an index, got 'first'"),
        (["network.dt.x=1"], r"network.dt is a value, not a group of keys"),
        (["~network.mismatch.distrib"], r"no key 'distrib'.*'distribution'"),
    ],
)  # fmt: skip
def test_misspelt_names_are_refused_with_a_suggestion(argv: list[str], message: str) -> None:
    with pytest.raises(OverrideError, match=message):
        check_overrides(argv, CONF_DIR)


@pytest.mark.parametrize(
    "argv",
    [
        ["network=ei_4core", "stimulus=file", "sweep=bias_grid", "backend=cpu"],
        ["-m", "network=ei_4core,from_file", "shard.count=8", "shard.index=range(8)"],
        ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.run.dir=/tmp/x"],
        ["+network.generator.params.fan_in=3", "~network.currents.Idc", "++seed=3"],
        ["network.currents.Idc.2=1e-12", "sweep.axes.0.values=[0.1,0.2]", "stimulus.rate_hz=5"],
        ["network.generator=null", "network.mismatch.parameters=[Idc]", "metrics.within=0.1"],
        ["--cfg", "job", "-p", "network", "network=feedforward"],
        ["network=glob(*)"],
        ["--config-dir", "/elsewhere", "network=mine"],  # options there are Hydra's to find
        ["network=[unparsable"],  # Hydra reports its own syntax errors
    ],
)
def test_valid_and_hydra_forms_pass(argv: list[str]) -> None:
    check_overrides(argv, CONF_DIR)
