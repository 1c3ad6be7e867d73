"""The connector SDK and the canonical model stand on their own: an agency's connector package
needs only `connectors` and `models`, so neither may import the engine (`dossierhub`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", ["connectors", "models"])
def test_package_does_not_import_the_engine(package: str) -> None:
    offenders = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in _imported_modules(path)
        if name == "dossierhub" or name.startswith("dossierhub.")
    }
    assert not offenders, "\n".join(sorted(offenders))


def test_the_check_sees_an_engine_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from dossierhub.errors import ConfigError\n")
    assert "dossierhub.errors" in _imported_modules(module)


def test_only_the_simulate_and_demo_commands_import_the_simulators() -> None:
    """The reference systems are test doubles: the product knows them in two commands only."""
    importers = {
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "dossierhub").rglob("*.py"))
        if any(n == "simulators" or n.startswith("simulators.") for n in _imported_modules(path))
    }
    assert importers == {"dossierhub/cli/simulate.py", "dossierhub/cli/demo.py"}
