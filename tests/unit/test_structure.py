"""The package's shape: which module may import which (TYPE_CHECKING imports included), no
import cycle, and no module or class grown past what one reader holds in mind."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Set

ROOT = Path(__file__).resolve().parents[2] / "octoprint_tracking_queued"
MAX_MODULE_LINES, MAX_CLASS_LINES = 400, 250

# The flow runs one way: facts -> records -> queue -> worker -> runtime -> API/CLI -> plugin face.
ALLOWED: Dict[str, Set[str]] = {
    "__init__": {"api", "cli", "compat", "config", "files", "runtime", "system", "updates", "vocabulary"},
    "api": {"records", "runtime", "status"},
    "catalogue": {"records", "texts"},
    "cli": {"cli_flush", "commands", "config", "files", "lock", "store"},
    "cli_flush": {"delivery", "otlp", "policy", "store", "worker"},
    "clock": set(),
    "commands": {"config", "delivery", "otlp", "status", "store"},
    "compat": set(),
    "config": {"vocabulary"},
    "consent": {"config"},
    "delivery": set(),
    "farm": {"delivery", "otlp", "policy", "store", "worker"},
    "otlp": {"delivery"},
    "files": set(),
    "lock": {"files"},
    "policy": {"config", "vocabulary"},
    "records": {"texts"},
    "probes": {"timers", "worker"},
    "runtime": {
        "clock",
        "commands",
        "config",
        "consent",
        "delivery",
        "farm",
        "lock",
        "otlp",
        "policy",
        "probes",
        "status",
        "store",
        "timers",
        "tracker",
        "worker",
    },  # fmt: skip
    "status": {"store"},
    "store": {"catalogue", "clock", *(f"store.{m}" for m in ("boots", "file", "opener", "schema", "view", "writer"))},
    "store.boots": {"clock", "store.schema"},
    "store.file": {"store.schema"},
    "store.intake": {"store.ledger", "store.opener", "store.schema", "store.view"},
    "store.ledger": {"store.schema"},
    "store.manage": {"store.intake", "store.ledger", "store.schema", "store.view"},
    "store.opener": {"files", "store.boots", "store.file", "store.ledger", "store.salvage", "store.schema"},
    "store.salvage": {"store.boots", "store.file", "store.ledger", "store.schema"},
    "store.schema": set(),
    "store.view": {"clock", "store.boots", "store.file", "store.ledger", "store.schema"},
    "store.writer": {
        "store.file",
        "store.intake",
        "store.ledger",
        "store.manage",
        "store.opener",
        "store.schema",
        "store.view",
    },  # fmt: skip
    "system": set(),
    "texts": set(),
    "timers": set(),
    "tracker": {"catalogue", "consent", "records", "store", "system", "timers"},
    "updates": {"compat"},
    "vocabulary": {"catalogue"},
    "worker": {"delivery", "store", "vocabulary"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imports() -> Dict[str, Set[str]]:
    """Each module's imports of the package's own modules, wherever they are written."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = module_name(path)
        package = name.split(".") if path.name == "__init__.py" and name != "__init__" else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - node.level + 1]
                if node.module:
                    deps.add(".".join([*base, node.module]) or "__init__")
                else:
                    deps.update(".".join([*base, alias.name]) for alias in node.names)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                module = node.module if isinstance(node, ast.ImportFrom) else None
                names = [module] if module else [alias.name for alias in node.names]
                deps.update(n.split(".", 1)[1] for n in names if n and n.startswith("octoprint_tracking_queued."))
        found[name] = deps
    return found


def test_every_module_imports_only_what_its_place_in_the_flow_allows():
    found = imports()
    assert set(found) == set(ALLOWED), "a module was added or removed: give it its place in ALLOWED"
    wrong = {name: sorted(deps - ALLOWED[name]) for name, deps in found.items() if deps - ALLOWED[name]}
    assert not wrong


def test_no_import_cycle():
    graph = imports()
    state: Dict[str, int] = {}

    def visit(name, path):
        state[name] = 1
        for dep in graph.get(name, ()):
            assert state.get(dep) != 1, " -> ".join([*path, name, dep])
            if dep not in state:
                visit(dep, [*path, name])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def class_lines(node: ast.ClassDef) -> int:
    # end_lineno is 3.8+; on 3.7 the last line any of its statements starts on.
    end = getattr(node, "end_lineno", None) or max(n.lineno for n in ast.walk(node) if hasattr(n, "lineno"))
    return end - node.lineno + 1


def test_no_module_or_class_too_large_to_read_at_once():
    too_large = []
    for path in ROOT.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_large.append(f"{module_name(path)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and class_lines(node) > MAX_CLASS_LINES:
                too_large.append(f"{module_name(path)}.{node.name}: {class_lines(node)} lines")
    assert not too_large


def test_the_bench_touches_no_private_attribute_of_the_plugin():
    """The bench measures through Runtime.instruments (probes.py); a rename inside the plugin
    must not break it silently."""
    bench = ROOT.parent / "bench"
    private = []
    for path in sorted(bench.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "os", "sys"))
            ):
                private.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} .{node.attr}")
    assert not private
