"""mkdocs-gen-files script: one API page per module of the `runner` package, and its nav.

Walks runner/ on disk, so a module added to a layer gets its page without editing anything.
Layers are listed bottom to top in the order of the import-linter `layers` contract in
pyproject.toml (the one-way import rule); packages it does not name come after them.
Also copies the committed example figures and tables (outputs/example/) into the site.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).parent))
from generated import docstring_summary  # noqa: E402  (beside this script)

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "runner"
API = Path("api")


def layer_order() -> list[str]:
    """Layer packages bottom to top, from the import-linter contract (top to bottom there)."""
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'type\s*=\s*"layers"\s*\nlayers\s*=\s*\[(.*?)\]', text, re.S)
    named = re.findall(r'"runner\.(\w+)"', match.group(1)) if match else []
    on_disk = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    return [*reversed([n for n in named if n in on_disk]), *[n for n in on_disk if n not in named]]


def dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def page_of(module: str) -> Path:
    """api/runner/physics/spec.md; a package's page is its index.md."""
    return API.joinpath(*module.split(".")).with_suffix(".md")


def write_module_page(module: str, path: Path) -> Path:
    page = page_of(module)
    with mkdocs_gen_files.open(page, "w") as out:
        out.write(f"# `{module}`\n\n::: {module}\n")
    mkdocs_gen_files.set_edit_path(page, path.relative_to(ROOT))
    return page


def write_package(package: Path, nav: list[str], depth: int) -> None:
    """The package's index page (its docstring, a table of its modules), then each module."""
    name = dotted(package / "__init__.py")
    index = API.joinpath(*name.split("."), "index.md")
    modules = sorted(p for p in package.glob("*.py") if p.name != "__init__.py")
    subpackages = sorted(p for p in package.iterdir() if (p / "__init__.py").is_file())
    with mkdocs_gen_files.open(index, "w") as out:
        out.write(f"# `{name}`\n\n")
        out.write(f"::: {name}\n    options:\n      members: false\n\n")
        out.write("| module | what it holds |\n|---|---|\n")
        for child in [*subpackages, *modules]:
            module = dotted(child / "__init__.py" if child.is_dir() else child)
            target = Path(*module.split(".")[len(name.split(".")) :])
            link = f"{target}/index.md" if child.is_dir() else f"{target}.md"
            doc = docstring_summary(child / "__init__.py" if child.is_dir() else child)
            out.write(f"| [`{module}`]({link}) | {doc} |\n")
    mkdocs_gen_files.set_edit_path(index, (package / "__init__.py").relative_to(ROOT))
    indent = "    " * depth
    nav.append(f"{indent}* [`{name}`]({index.relative_to(API).as_posix()})")
    for sub in subpackages:
        write_package(sub, nav, depth + 1)
    for path in modules:
        module = dotted(path)
        page = write_module_page(module, path)
        short = module.rsplit(".", 1)[1]
        nav.append(f"{indent}    * [`{short}`]({page.relative_to(API).as_posix()})")


def main() -> None:
    nav = ["* [Public API: `runner`](runner/index.md)"]
    with mkdocs_gen_files.open(API / "runner" / "index.md", "w") as out:
        out.write(
            "# Public API: `runner`\n\n"
            "What `import runner` offers; everything else lives in the layer packages below.\n\n"
            "::: runner\n    options:\n      show_root_heading: false\n"
        )
    mkdocs_gen_files.set_edit_path(API / "runner" / "index.md", "runner/__init__.py")
    commands = sorted(p for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    nav.append("* Commands")
    for path in commands:
        page = write_module_page(dotted(path), path)
        nav.append(f"    * [`{dotted(path)}`]({page.relative_to(API).as_posix()})")
    nav.append("* Layers, bottom to top")
    for layer in layer_order():
        write_package(PACKAGE / layer, nav, 1)
    with mkdocs_gen_files.open(API / "SUMMARY.md", "w") as out:
        out.write("\n".join(nav) + "\n")

    # The example figures and tables of the worked studies, committed under outputs/example/.
    for path in sorted((ROOT / "outputs" / "example").glob("*")):
        if path.suffix in {".png", ".csv"}:
            with mkdocs_gen_files.open(Path("assets", "example", path.name), "wb") as out:
                out.write(path.read_bytes())


main()
