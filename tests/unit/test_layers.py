"""Dependencies point down: read every module's imports (``ast``, nothing is imported) and fail
on one from a lower layer to a higher one, or on postcall and notify importing each other."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "receptionist"
LOWER = ("language", "telephony", "audio", "store", "tenants", "gemini_rest")
HIGHER = ("engines", "tools", "bridge", "postcall", "notify", "web", "cli")
# (importing module, imported module) pairs allowed for now, each with the reason.
KNOWN: dict[tuple[str, str], str] = {}


def _part(module: str) -> str:
    """``receptionist.postcall.worker`` -> ``postcall`` (the top-level part of the package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "receptionist" else ""


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``receptionist.…`` module the file imports, relative imports resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)  # `from pkg import module`
    return {m for m in out if m.startswith("receptionist.")}


def _edges() -> set[tuple[str, str]]:
    edges = set()
    for path in SRC.rglob("*.py"):
        src = _module_name(path)
        edges.update((src, dst) for dst in _imports(path))
    return edges


EDGES = _edges()


def test_lower_layers_never_import_higher_ones() -> None:
    bad = {
        (src, dst)
        for src, dst in EDGES
        if _part(src) in LOWER and _part(dst) in HIGHER and (src, dst) not in KNOWN
    }
    assert not bad, sorted(bad)


def test_notify_never_imports_postcall() -> None:
    # postcall runs the pipeline and uses notify's actions and dispatcher; the other way round
    # would make a cycle between the two.
    back = {(s, d) for s, d in EDGES if _part(s) == "notify" and _part(d) == "postcall"}
    assert not back, sorted(back)


def test_the_checks_see_imports() -> None:
    # the checks above pass on an empty graph too: make sure it is not empty
    assert ("receptionist.postcall.pipeline", "receptionist.notify.actions") in EDGES
    assert _part("receptionist.tenants.model") == "tenants"


def test_engines_never_import_tools() -> None:
    # the tools use the engines' pure parts (ToolSpec, the price list); an engine gets the
    # call's tools as a ToolRunner (engines/base.py) and never imports them
    back = {(s, d) for s, d in EDGES if _part(s) == "engines" and _part(d) == "tools"}
    assert not back, sorted(back)
    assert ("receptionist.tools.functions", "receptionist.engines.local.knowledge") in EDGES
