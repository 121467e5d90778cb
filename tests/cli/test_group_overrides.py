"""Overrides that used to end in a traceback: a group set to null, a key under a block no
override sets, and the readout defaults a task falls back to."""

from __future__ import annotations

import pytest

from runner.analysis.readout import ReadoutConfig
from runner.cli.overrides import OverrideError, check_overrides
from runner.util.paths import CONF_DIR


@pytest.mark.parametrize("group", ["readout", "objective", "task"])
def test_a_group_set_to_null_names_the_options_and_how_to_leave_it_out(group: str) -> None:
    with pytest.raises(OverrideError, match=rf"{group}=null: a config group takes one of its "
                                            rf"options \(.*\); to leave it out, use ~{group}"):
        check_overrides([f"{group}=null"], CONF_DIR)


@pytest.mark.parametrize("override", ["readout.kind=vote", "+readout.kind=vote"])
def test_a_readout_key_without_a_readout_says_how_to_choose_one(override: str) -> None:
    with pytest.raises(OverrideError, match=r"there is no readout block to change; choose one "
                                            r"first \(readout=linear\|ridge\|vote, or a task"):
        check_overrides([override], CONF_DIR)


@pytest.mark.parametrize(
    "argv",
    [["readout=vote", "readout.kind=linear"], ["task=patterns", "readout.alpha=3"],
     ["readout=ridge", "~readout", "readout.bins=2"], ["~readout"]],
)
def test_a_readout_key_with_a_group_that_sets_it_passes(argv: list[str]) -> None:
    check_overrides(argv, CONF_DIR)


def test_the_schema_readout_is_the_documented_ridge() -> None:
    """`task=patterns ~readout` keeps the task's readout keys on the schema's defaults: the
    same alpha as readout=ridge (1000), not 1.0."""
    import yaml

    ridge = yaml.safe_load((CONF_DIR / "readout" / "ridge.yaml").read_text())
    assert ReadoutConfig().alpha == ridge["alpha"] == 1000.0
