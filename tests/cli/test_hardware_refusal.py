"""`python -m runner` with `network.hardware` and `network.quantize`: a network that does not
fit the chip, an unknown profile or a bad bit width stops the run before any work with one
line `error: ...` and exit status 2; a quantized network that fits runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import main_in_process

SMALL = ("backend=reference", "network.neurons_per_core=16", "network.generator.params.n_inputs=8",
         "stimulus.n_steps=50", "sweep.n_samples=2", "output.figures=false")  # fmt: skip


def runner_cli(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    """`python -m runner` (its `main()` in this process: every refusal comes before any
    simulation), errors as users see them."""
    return main_in_process(*SMALL, *overrides, f"hydra.run.dir={cwd / 'run'}", cwd=cwd)


def refused(result: subprocess.CompletedProcess) -> str:
    """The one error line of a refused run (exit 2, on stderr; no summary: nothing ran)."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "tables:" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_a_sweep_point_that_does_not_fit_stops_the_run_before_any_work(tmp_path: Path) -> None:
    line = refused(
        runner_cli(
            tmp_path,
            "network.hardware=dynapse2",
            "sweep.axes=[{path: network.quantize.n_bits, values: [null, 4, 6]}]",
        )
    )
    assert line.startswith(
        "error: sweep point 2 {'network.quantize.n_bits': 6}: the network does not fit "
        "network.hardware=dynapse2: the weights select among 6 base weights per core "
        "(Iw_0..Iw_5); the chip has 4 (2 base weights too many"
    ), line
    assert not (tmp_path / "run" / "chunks").exists()


def test_a_float_network_is_checked_as_it_is(tmp_path: Path) -> None:
    line = refused(runner_cli(tmp_path, "network.hardware=dynapse2", "network.n_cluster=5"))
    assert line == ("error: the network does not fit network.hardware=dynapse2: the network "
                    "uses 5 cores; the chip has 4 (1 core too many)")  # fmt: skip
    assert not (tmp_path / "run" / "chunks").exists()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "network.hardware=dynapse",
            "error: network.hardware: unknown hardware profile "
            "'dynapse' (did you mean 'dynapse2'?); known: dynapse2",
        ),
        (
            "network.quantize.n_bits=9",
            "error: network.quantize.n_bits must be an int from 1 to "
            "8 (bits of a weight's mask; the DYNAP-SE2 has 4) or null (float weights), got 9",
        ),
        (
            "network.quantize.n_bits=four",
            "error: Error merging override "
            "network.quantize.n_bits=four; Value 'four' of type 'str' could not be converted to "
            "Integer (at network.quantize.n_bits)",
        ),
    ],
)
def test_bad_settings_are_one_line(tmp_path: Path, override: str, expected: str) -> None:
    assert refused(runner_cli(tmp_path, override)) == expected
    assert not (tmp_path / "run" / "chunks").exists()


def test_a_quantized_network_that_fits_runs(tmp_path: Path) -> None:
    result = runner_cli(tmp_path, "network.hardware=dynapse2", "network.quantize.n_bits=4")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "quant. loss" in result.stdout
    assert (tmp_path / "run" / "chunks" / "quantized-p00000.npz").is_file()
