"""A study's own configs outside the repository: a network option in a study folder, found
through --config-dir or hydra.searchpath; the "no option" error names both ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli.overrides import OverrideError, check_overrides
from runner.util.paths import CONF_DIR
from tests.helpers.cli import main_in_process

MY_CHIP = """\
name: my_chip
n_cluster: 1
neurons_per_core: 12
generator:
  name: feedforward
  params: {n_inputs: 6}
"""


def test_the_no_option_error_names_the_ways_to_add_one() -> None:
    with pytest.raises(OverrideError, match=r"no option 'my_chip' in config group network.*"
                                            r"--config-dir DIR.*hydra.searchpath"):
        check_overrides(["network=my_chip"], CONF_DIR)


@pytest.mark.parametrize("how", ["--config-dir", "hydra.searchpath"])
def test_a_network_of_your_own_runs_from_a_study_folder(tmp_path: Path, how: str) -> None:
    study = tmp_path / "study"
    (study / "conf" / "network").mkdir(parents=True)
    (study / "conf" / "network" / "my_chip.yaml").write_text(MY_CHIP)
    where = (["--config-dir", "conf"] if how == "--config-dir"
             else [f"hydra.searchpath=[file://{study / 'conf'}]"])  # fmt: skip
    result = main_in_process(*where, "network=my_chip", "backend=reference", "stimulus.n_steps=40",
                             "sweep.n_samples=2", "hydra.run.dir=run", cwd=study)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "network my_chip: 12 neurons in 1 core(s), 6 inputs" in result.stdout
