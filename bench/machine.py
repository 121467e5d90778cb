"""The machine line of every benchmark report: the CPU, its cores, the OS, and the target
the cpu backend builds for ($DYNAPSIM_CPU_TARGET and what the compiler makes of it), so a
number always says which instruction set produced it."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's runner

from runner.kernel.backends import cpu  # noqa: E402

__all__ = ["machine"]


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                  if line.startswith("Model name")), platform.processor())  # fmt: skip
    return (f"{model}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()};"
            f" cpu build target {cpu.target_description()}")  # fmt: skip
