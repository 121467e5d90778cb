"""The built wheel, installed outside the checkout, runs from any folder.

The wheel must carry conf/ and kernels/ (as runner/conf, runner/kernels) and the runner must
find them there: a non-editable install used to fail with "Primary config module 'conf' not
found". The wheel is installed with `pip install --target` and put first on PYTHONPATH; its
dependencies come from the running environment.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from runner.util.paths import find_data_dir
from tests.helpers import ROOT
from tests.helpers.cli import run_process
from tests.helpers.markers import slow

SOURCES = ("pyproject.toml", "README.md", "runner", "conf", "kernels")
TINY = ["stimulus.n_steps=50", "sweep.n_samples=2"]
pytestmark = slow  # builds and installs a wheel, then runs it in processes of its own


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the sources (the build writes next to them)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q",
                    "-w", str(out)], check=True, capture_output=True, timeout=600)  # fmt: skip
    (built,) = out.glob("dynapsim_runner-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target)]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True, timeout=300)
    return target


def run_installed(installed: Path, cwd: Path, *command: str) -> subprocess.CompletedProcess:
    """`command` in a process that imports the installed wheel's runner."""
    return run_process(list(command), cwd, pythonpath=installed)


def test_wheel_carries_every_config_and_kernel_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for folder in ("conf", "kernels"):
        shipped = {
            f"runner/{folder}/{path.relative_to(ROOT / folder).as_posix()}"
            for path in (ROOT / folder).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        }
        assert shipped and shipped <= names, sorted(shipped - names)


def test_installed_package_finds_its_own_conf_and_kernels(installed: Path, tmp_path: Path):
    show = "import runner.util.paths as p; print(p.CONF_DIR); print(p.KERNEL_DIR)"
    done = run_installed(installed, tmp_path, sys.executable, "-c", show)
    assert done.returncode == 0, done.stderr
    conf, kernels = done.stdout.split()
    assert Path(conf) == installed / "runner" / "conf"
    assert Path(kernels) == installed / "runner" / "kernels"


def test_python_m_runner_runs_the_default_experiment_from_any_folder(
    installed: Path, tmp_path: Path
) -> None:
    done = run_installed(installed, tmp_path, sys.executable, "-m", "runner", *TINY,
                         "hydra.run.dir=run")  # fmt: skip
    assert done.returncode == 0, done.stderr
    instances = pd.read_parquet(tmp_path / "run" / "instances.parquet")
    assert list(instances["instance"]) == [0, 1]
    assert (tmp_path / "run" / "figures" / "robustness.png").is_file()


def test_console_script_finds_shipped_spec_and_stimulus_files(
    installed: Path, tmp_path: Path
) -> None:
    """network=from_file and stimulus=file name files relative to conf/: found installed."""
    script = installed / "bin" / "dynapsim-runner"
    done = run_installed(installed, tmp_path, str(script), *TINY, "network=from_file",
                         "stimulus=file", "backend=reference", "hydra.run.dir=run")  # fmt: skip
    assert done.returncode == 0, done.stderr
    neurons = pd.read_parquet(tmp_path / "run" / "neurons.parquet")
    assert neurons["instance"].nunique() == 2 and neurons["core"].nunique() == 2


def test_a_missing_data_folder_names_where_it_was_looked_for() -> None:
    with pytest.raises(FileNotFoundError, match=r"no_such_folder/ folder .*looked in .*runner"):
        find_data_dir("no_such_folder", "config.yaml")
