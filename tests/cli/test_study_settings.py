"""A calibration study's settings and a missing extra, refused in one line before any trial
(they used to end in Optuna tracebacks, or abort the study at its first trial)."""

from __future__ import annotations

import pytest

from runner.cli import study_settings
from runner.cli.overrides import OverrideError
from runner.cli.study_settings import check_extras, check_study_settings
from runner.util.paths import CONF_DIR

CALIBRATE = ["hydra/sweeper=calibrate"]


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["hydra.sweeper.n_trials=0"], r"hydra.sweeper.n_trials must be an int >= 1, got 0"),
        (["hydra.sweeper.direction=upward"], r"direction must be one of minimize, maximize"),
        (["network.currents.Iref=tag(log,interval(0,1e-8))"], r"log interval needs a start > 0"),
        (["network.currents.Iref=interval(1e-8,1e-10)"], r"must have start < end"),
        (["network.currents.Iref=interval(-1e-9,1e-8)"], r"a current \[A\] cannot be negative"),
        (["network.currents.Iref=choice(1e-9,-1e-9)"], r"a current \[A\] cannot be negative"),
        (["+hydra.sweeper.params.network.currents.Idc=interval(-1e-12,1e-12)"],
         r"params.network.currents.Idc: a current \[A\] cannot be negative"),
    ],
)
def test_bad_study_settings_are_named_before_the_first_trial(overrides, message) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    with pytest.raises(OverrideError, match=message):
        check_study_settings([*CALIBRATE, *overrides], CONF_DIR)


def test_the_shipped_search_spaces_pass() -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    check_study_settings(CALIBRATE, CONF_DIR)
    check_study_settings([*CALIBRATE, "hydra/sweeper/space=ei_4core_per_core"], CONF_DIR)


@pytest.mark.parametrize(
    "override,extra",
    [("hydra/sweeper=calibrate", "calibrate"), ("hydra/launcher=submitit_slurm", "slurm")],
)
def test_a_missing_extra_is_named_with_its_install_command(monkeypatch, override, extra) -> None:
    monkeypatch.setattr(study_settings, "_installed", lambda module: False)
    with pytest.raises(OverrideError, match=rf'{override} needs the {extra} extra: pip install '
                                            rf'"dynapsim-runner\[{extra}\]"'):
        check_extras([override])
