"""The worked example of docs/writing-a-connector.md, as an agency would use it.

The guide's example files are its fenced code blocks carrying `title="<path>"`. They are
written out, the example package is pip-installed into this interpreter (and uninstalled
afterwards), discovered through its entry point, checked with its own conformance tests, and
synced into a SQLite registry both through `sync_source` and through the documented CLI.

The wheel pip installs is built here from the example's pyproject.toml (name, version,
dependencies, packages, entry points): a PEP 517 build needs the `wheel` package or a newer
setuptools than an offline virtualenv may hold, and the test must not download anything.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from connectors.base import Connector
from dossierhub import store
from dossierhub.settings import Settings
from dossierhub.sources import connector_class, open_connector
from dossierhub.sync import sync_source
from models import migrate
from models.tables import dossier, quarantine

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "writing-a-connector.md"
# ```python title="construction-permits/construction_permits/connector.py"
BLOCK = re.compile(r'^```[\w-]* title="([^"]+)"\n(.*?)^```$', re.MULTILINE | re.DOTALL)
PACKAGE = "construction-permits"
ENTRY_POINT = "construction_permits"
HASH_KEY = "guide-example-key-" + "g" * 32


def example_files() -> dict[str, str]:
    files = {path: body for path, body in BLOCK.findall(GUIDE.read_text(encoding="utf-8"))}
    expected = {
        f"{PACKAGE}/pyproject.toml",
        f"{PACKAGE}/construction_permits/__init__.py",
        f"{PACKAGE}/construction_permits/connector.py",
        f"{PACKAGE}/tests/test_conformance.py",
        "sources.yaml",
    }
    assert set(files) == expected, f"the guide's titled blocks changed: {sorted(files)}"
    return files


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def forget_example_modules() -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "construction_permits"]:
        del sys.modules[name]
    importlib.invalidate_caches()


def build_wheel(project: Path, out: Path) -> Path:
    """A pure-Python wheel of `project` from its pyproject.toml, as a build backend would make."""
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    packages = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["packages"]
    dist = f"{re.sub(r'[-_.]+', '_', meta['name'])}-{meta['version']}"
    files: dict[str, bytes] = {}
    for package in packages:
        for source in sorted((project / package.replace(".", "/")).rglob("*.py")):
            files[source.relative_to(project).as_posix()] = source.read_bytes()
    requires = "".join(f"Requires-Dist: {d}\n" for d in meta.get("dependencies", []))
    files[f"{dist}.dist-info/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n"
        f"Summary: {meta.get('description', '')}\n{requires}"
    ).encode()
    files[f"{dist}.dist-info/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: dossierhub-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n"
    )
    files[f"{dist}.dist-info/entry_points.txt"] = "".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
        for group, points in meta.get("entry-points", {}).items()
    ).encode()
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b'=').decode()},{len(body)}\n"
        for path, body in files.items()
    )
    files[f"{dist}.dist-info/RECORD"] = (record + f"{dist}.dist-info/RECORD,,\n").encode()
    wheel = out / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, body in files.items():
            archive.writestr(path, body)
    return wheel


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The guide's files written out, the example package installed; uninstalled afterwards."""
    root = tmp_path_factory.mktemp("guide")
    for path, body in example_files().items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    wheel = build_wheel(root / PACKAGE, tmp_path_factory.mktemp("dist"))
    # No index, no dependencies: nothing is downloaded, DossierHub itself is already here.
    installed = pip("install", "--quiet", "--no-deps", "--no-index", str(wheel))
    assert installed.returncode == 0, installed.stderr
    importlib.invalidate_caches()
    try:
        yield root
    finally:
        removed = pip("uninstall", "--yes", "--quiet", PACKAGE)
        forget_example_modules()
        assert removed.returncode == 0, removed.stderr


def load_example_tests(root: Path) -> ModuleType:
    """The example's conformance test module, for its sample-export helpers."""
    path = root / PACKAGE / "tests" / "test_conformance.py"
    spec = importlib.util.spec_from_file_location("guide_example_conformance", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_installed_package_is_discovered_through_its_entry_point(example: Path) -> None:
    cls = connector_class(ENTRY_POINT)
    assert issubclass(cls, Connector) and cls.__name__ == "PermitConnector"
    # Installed into site-packages, not imported from the written-out files.
    module = sys.modules[cls.__module__]
    assert module.__file__ is not None and str(example) not in module.__file__


def test_the_example_passes_its_conformance_suite(example: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSSIERHUB_", "PYTEST_"))}
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=example / PACKAGE,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert re.search(r"\b7 passed\b", ran.stdout), ran.stdout[-2000:]


def test_the_example_syncs_from_the_sources_file(example: Path, tmp_path: Path) -> None:
    helpers = load_example_tests(example)
    export = tmp_path / "giay_phep.jsonl"
    rows = helpers.sample_rows()
    helpers.write_export(export, rows)
    registry_url = f"sqlite:///{tmp_path / 'registry.db'}"
    env = {"PERMITS_EXPORT": str(export)}
    os.environ.update(env)  # the sources file reads ${PERMITS_EXPORT}
    try:
        settings = Settings(
            registry_url=SecretStr(registry_url),
            sources_file=example / "sources.yaml",
            hash_key=SecretStr(HASH_KEY),
            mode="production",
        )
        engine = store.open_registry(registry_url)
        migrate.upgrade(engine)
        first = sync_source(engine, open_connector(settings, ENTRY_POINT))
    finally:
        for name in env:
            os.environ.pop(name, None)
    assert (first.status, first.rows_read, first.inserted, first.quarantined) == (
        "succeeded",
        60,
        57,
        3,
    )
    with engine.connect() as conn:
        reasons = sorted(conn.execute(select(quarantine.c.reason)).scalars())
    assert reasons == [
        "procedure_code:invalid_format",
        "received_at:missing",
        "status:unknown_code",
    ]

    # The next night's export, synced with the documented command.
    changed = helpers.next_nights_export(export, rows)
    cli = subprocess.run(
        [sys.executable, "-m", "dossierhub", "sync", ENTRY_POINT, "--format", "json"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("DOSSIERHUB_")},
            **env,
            "DOSSIERHUB_REGISTRY_URL": registry_url,
            "DOSSIERHUB_SOURCES_FILE": str(example / "sources.yaml"),
            "DOSSIERHUB_HASH_KEY": HASH_KEY,
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    [run] = json.loads(cli.stdout)
    assert (run["read"], run["inserted"], run["updated"]) == (len(changed), 1, 2)
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                select(dossier.c.source_id, dossier.c.status_raw).where(
                    dossier.c.source_id.in_(changed)
                )
            ).all()
        )
        total = conn.execute(select(func.count()).select_from(dossier)).scalar_one()
    assert statuses == {"3": "DA_CAP_PHEP", "8": "DA_CAP_PHEP", "61": "DANG_XU_LY"}
    assert total == 58
    engine.dispose()
