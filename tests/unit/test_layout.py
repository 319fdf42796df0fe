"""The test tree's layout: shared code lives in tests/harness, so no test module imports
another, and every test file's name is unique (it says which module or scenario it covers)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List

REPO = Path(__file__).resolve().parents[2]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(path: Path, root: Path) -> Iterator[str]:
    """Every dotted name an import in ``path`` may load as a module (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            yield module
            # `from tests.integration import test_api` imports a module by its alias
            for alias in node.names:
                yield f"{module}.{alias.name}" if module else alias.name


def _is_test_module(dotted: str, root: Path) -> bool:
    parts = dotted.split(".")
    return parts[-1].startswith("test_") and (root.joinpath(*parts).with_suffix(".py")).is_file()


def imports_of_test_modules(root: Path) -> Dict[str, List[str]]:
    """Python files under ``root``/tests that import a test module, with what they import."""
    found: Dict[str, List[str]] = {}
    for path in sorted((root / "tests").rglob("*.py")):
        bad = sorted({m for m in _imported_modules(path, root) if _is_test_module(m, root)})
        if bad:
            found[str(path.relative_to(root))] = bad
    return found


def repeated_test_file_names(root: Path) -> Dict[str, List[str]]:
    """Test file names found more than once under ``root``/tests, with their paths."""
    seen: Dict[str, List[str]] = defaultdict(list)
    for path in sorted((root / "tests").rglob("test_*.py")):
        seen[path.name].append(str(path.relative_to(root)))
    return {name: paths for name, paths in seen.items() if len(paths) > 1}


def test_no_test_module_imports_another():
    assert imports_of_test_modules(REPO) == {}, "move what is shared into tests/harness"


def test_no_two_test_files_share_a_name():
    assert repeated_test_file_names(REPO) == {}


def _write(root: Path, relative: str, text: str = "") -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_checks_see_every_form_of_import_and_each_repeated_name(tmp_path):
    for package in ("tests", "tests/a", "tests/b", "tests/harness"):
        _write(tmp_path, f"{package}/__init__.py")
    _write(tmp_path, "tests/a/test_one.py", "X = 1\n")
    _write(tmp_path, "tests/b/test_one.py")
    _write(tmp_path, "tests/harness/fixtures.py", "def test_output(): ...\n")
    _write(tmp_path, "tests/b/test_absolute.py", "from tests.a.test_one import X\n")
    _write(tmp_path, "tests/b/test_plain.py", "import tests.a.test_one\n")
    _write(tmp_path, "tests/b/test_package.py", "from tests.a import test_one\n")
    _write(tmp_path, "tests/a/test_relative.py", "from .test_one import X\n")
    _write(tmp_path, "tests/b/test_parent.py", "from ..a.test_one import X\n")
    _write(tmp_path, "tests/b/test_fine.py", "from tests.harness.fixtures import test_output\nimport pytest\n")

    assert imports_of_test_modules(tmp_path) == {
        "tests/a/test_relative.py": ["tests.a.test_one"],
        "tests/b/test_absolute.py": ["tests.a.test_one"],
        "tests/b/test_package.py": ["tests.a.test_one"],
        "tests/b/test_parent.py": ["tests.a.test_one"],
        "tests/b/test_plain.py": ["tests.a.test_one"],
    }
    assert repeated_test_file_names(tmp_path) == {"test_one.py": ["tests/a/test_one.py", "tests/b/test_one.py"]}
