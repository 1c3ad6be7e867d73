"""`dossierhub connectors test` where pytest cannot be imported, as in the Docker image.

The command runs in a subprocess whose `import pytest` fails. Connectors are pip-installed
into a folder of their own (`pip install --target`, no index) and found through their entry
points on PYTHONPATH, so this interpreter's environment is left as it was: the guide's worked
example must pass; a connector whose mapping breaks must fail, naming the broken promise and
the record; and the checks must still fail under `python -O`, which strips `assert`s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulators import tax
from tests.connectors.test_conformance import BROKEN_CONNECTOR
from tests.connectors.test_guide_example import (
    build_wheel,
    example_files,
    forget_example_modules,
    load_example_tests,
    pip,
)
from tests.test_layers import _imported_modules

ROOT = Path(__file__).resolve().parents[2]
# The command as `dossierhub` runs it, with pytest (and its internals) impossible to import.
WITHOUT_PYTEST = (
    "import sys, runpy; sys.modules['pytest'] = sys.modules['_pytest'] = None; "
    "sys.argv = ['dossierhub', *sys.argv[1:]]; runpy.run_module('dossierhub', run_name='__main__')"
)
HASH_KEY = "kit-without-pytest-key-" + "w" * 32

BROKEN_PYPROJECT = """
[project]
name = "broken-tax"
version = "1.0.0"
dependencies = ["dossierhub"]

[project.entry-points."dossierhub.connectors"]
broken_tax = "broken_tax:BrokenTax"

[tool.setuptools]
packages = ["broken_tax"]
"""


def install(project: Path, target: Path) -> Path:
    """`project` built and pip-installed into `target` only (no index, no dependencies)."""
    wheel = build_wheel(project, project.parent)
    installed = pip(
        "install", "--quiet", "--no-deps", "--no-index", "--target", str(target), str(wheel)
    )
    assert installed.returncode == 0, installed.stderr
    return target


def connectors_test(
    source: str, sources_file: Path, site: Path, *flags: str, **env: str
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSSIERHUB_", "PYTEST_"))}
    full_env.update(
        env,
        PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]),
        DOSSIERHUB_SOURCES_FILE=str(sources_file),
        DOSSIERHUB_HASH_KEY=HASH_KEY,
        DOSSIERHUB_REGISTRY_URL=f"sqlite:///{sources_file.parent / 'registry.db'}",
        COLUMNS="200",
        NO_COLOR="1",
    )
    return subprocess.run(
        [sys.executable, *flags, "-c", WITHOUT_PYTEST, "connectors", "test", source],
        env=full_env,
        cwd=sources_file.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The broken connector installed into a folder, and a sources file naming it over a
    Tax sample: (the folder, the sources file)."""
    project = tmp_path_factory.mktemp("broken") / "broken-tax"
    (project / "broken_tax").mkdir(parents=True)
    (project / "pyproject.toml").write_text(BROKEN_PYPROJECT, encoding="utf-8")
    (project / "broken_tax" / "__init__.py").write_text(BROKEN_CONNECTOR, encoding="utf-8")
    site = install(project, tmp_path_factory.mktemp("site"))
    work = tmp_path_factory.mktemp("work")
    tax.generate(f"sqlite:///{work / 'tax.db'}", rows=80, seed=3, malformed_share=0.1)
    (work / "sources.yaml").write_text(
        "sources:\n  tax:\n    connector: broken_tax\n    batch_size: 20\n"
        f"    settings:\n      url: sqlite:///{work / 'tax.db'}\n",
        encoding="utf-8",
    )
    return site, work / "sources.yaml"


def test_only_the_pytest_adapter_imports_pytest() -> None:
    importers = {
        path.relative_to(ROOT).as_posix()
        for package in ("connectors", "models", "dossierhub")
        for path in sorted((ROOT / package).rglob("*.py"))
        if {"pytest", "_pytest"} & {name.split(".")[0] for name in _imported_modules(path)}
    }
    assert importers == {"connectors/testing.py"}


def test_the_wrapper_really_makes_pytest_unimportable() -> None:
    blocked = subprocess.run(
        [sys.executable, "-c", WITHOUT_PYTEST.split("runpy.run_module")[0] + "import pytest"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert blocked.returncode == 1, blocked.stderr
    assert "ModuleNotFoundError: import of pytest halted" in blocked.stderr, blocked.stderr


def test_the_guide_example_passes_connectors_test_without_pytest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "guide"
    for path, body in example_files().items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(body, encoding="utf-8")
    site = install(root / "construction-permits", tmp_path / "site")
    export = tmp_path / "giay_phep.jsonl"
    with monkeypatch.context() as patched:  # the example's own sample export
        patched.syspath_prepend(str(site))
        try:
            helpers = load_example_tests(root)
            helpers.write_export(export, helpers.sample_rows())
        finally:
            forget_example_modules()

    ran = connectors_test(
        "construction_permits", root / "sources.yaml", site, PERMITS_EXPORT=str(export)
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * 5 + ["skip", "ok"], ran.stdout
    assert lines[5].startswith("skip an incremental read returns the changed records (the kit")
    assert "halted" not in ran.stderr, ran.stderr


def test_a_broken_connector_fails_naming_the_promise_and_the_record(
    broken: tuple[Path, Path],
) -> None:
    site, sources = broken
    ran = connectors_test("tax", sources, site)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert_mapping_failure(ran.stdout)


def test_the_checks_fail_under_python_O_which_strips_asserts(broken: tuple[Path, Path]) -> None:
    site, sources = broken
    ran = connectors_test("tax", sources, site, "-O")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert_mapping_failure(ran.stdout)


def assert_mapping_failure(stdout: str) -> None:
    failed = [line for line in stdout.splitlines() if line.startswith("FAIL")]
    assert failed == ["FAIL every record maps or is rejected with reasons"], stdout
    assert (
        "     connector BrokenTax (source 'tax'): to_canonical() raised an unexpected "
        "exception for 1 record(s) (id '7': KeyError: 'MA_TTHC'); a mapping must return"
    ) in stdout
    assert (
        "     promise broken: every record maps to a record of its source and id, or is "
        "rejected with reasons"
    ) in stdout
    # Only the mapping breaks: the other read-only checks pass.
    assert stdout.count("\nok ") + stdout.startswith("ok ") == 5, stdout
