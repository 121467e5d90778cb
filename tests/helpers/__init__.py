"""What the test modules share; test modules import from here, never from each other.

- `ROOT`: the checkout the suite runs from (this package's repository).
- `helpers.markers`: one skip marker per optional extra or device (`requires_*`), so that
  `pip install -e ".[dev]"` alone collects and passes the suite with skips.
- `helpers.cli`: the one way to run the command line: `main_in_process` (the errors and
  flags a user sees, without a process) and `run_cli` (`python -m runner ...` in a process,
  for the end-to-end proofs).
- `helpers.config`: the shipped config composed with overrides, and the small studies the
  study and cli tests run (`study_config`, `run_study`, `tables`, `assert_same_tables`).
- `helpers.cases`, `helpers.batches`, `helpers.backends`: the conformance cases, kernel
  batches built from them, and the cross-backend contract.
- `helpers.slurm`: the CI Slurm cluster (`.ci/run` imports `slurm_available` from it).
- `helpers.fixtures`: session fixtures (a compiled CPU kernel, finished study runs),
  loaded by tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT"]

ROOT = Path(__file__).resolve().parents[2]
