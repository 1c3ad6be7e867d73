"""Every test the operations guide and the statistics definitions name as a proof exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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


# Each document, and how many citations reading it must find at least (its tables were read).
DOCUMENTS = {"docs/operations.md": 20, "docs/statistics.md": 20}


@pytest.mark.parametrize("document", sorted(DOCUMENTS))
def test_every_test_the_guide_cites_exists(document: str) -> None:
    guide = (ROOT / document).read_text(encoding="utf-8")
    cited = cited_tests(guide)
    assert len(cited) >= DOCUMENTS[document], cited
    missing = []
    for file, name in cited:
        path = ROOT / file
        if not path.is_file():
            missing.append(file)
        elif name is not None and not re.search(rf"^def {name}\(", path.read_text(), re.M):
            missing.append(f"{file}::{name}")
    assert missing == []
