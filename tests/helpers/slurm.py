"""The CI Slurm cluster (`.ci/slurm/start.sh`): is it up, its environment, its overrides.

    from tests.helpers.cli import run_cli
    from tests.helpers.markers import requires_slurm
    from tests.helpers.slurm import SLURM_CI_OVERRIDES, slurm_env

    @requires_slurm
    def test_sharded_multirun(tmp_path):
        run_cli("-m", *SLURM_CI_OVERRIDES, ..., env={"SLURM_CONF": slurm_env()["SLURM_CONF"]})

Without `sbatch` on PATH, or without a node that answers `sinfo` within a few seconds (a
laptop, a cluster login node with every node down), `slurm_available()` is False and the
tests marked `requires_slurm` skip. `.ci/run` imports `slurm_available` from here (it
needs nothing beyond the standard library).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

# Where .ci/slurm/start.sh keeps the test cluster's configs, logs and the `env` file.
SLURM_DIR = Path(os.environ.get("DYNAPSIM_SLURM_DIR", "/tmp/dynapsim-slurm"))

# Hydra overrides for the CI cluster: the project's launcher without a GPU, with resources
# that fit the 2-core CI machine (Slurm rejects a job that asks for more than the node has).
SLURM_CI_OVERRIDES = [
    "hydra/launcher=slurm",
    "hydra.launcher.partition=debug",
    "hydra.launcher.gpus_per_node=0",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",
]

_UP_STATES = {"idle", "mixed", "allocated", "completing"}


def slurm_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default os.environ) plus SLURM_CONF of the CI cluster when the caller has none.

    submitit shells out to sbatch/squeue/sacct/scancel with the environment of the process
    that runs the multirun, so pass this as `env=` to that subprocess.
    """
    env = dict(os.environ if base is None else base)
    conf = SLURM_DIR / "slurm.conf"
    if "SLURM_CONF" not in env and conf.is_file():
        env["SLURM_CONF"] = str(conf)
    return env


@functools.lru_cache(maxsize=1)
def slurm_available(timeout_s: float = 5.0) -> bool:
    """sbatch is on PATH and `sinfo` reports at least one usable node within `timeout_s`."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    try:
        out = subprocess.run(
            ["sinfo", "--noheader", "--format=%T"],
            env=slurm_env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    # sinfo suffixes: `*` not responding (unusable); `~`, `#`, `%`, `$`, `@`, ... power/maint.
    states = {s.rstrip("~#!%$@^-+") for s in out.stdout.split() if not s.endswith("*")}
    return out.returncode == 0 and bool(states & _UP_STATES)

