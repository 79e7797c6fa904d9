"""The layering rule holds for every package: lower layers never import higher ones.

warehouse <- resolution <- features <- models <- segments <- serving <- pipelines. The check
reads the source with `ast`, so it sees every import: at module level, inside functions,
under `TYPE_CHECKING`, and modules named to `importlib.import_module` as constants.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("warehouse", "resolution", "features", "models", "segments", "serving", "pipelines")


def imported_modules(source: str, *, package: str) -> list[tuple[int, str]]:
    """(line, module) for every module the source imports."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the package
                found.append((node.lineno, f"{package}.{node.module or ''}"))
            elif node.module:
                found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def violations(root: Path) -> list[str]:
    """`file:line imports module` for each import of a higher layer."""
    found = []
    for rank, package in enumerate(LAYERS):
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imported_modules(path.read_text(), package=package):
                top = module.split(".")[0]
                if top in LAYERS and LAYERS.index(top) > rank:
                    found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


def test_no_package_imports_a_higher_layer() -> None:
    assert violations(ROOT) == []


def test_every_package_is_checked() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - {"tests", "benchmarks", "notebooks"} == set(LAYERS)


@pytest.mark.parametrize(
    "source",
    [
        "import pipelines.config",
        "from pipelines.config import Settings",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pipelines import config",
        "def f():\n    from pipelines import cli",
        "import importlib\nimportlib.import_module('pipelines.tracking')",
    ],
)
def test_the_check_finds_an_import_of_a_higher_layer(tmp_path: Path, source: str) -> None:
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "serving" / "bad.py").write_text(source + "\n")
    (tmp_path / "pipelines" / "fine.py").write_text("import serving.bad\nimport warehouse\n")
    [found] = violations(tmp_path)
    assert found.startswith("serving/bad.py:")
