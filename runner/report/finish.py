"""The last step of a run and of a collect: figures from the written tables, then the summary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from runner.report.summary import render_summary
from runner.study.run_folder import ChunkStore

if TYPE_CHECKING:
    from runner.study.outcome import Outcome
    from runner.study.plan import Plan

__all__ = ["finish"]


def finish(
    plan: Plan,
    outcome: Outcome,
    folder: Path,
    figures: bool,
    raster_stores: list[ChunkStore] | None = None,
) -> str:
    """Draw the figures into `folder`/figures (when `figures`; rasters from `raster_stores`,
    default the folder's own chunks) and return the summary text of `outcome`'s tables."""
    if figures:
        # matplotlib loads here, when figures are drawn: ~0.5 s of every command's start-up
        # otherwise (a Slurm array's jobs run with figures off, collect draws them once)
        from runner.report.figures import write_figures

        write_figures(plan, outcome, folder, raster_stores)
    return render_summary(plan, outcome, folder)
