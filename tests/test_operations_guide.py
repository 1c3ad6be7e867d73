"""Every test the operations guide names as the proof of a guarantee exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `tests/x.py`, `tests/x.py::test_name`, or `...::test_name` (in the file named before it).
CITED = re.compile(r"`(tests/[\w/]+\.py|\.\.\.)(?:::(\w+))?`")


def cited_tests(guide: str) -> list[tuple[str, str | None]]:
    cited, file = [], None
    for path, name in CITED.findall(guide):
        file = file if path == "..." else path
        assert file is not None, f"'...::{name}' before any test file is named"
        cited.append((file, name or None))
    return cited


def test_every_test_the_guide_cites_exists() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    cited = cited_tests(guide)
    assert len(cited) >= 20, cited  # the guarantees table was read
    missing = []
    for file, name in cited:
        path = ROOT / file
        if not path.is_file():
            missing.append(file)
        elif name is not None and not re.search(rf"^def {name}\(", path.read_text(), re.M):
            missing.append(f"{file}::{name}")
    assert missing == []
