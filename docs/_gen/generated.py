"""MkDocs hook: pages that are generated from the code at build time, never hand-copied.

A page marks where generated text goes with an HTML comment on a line of its own:

- `<!-- generated: config-reference -->`: every key of the config schema, from the
  dataclasses of `runner/study/schema.py` (`RunnerConfig` and the dataclasses its fields
  hold, wherever they are defined): dotted key, type, default and the field's meaning (its
  `metadata["help"]`, else its `# comment` or attribute docstring);
- `<!-- generated: config-groups -->`: the options of every config group, from the YAML
  files under conf/ (their leading comment and their text);
- `<!-- generated: module-map -->`: the layers of the package and their modules, each with
  the first paragraph of its docstring, linked to its API page.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import inspect
import io
import operator
import re
import sys
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MARK = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)


# --- the config schema -------------------------------------------------------------------


def field_comments(cls: type) -> dict[str, str]:
    """A class's `# comments` per field (or Enum member): on its line(s) and the lines above,
    and a string right after it (an attribute docstring)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    found: dict[str, str] = {}
    body = ast.parse(source).body[0].body
    for index, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id  # an Enum member
        else:
            continue
        own = [comments[n] for n in range(node.lineno, node.end_lineno + 1) if n in comments]
        above = []
        n = node.lineno - 1
        while n in comments and lines[n - 1].lstrip().startswith("#"):
            above.insert(0, comments[n])
            n -= 1
        after = body[index + 1] if index + 1 < len(body) else None
        if (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):  # an attribute docstring
            own.append(" ".join(after.value.value.split()))
        text = " ".join(above + own).replace("fmt: skip", "").strip()
        if text:
            found[name] = text
    return found


def strip_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return functools.reduce(operator.or_, rest), True
    return tp, False


def type_name(tp: Any) -> str:
    inner, optional = strip_optional(tp)
    if inner is Any:
        text = "any"
    elif isinstance(inner, type) and issubclass(inner, enum.Enum):
        text = " | ".join(f"`{m.value}`" for m in inner)
    elif dataclasses.is_dataclass(inner):
        text = f"[{inner.__name__}](#{inner.__name__.lower()})"
    elif typing.get_origin(inner) is not None:
        text = f"`{inner}`".replace("typing.", "")
        text = re.sub(r"<class '(\w+)'>", r"\1", text)
        for arg in typing.get_args(inner):
            if dataclasses.is_dataclass(arg):
                text = text.replace(f"{arg.__module__}.{arg.__qualname__}", arg.__name__)
    elif isinstance(inner, type):
        text = f"`{inner.__name__}`"
    else:
        text = f"`{inner}`".replace("typing.", "")
    return text + (" or `null`" if optional else "")


def default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        if dataclasses.is_dataclass(value):
            return "(its fields)"
    else:
        return "(required)"
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == [] or value == {}:
        return f"`{value}`"
    return f"`{value}`"


def enum_choices(tp: Any) -> str:
    """`value`: comment, for the members of an Enum type that carry a comment."""
    inner, _ = strip_optional(tp)
    if not (isinstance(inner, type) and issubclass(inner, enum.Enum)):
        return ""
    comments = field_comments(inner)
    return "; ".join(f"`{m.value}`: {prose(comments[m.name])}" for m in inner if m.name in comments)


def nested_dataclass(tp: Any) -> type | None:
    inner, _ = strip_optional(tp)
    if dataclasses.is_dataclass(inner):
        return inner
    for arg in typing.get_args(inner):  # list[SweepAxis]
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def prose(text: str) -> str:
    """Comment text as Markdown: code spans kept, brackets and angle brackets outside them
    escaped (`[a] [b]` is no reference link, `<sweep dir>` no HTML tag)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = (
            parts[i]
            .replace("\\", "\\\\")
            .replace("[", "\\[")
            .replace("]", "\\]")
            .replace("<", "&lt;")
            .replace("*", "\\*")
            .replace("_", "\\_")
        )
    return "`".join(parts) if len(parts) % 2 else text.replace("<", "&lt;")


def config_reference() -> str:
    sys.path.insert(0, str(ROOT))
    from runner.study.schema import RunnerConfig

    sections: list[str] = []
    seen: set[type] = set()

    def walk(cls: type, prefix: str) -> None:
        if cls in seen:
            return
        seen.add(cls)
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an annotation that cannot be evaluated: show it as written
            hints = {f.name: f.type for f in dataclasses.fields(cls)}
        comments = field_comments(cls)
        title = f"`{prefix}`" if prefix else "top level"
        doc = inspect.getdoc(cls) or ""
        if doc.startswith(f"{cls.__name__}("):  # dataclass's generated signature, no docstring
            doc = ""
        where = f"`{cls.__module__}.{cls.__qualname__}`"
        lines = [f"### {cls.__name__}", "", f"Keys: {title}. Defined in {where}.", ""]
        if doc:
            lines += [prose(" ".join(doc.split())), ""]
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        nested: list[tuple[type, str]] = []
        for f in dataclasses.fields(cls):
            key = f"{prefix}.{f.name}" if prefix else f.name
            meaning = prose(
                f.metadata.get("help") or f.metadata.get("doc") or comments.get(f.name, "")
            )
            meaning = "; ".join(filter(None, [meaning, enum_choices(hints[f.name])]))
            child = nested_dataclass(hints[f.name])
            if child is not None:
                is_list = typing.get_origin(strip_optional(hints[f.name])[0]) is list
                nested.append((child, f"{key}[]" if is_list else key))
            lines.append(
                f"| `{key}` | {cell(type_name(hints[f.name]))} | {cell(default_text(f))} "
                f"| {cell(meaning)} |"
            )
        sections.append("\n".join(lines))
        for child, child_prefix in nested:
            walk(child, child_prefix)

    walk(RunnerConfig, "")
    return "\n\n".join(sections) + "\n"


# --- the config groups under conf/ -------------------------------------------------------


def leading_comment(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines)


def config_groups() -> str:
    conf = ROOT / "conf"
    out = []
    primary = conf / "config.yaml"
    out += [
        "### The primary config: `conf/config.yaml`",
        "",
        '??? example "conf/config.yaml"',
        "",
        textwrap.indent(f"```yaml\n{primary.read_text().rstrip()}\n```", "    "),
        "",
    ]
    groups = sorted({p.parent for p in conf.rglob("*.yaml")} - {conf})
    for group in groups:
        name = group.relative_to(conf).as_posix()
        out += [f"### `{name}`", "", "| option | what it is |", "|---|---|"]
        files = sorted(group.glob("*.yaml"))
        for path in files:
            about = cell(prose(leading_comment(path.read_text())))
            out.append(f"| `{name}={path.stem}` | {about} |")
        out.append("")
        for path in files:
            body = textwrap.indent(f"```yaml\n{path.read_text().rstrip()}\n```", "    ")
            out += [f'??? example "conf/{name}/{path.name}"', "", body, ""]
    return "\n".join(out)


# --- the module map -----------------------------------------------------------------------


def docstring_summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line, ready for a table cell."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    paragraph = doc.strip().split("\n\n")[0]
    return cell(prose(" ".join(paragraph.split())))


def layers_top_down() -> list[str]:
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'type\s*=\s*"layers"\s*\nlayers\s*=\s*\[(.*?)\]', text, re.S)
    return re.findall(r'"runner\.(\w+)"', match.group(1)) if match else []


def module_map(page_dir: Path) -> str:
    """Relative links from the page to the generated API pages (api/runner/...)."""
    package = ROOT / "runner"
    on_disk = sorted(p.name for p in package.iterdir() if (p / "__init__.py").is_file())
    named = layers_top_down()
    bottom_up = [n for n in reversed(named) if n in on_disk]
    layers = bottom_up + [n for n in on_disk if n not in named]
    up = Path(*[".."] * len(page_dir.parts)) if page_dir.parts else Path()
    out = ["| layer | module | what it holds |", "|---|---|---|"]
    for path in sorted(package.glob("*.py")):
        module = f"runner.{path.stem}" if path.stem != "__init__" else "runner"
        link = (
            (up / "api/runner/index.md")
            if path.stem == "__init__"
            else (up / "api/runner" / f"{path.stem}.md")
        )
        out.append(f"| `runner` | [`{module}`]({link.as_posix()}) | {docstring_summary(path)} |")
    for layer in layers:
        root = package / layer
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            module = ".".join(parts)
            target = (
                Path("api", *parts, "index.md")
                if rel.name == "__init__"
                else Path("api", *parts).with_suffix(".md")
            )
            shown = (
                f"**[`{module}`]({(up / target).as_posix()})**"
                if rel.name == "__init__"
                else f"[`{module}`]({(up / target).as_posix()})"
            )
            out.append(f"| `{layer}` | {shown} | {docstring_summary(path)} |")
    return "\n".join(out) + "\n"


# --- the hook -----------------------------------------------------------------------------


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def generate(match: re.Match) -> str:
        kind = match.group(1)
        if kind == "config-reference":
            return config_reference()
        if kind == "config-groups":
            return config_groups()
        if kind == "module-map":
            return module_map(Path(page.file.src_uri).parent)
        raise ValueError(f"{page.file.src_uri}: unknown generated section {kind!r}")

    return MARK.sub(generate, markdown)
