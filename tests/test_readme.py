"""What the README promises a newcomer answers as it says."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from sqlalchemy import create_engine

from dossierhub import api
from tests.dossierhub.test_api import serving

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_openapi_document_is_where_the_readme_says() -> None:
    [path] = re.findall(r"OpenAPI (?:document\s+)?at\s+`([^`]+)`", README)
    with serving(api.create_app(create_engine("sqlite://"))) as url:
        answer = httpx.get(url + path)
    assert answer.status_code == 200, path
    assert answer.json()["openapi"].startswith("3.")


def test_the_readme_links_every_document_in_docs() -> None:
    named = set(re.findall(r"`(docs/[\w-]+\.md)`", README))
    present = {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert "docs/statistics.md" in present
    assert present <= named, present - named
