"""Measure the runner package's import graph: modules, levels, circles, imports that run up.

    python .ci/import_graph.py [--max-levels 9] [--max-top 6]

A module's level is 1 + the highest level among the runner modules it imports (a module
that imports none is level 1); the graph's levels are the highest of all. Levels count the
imports that run (lazy ones included, `if TYPE_CHECKING:` ones not: they never execute);
circles and upward imports are looked for among every import statement, type-only ones
included. An import "runs up" when a layer imports a layer above it (the order of LAYERS).
Exits 1 when a circle, an upward import, more levels or more top-level modules than
allowed are found.
"""

from __future__ import annotations

import argparse
import sys
from functools import cache

import grimp

LAYERS = ("util", "physics", "kernel", "data", "analysis", "network", "study", "report", "cli")


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-levels", type=int, default=9)
    parser.add_argument("--max-top", type=int, default=6)
    args = parser.parse_args()
    graph = grimp.build_graph("runner", include_external_packages=False, cache_dir=None)
    modules = sorted(graph.modules)
    imports = {m: sorted(graph.find_modules_directly_imported_by(m) - {m}) for m in modules}
    running = grimp.build_graph("runner", include_external_packages=False, cache_dir=None,
                                exclude_type_checking_imports=True)  # fmt: skip
    executed = {m: sorted(running.find_modules_directly_imported_by(m) - {m}) for m in modules}
    # runner/<layer>/__init__.py imports nothing; a package is not a step of the chain
    stack: list[str] = []
    circles: list[list[str]] = []

    def levels_of(edges: dict[str, list[str]]) -> dict[str, int]:
        @cache
        def level(module: str) -> int:
            if module in stack:
                circles.append(stack[stack.index(module):] + [module])
                return 0
            stack.append(module)
            result = 1 + max((level(m) for m in edges[module]), default=0)
            stack.pop()
            return result

        return {m: level(m) for m in modules}

    with_types = max(levels_of(imports).values())
    levels = levels_of(executed)
    deepest = max(levels.values())
    chain = [max(levels, key=levels.get)]
    while executed[chain[-1]]:
        chain.append(max(executed[chain[-1]], key=lambda m: levels[m]))
    upward = [
        (a, b) for a in modules for b in imports[a]
        if layer_of(a) is not None and layer_of(b) is not None and layer_of(b) > layer_of(a)
    ]  # fmt: skip
    top = [m for m in modules if m.count(".") == 1 and layer_of(m) is None]
    print(f"{len(modules)} modules, {sum(map(len, imports.values()))} imports")
    print(f"levels: {deepest} (deepest chain: {' -> '.join(chain)}); "
          f"{with_types} counting type-only imports too")
    circles = [list(c) for c in dict.fromkeys(tuple(c) for c in circles)]
    print(f"circles: {len(circles)}" + "".join(f"\n  {' -> '.join(c)}" for c in circles))
    print(f"imports that run up: {len(upward)}" + "".join(f"\n  {a} -> {b}" for a, b in upward))
    print(f"modules directly in runner/: {len(top) + 1} ({', '.join(['runner', *top])})")
    failed = circles or upward or deepest > args.max_levels or len(top) + 1 > args.max_top
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
