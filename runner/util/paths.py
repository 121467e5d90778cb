"""Where the shipped `conf/` (Hydra configs, example spec and stimulus) and `kernels/` are.

In a repository checkout or an editable install they are the top-level folders beside the
`runner` package; an installed wheel carries them inside the package, as `runner/conf` and
`runner/kernels` (pyproject.toml maps them there), so the runner works from any folder.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["CONF_DIR", "KERNEL_DIR", "find_data_dir"]


def find_data_dir(name: str, marker: str) -> Path:
    """The folder `name` holding `marker`: inside the installed package, else the checkout's."""
    package = Path(str(files("runner")))
    candidates = (package / name, package.parent / name)
    for folder in candidates:
        if (folder / marker).is_file():
            return folder.resolve()
    looked = " and ".join(str(folder) for folder in candidates)
    raise FileNotFoundError(
        f"the runner's {name}/ folder (with {marker}) is missing: looked in {looked}; "
        "reinstall the package (pip install .) or run from a complete checkout"
    )


CONF_DIR = find_data_dir("conf", "config.yaml")
KERNEL_DIR = find_data_dir("kernels", "dynapsim.cu")
